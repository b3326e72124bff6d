// The benchmark's traced-export-style baseline (bench/torch-like.ts) must compute the same
// function as the upstream model, or its timings compare nothing: checked on the single-image golden.

import test from 'ava';
import { MODELS } from '../graphs/index.js';
import type { VisionConfig } from '../graphs/qwen3-vl/config.js';
import { openModelDirectory } from '../src/export/model-directory.js';
import { buildTorchLikeGraph } from '../bench/torch-like.js';
import { modelToBytes } from '../src/onnx/index.js';
import { loadGolden } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';
import { ortSession, runOrt } from './helpers/onnx.js';

test('traced-export-style baseline matches the tiny_single golden (≤ 1e-4)', async (t) => {
  const golden = await loadGolden('tiny_single');
  const [[, gh, gw]] = golden.grid as [[number, number, number]];
  const model = await openModelDirectory(MODELS, golden.dir);
  const session = await ortSession(await modelToBytes(buildTorchLikeGraph(model.config as VisionConfig, model.checkpoint, gh, gw), { opset: 17 }));
  const out = await runOrt(session, { pixel_values: golden.pixelValues });
  assertClose(t, 'image_embeds', out.image_embeds!.data as Float32Array, golden.expected.imageEmbeds, 1e-4);
  const deep = out.deepstack_embeds!.data as Float32Array;
  golden.expected.deepstack.forEach((want, j) => assertClose(t, `deepstack_embeds[${j}]`, deep.subarray(j * want.length, (j + 1) * want.length), want, 1e-4));
});
