// Configurations the goldens do not cover, checked against the independent float64 reference
// (test/reference/qwen3vl.ts, itself checked against the goldens in encoder-reference.test.ts):
// random checkpoints written like Hugging Face's, exported as a package (dynamic graph + padded
// buckets), run through EncoderRuntime both ways on one mixed call.
//
// Each case changes what the goldens hold fixed (tiny: head_dim 16, 48×48 table, two deepstack
// taps, tanh MLP):
//   head72   head_dim 72 (hidden 144, 2 heads: the 8B/32B head size), a 16×16 table, one tap, tanh;
//   grid50   head_dim 32, a 50×50 table, no deepstack mergers (deepstack_embeds [0, N/4, O]),
//            exact-GELU blocks (hidden_act "gelu");
//   head24   head_dim 24 (6 rotary frequencies per axis), taps after every block of 3.
// Every call holds 64×2 and 2×64 strips, two videos (3 and 2 frame groups) and images of mixed
// sizes down to a single 2×2 window. Tolerance: max |Δ| ≤ 1e-4 vs the reference.

import test from 'ava';
import { join } from 'node:path';
import { exportModel } from '../index.js';
import { bucket, planRuns } from '../src/runtime/buckets.js';
import { EncoderRuntime, type EncoderRuntimeOptions } from '../src/runtime/encoder-runtime.js';
import { nativeAvailable } from '../src/runtime/native/index.js';
import { referenceConfig, referenceForward, type GridRow } from './reference/qwen3vl.js';
import { deepstackBlocks, tempDir } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';
import { configJson, randomInputs, writeCheckpoint, type VisionSpec } from './helpers/random.js';

const ATOL = 1e-4;
const NATIVE = nativeAvailable();

const CASES: Readonly<Record<string, VisionSpec>> = {
  head72: { depth: 2, hidden_size: 144, intermediate_size: 96, num_heads: 2, out_hidden_size: 48, num_position_embeddings: 256, deepstack_visual_indexes: [1], hidden_act: 'gelu_pytorch_tanh' },
  grid50: { depth: 2, hidden_size: 64, intermediate_size: 80, num_heads: 2, out_hidden_size: 40, num_position_embeddings: 2500, deepstack_visual_indexes: [], hidden_act: 'gelu' },
  head24: { depth: 3, hidden_size: 96, intermediate_size: 64, num_heads: 4, out_hidden_size: 32, num_position_embeddings: 2304, deepstack_visual_indexes: [0, 1, 2], hidden_act: 'gelu_pytorch_tanh' },
};

/** 444 patches: strips both ways, two videos, images of mixed sizes (order matters: packing). */
const GRID: readonly GridRow[] = [
  [1, 64, 2],
  [1, 2, 64],
  [3, 6, 4],
  [1, 10, 8],
  [2, 4, 4],
  [1, 2, 2],
];
/** Buckets 128 (2 items) and 256 (4 items): the strips share one 256 run, the rest another. */
const BUCKETS = [128, 256];

test('the mixed call really spans two padded runs of the 256 bucket', (t) => {
  const plans = planRuns(
    GRID,
    BUCKETS.map((n) => bucket(n)),
  );
  t.deepEqual(
    plans.map((p) => (p.kind === 'bucket' ? { bucket: p.bucket.maxPatches, items: p.units.length } : { bucket: 'dynamic', items: p.units.length })),
    [
      { bucket: 256, items: 2 },
      { bucket: 256, items: 4 },
    ],
  );
});

let seed = 100;
for (const [name, spec] of Object.entries(CASES)) {
  const caseSeed = seed++;
  test(`${name}: dynamic graph and padded buckets match the float64 reference`, async (t) => {
    const dir = await tempDir(t);
    const model = join(dir, 'hf');
    const weights = await writeCheckpoint(model, spec, caseSeed);
    const { pixelValues, gridThw } = randomInputs(GRID, caseSeed + 1000);
    const want = referenceForward(referenceConfig(configJson(spec)), weights, pixelValues.data, GRID);
    const tokens = pixelValues.shape[0]! / 4;
    const k = spec.deepstack_visual_indexes.length;

    const pkg = join(dir, 'pkg');
    await exportModel({ model, out: pkg, maxPatches: BUCKETS });
    // The native addon (ORT C API, IO binding) runs the padded buckets on the CPU EP too.
    const modes: EncoderRuntimeOptions[] = [{ graphs: 'dynamic' }, { graphs: 'buckets' }, ...(NATIVE.ok ? [{ graphs: 'buckets', backend: 'native' } as const] : [])];
    if (!NATIVE.ok) t.log(`native backend not checked: ${NATIVE.reason}`);
    for (const mode of modes) {
      const graphs = mode.backend === 'native' ? 'native buckets' : mode.graphs;
      const runtime = await EncoderRuntime.open(pkg, { ...mode, threads: 1 });
      try {
        const got = await runtime.run(pixelValues, gridThw);
        t.deepEqual(got.image_embeds!.shape, [tokens, spec.out_hidden_size], `${graphs}: image_embeds shape`);
        t.deepEqual(got.deepstack_embeds!.shape, [k, tokens, spec.out_hidden_size], `${graphs}: deepstack_embeds shape`);
        assertClose(t, `${graphs} image_embeds`, got.image_embeds!.data, want.imageEmbeds, ATOL);
        deepstackBlocks(got.deepstack_embeds!.data, k).forEach((block, j) => assertClose(t, `${graphs} deepstack_embeds[${j}]`, block, want.deepstack[j]!, ATOL));
      } finally {
        await runtime.close();
      }
    }
  });
}

// Upstream `Qwen3VLVisionModel.forward` appends each deepstack merger's output as its block is
// reached, i.e. in block order, whatever the order of `deepstack_visual_indexes`.
test('unsorted deepstack_visual_indexes [2, 0, 1]: deepstack_embeds come in block order, as upstream returns them', async (t) => {
  const spec: VisionSpec = { ...CASES.head24!, deepstack_visual_indexes: [2, 0, 1] };
  const dir = await tempDir(t);
  const model = join(dir, 'hf');
  const weights = await writeCheckpoint(model, spec, 7);
  const grid: GridRow[] = [
    [1, 4, 6],
    [2, 2, 4],
  ];
  const { pixelValues, gridThw } = randomInputs(grid, 8);
  const want = referenceForward(referenceConfig(configJson(spec)), weights, pixelValues.data, grid);
  const out = join(dir, 'encoder.onnx');
  await exportModel({ model, out });
  const runtime = await EncoderRuntime.open(out, { threads: 1 });
  try {
    const got = await runtime.run(pixelValues, gridThw);
    deepstackBlocks(got.deepstack_embeds!.data, 3).forEach((block, j) => assertClose(t, `deepstack_embeds[${j}] (block ${j})`, block, want.deepstack[j]!, ATOL));
  } finally {
    await runtime.close();
  }
});
