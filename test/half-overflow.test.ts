// Half precision where upstream's overflows: a Qwen2.5-VL checkpoint (the golden tower with the
// last block's MLP down-projection scaled up) whose residual stream holds values past float16's
// 65504, as the released Qwen2-VL / Qwen2.5-VL towers do in their last blocks (vLLM #13817,
// llama.cpp #17534). A plain float16 stream becomes ±inf there; vitgraph's float16 graph holds the
// stream at 2⁻⁸ (graphs/shared/layers.ts) and must stay finite and close to float32.
// ORT's CPU provider runs most float16 ops through float32 kernels (it inserts casts and drops the
// round trips), so the overflow itself only shows on a GPU: scripts/gpu-check.sh runs this
// checkpoint in float16 and bfloat16 on CUDA. Here: the float64 reference passes 65504, the graph
// holds the scaling (weights ×2⁻⁸, norm eps ×2⁻¹⁶), and the float16 export stays finite and close.
// Tolerance: max |Δ| ≤ 2e-2 of the float32 graph on outputs of magnitude ~1 (float16's own error
// on the golden tower is ~2e-3).

import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportModel } from '../index.js';
import { buildDynamicGraph, parseConfig } from '../graphs/qwen2.5-vl/index.js';
import { zeroParameters } from '../src/export/model-directory.js';
import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { hostTensor, type HostTensor } from '../src/tensor.js';
import { f32ToF16 } from '../src/dtype.js';
import { writeSafetensors } from '../src/weights/index.js';
import { tempDir } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';
import { loadQwen2Golden, qwen2TensorShapes } from './helpers/qwen2.js';
import { qwen2ReferenceConfig, qwen2ReferenceForward } from './reference/qwen2vl.js';

const FLOAT16_MAX = 65504;
const ATOL = 2e-2;
/** How much the last block's down_proj is scaled up: enough to push the stream past 65504. */
const BOOST = 4e4;

test('float16 stays finite and close to float32 where the residual stream passes 65504', async (t) => {
  const golden = await loadQwen2Golden('qwen2_5vl_tiny');
  const config = qwen2ReferenceConfig(golden.config);
  const last = `blocks.${config.depth - 1}.mlp.down_proj`;
  const weights = new Map(golden.weights);
  for (const name of [`${last}.weight`, `${last}.bias`])
    weights.set(
      name,
      weights.get(name)!.map((v) => v * BOOST),
    );

  // The float64 reference says how large the stream gets: past float16's range.
  const reference = qwen2ReferenceForward(config, weights, golden.pixelValues.data, golden.grid);
  t.true(reference.debug.streamMaxAbs > FLOAT16_MAX, `stream reaches ${reference.debug.streamMaxAbs.toExponential(2)}`);
  t.is(f32ToF16(Float32Array.of(reference.debug.streamMaxAbs))[0], 0x7c00, 'a float16 stream would hold +inf there');

  const dir = await tempDir(t);
  const ckpt = join(dir, 'ckpt');
  const tensors = new Map<string, HostTensor>();
  for (const [name, shape] of qwen2TensorShapes(config)) tensors.set(`visual.${name}`, hostTensor('float32', shape, Float32Array.from(weights.get(name)!)));
  await mkdir(ckpt, { recursive: true });
  await writeSafetensors(join(ckpt, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(join(ckpt, 'config.json'), JSON.stringify(golden.config));

  const outputs: Record<string, Float32Array> = {};
  for (const dtype of ['float32', 'float16'] as const) {
    const out = join(dir, `${dtype}.onnx`);
    await exportModel({ model: ckpt, out, dtype });
    const runtime = await EncoderRuntime.open(out, { threads: 1 });
    try {
      outputs[dtype] = (await runtime.run(golden.pixelValues, golden.gridThw)).image_embeds!.data;
    } finally {
      await runtime.close();
    }
  }
  t.true(outputs.float16!.every(Number.isFinite), 'float16 outputs are finite');
  // What the float16 graph stores for the layers that write the stream: weight and bias ×2⁻⁸.
  const built = buildDynamicGraph(parseConfig(golden.config), zeroParameters, { dtype: 'float16' });
  const names = new Set(built.initializers.map((i) => i.name));
  for (const name of [`${last}.weight`, `${last}.bias`, `blocks.0.attn.proj.weight`, 'patch_embed.proj.weight']) t.true(names.has(`${name}.scaled`) && !names.has(name), `${name} stored scaled`);
  assertClose(t, 'float32 vs the float64 reference', outputs.float32!, reference.imageEmbeds, 1e-4);
  assertClose(t, 'float16 vs float32', outputs.float16!, outputs.float32!, ATOL);
});
