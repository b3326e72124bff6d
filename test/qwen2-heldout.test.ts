// The float64 reference of Qwen2-VL / Qwen2.5-VL (test/reference/qwen2vl.ts) against the goldens,
// then configurations the goldens do not cover, graphs against that reference: random checkpoints
// stored as the released ones are (`visual.*`), run through the dynamic graph and a padded bucket
// on onnxruntime-node. Tolerance: max |Δ| ≤ 1e-4 vs the reference (goldens' bar); reference vs
// goldens ≤ 1e-5 (upstream rounds RMSNorm, rotary and softmax to float32 inside: ~1e-7 expected).
//
// Held-out cases (what each changes from the goldens: window 112 = 4×4 merged, full [1, 3], D 16):
//   w56_first   window 56 px (Wm 2): many small windows, partial ones on odd merged sides, a
//               3-frame video; full attention in the FIRST block only;
//   w224_last   window 224 px (Wm 8): one window per frame for small items, partial 8×2 strips on
//               a 20×36 image; full attention in the LAST block only; head_dim 48;
//   w100_both   window 100 px (floor chain 100//2//14 = 3, not 100//14 = 7): windows of 3×3 merged
//               tokens; full attention in the first and the last block; head_dim 24;
//   q2_head32   Qwen2-VL with head_dim 32 (2 heads), mlp_ratio 1.5;
//   q2_head24   Qwen2-VL with head_dim 24 (4 heads), mlp_ratio 2.

import test from 'ava';
import { join } from 'node:path';
import { hostTensor } from '../src/tensor.js';
import * as qwen2 from '../graphs/qwen2-vl/index.js';
import * as qwen25 from '../graphs/qwen2.5-vl/index.js';
import { qwen2ReferenceConfig, qwen2ReferenceForward, windowIndex as qwen2ReferenceWindows } from './reference/qwen2vl.js';
import type { GridRow } from './reference/qwen3vl.js';
import { tempDir } from './helpers/files.js';
import { assertClose, maxAbsDiff } from './helpers/numeric.js';
import { loadQwen2Golden, padToBucket, randomQwen2Inputs, sessionOf, writeQwen2Checkpoint, type Qwen2Case } from './helpers/qwen2.js';

const ATOL = 1e-4;
const REFERENCE_ATOL = 1e-5;

for (const name of ['qwen2vl_tiny', 'qwen2_5vl_tiny'] as const satisfies readonly Qwen2Case[]) {
  test(`reference vs golden ${name}: image_embeds, patch_embed, rotary angles, block 0, windows`, async (t) => {
    const golden = await loadQwen2Golden(name);
    const config = qwen2ReferenceConfig(golden.config);
    const got = qwen2ReferenceForward(config, golden.weights, golden.pixelValues.data, golden.grid);
    const debug = (key: string): Float32Array => golden.debug.get(key)!.data as Float32Array;
    assertClose(t, 'image_embeds', got.imageEmbeds, golden.imageEmbeds, REFERENCE_ATOL);
    assertClose(t, 'debug.patch_embed', got.debug.patchEmbed, debug('patch_embed'), REFERENCE_ATOL);
    assertClose(t, 'debug.rotary_freqs', got.debug.rotaryFreqs, debug('rotary_freqs'), REFERENCE_ATOL);
    assertClose(t, 'debug.block0', got.debug.block0, debug('block0'), REFERENCE_ATOL);
    if (name === 'qwen2_5vl_tiny') {
      t.deepEqual(got.windowIndex, Array.from(golden.debug.get('window_index')!.data as BigInt64Array, Number));
      t.deepEqual(got.cuWindowSeqlens, Array.from(golden.debug.get('cu_window_seqlens')!.data as BigInt64Array, Number));
    }
  });
}

test('reference window_index: the spec §3.6.4 worked examples', (t) => {
  // [1, 8, 10] at 112 px: windows (0,0) of 16 tokens and (0,1) of 4; the second window row is empty.
  const { index, cu } = qwen2ReferenceWindows([[1, 8, 10]], 112);
  t.deepEqual(index, [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18, 4, 9, 14, 19]);
  t.deepEqual(cu, [0, 64, 80]);
  // 504² ([1, 36, 36], merged 18 × 18): 25 windows, [64×4, 32] per full window row, then [32×4, 16].
  const big = qwen2ReferenceWindows([[1, 36, 36]], 112).cu;
  t.deepEqual(
    big.slice(1).map((end, i) => end - big[i]!),
    [...Array(4).fill([64, 64, 64, 64, 32]).flat(), 32, 32, 32, 32, 16],
  );
});

interface HeldOut {
  readonly config: Record<string, unknown>;
  readonly grid: readonly GridRow[];
  readonly bucket: { maxPatches: number; maxItems: number };
}

const q25 = (vision: Record<string, unknown>): Record<string, unknown> => ({
  model_type: 'qwen2_5_vl',
  vision_config: { model_type: 'qwen2_5_vl', hidden_act: 'silu', in_chans: 3, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2, ...vision },
});
const q2 = (vision: Record<string, unknown>): Record<string, unknown> => ({
  model_type: 'qwen2_vl',
  vision_config: { model_type: 'qwen2_vl', hidden_act: 'quick_gelu', in_chans: 3, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2, ...vision },
});

const CASES: Readonly<Record<string, HeldOut>> = {
  w56_first: {
    config: q25({ depth: 3, hidden_size: 64, num_heads: 4, intermediate_size: 96, out_hidden_size: 48, window_size: 56, fullatt_block_indexes: [0] }),
    grid: [
      [1, 14, 18],
      [1, 4, 6],
      [3, 10, 6],
    ],
    bucket: { maxPatches: 512, maxItems: 4 },
  },
  w224_last: {
    config: q25({ depth: 3, hidden_size: 96, num_heads: 2, intermediate_size: 64, out_hidden_size: 40, window_size: 224, fullatt_block_indexes: [2] }),
    grid: [
      [1, 20, 36],
      [2, 6, 18],
      [1, 2, 2],
    ],
    bucket: { maxPatches: 1024, maxItems: 4 },
  },
  w100_both: {
    config: q25({ depth: 3, hidden_size: 96, num_heads: 4, intermediate_size: 80, out_hidden_size: 32, window_size: 100, fullatt_block_indexes: [2, 0] }),
    grid: [
      [1, 16, 14],
      [2, 12, 6],
    ],
    bucket: { maxPatches: 512, maxItems: 2 },
  },
  q2_head32: {
    config: q2({ depth: 2, embed_dim: 64, num_heads: 2, mlp_ratio: 1.5, hidden_size: 48 }),
    grid: [
      [1, 10, 8],
      [2, 4, 6],
      [1, 2, 2],
    ],
    bucket: { maxPatches: 256, maxItems: 4 },
  },
  q2_head24: {
    config: q2({ depth: 2, embed_dim: 96, num_heads: 4, mlp_ratio: 2, hidden_size: 40 }),
    grid: [
      [1, 6, 12],
      [3, 4, 4],
    ],
    bucket: { maxPatches: 256, maxItems: 2 },
  },
};

type Bucket = HeldOut['bucket'];
type Params = Parameters<typeof qwen2.buildDynamicGraph>[1];
/** Each family's graph builders from a config.json object. */
const GRAPHS = {
  qwen2_vl: {
    out: (c: Record<string, unknown>) => qwen2.parseConfig(c).outHiddenSize,
    dynamic: (c: Record<string, unknown>, p: Params) => qwen2.buildDynamicGraph(qwen2.parseConfig(c), p),
    padded: (c: Record<string, unknown>, p: Params, b: Bucket) => qwen2.buildPaddedGraph(qwen2.parseConfig(c), p, b),
  },
  qwen2_5_vl: {
    out: (c: Record<string, unknown>) => qwen25.parseConfig(c).outHiddenSize,
    dynamic: (c: Record<string, unknown>, p: Params) => qwen25.buildDynamicGraph(qwen25.parseConfig(c), p),
    padded: (c: Record<string, unknown>, p: Params, b: Bucket) => qwen25.buildPaddedGraph(qwen25.parseConfig(c), p, b),
  },
} as const;

let seed = 500;
for (const [name, { config, grid, bucket }] of Object.entries(CASES)) {
  const caseSeed = seed++;
  test(`${name}: dynamic graph and padded bucket match the float64 reference`, async (t) => {
    const dir = join(await tempDir(t), 'hf');
    const weights = await writeQwen2Checkpoint(dir, config, caseSeed);
    const pixelValues = randomQwen2Inputs(grid, caseSeed + 1000);
    const reference = qwen2ReferenceConfig(config);
    const want = qwen2ReferenceForward(reference, weights, pixelValues.data, grid);
    const tokens = pixelValues.shape[0]! / 4;
    if (reference.family === 'qwen2_5_vl')
      t.log(
        `windows (patches): ${want.cuWindowSeqlens
          .slice(1)
          .map((end, i) => end - want.cuWindowSeqlens[i]!)
          .join(' ')}`,
      );
    const graphs = GRAPHS[reference.family];
    const dynamic = await sessionOf(t, dir, 'float32', (params) => graphs.dynamic(config, params));
    const gridThw = hostTensor('int64', [grid.length, 3], BigInt64Array.from(grid.flat().map(BigInt)));
    const got = (await dynamic.run({ pixel_values: pixelValues, grid_thw: gridThw })).image_embeds!.data as Float32Array;
    assertClose(t, 'dynamic image_embeds', got, want.imageEmbeds, ATOL);
    const padded = await sessionOf(t, dir, 'float32', (params) => graphs.padded(config, params, bucket));
    const out = await padded.run(padToBucket(pixelValues, grid, bucket.maxPatches, bucket.maxItems));
    t.is(Number((out.token_count!.data as BigInt64Array)[0]), tokens);
    const real = (out.image_embeds!.data as Float32Array).subarray(0, tokens * graphs.out(config));
    assertClose(t, `padded-${bucket.maxPatches} image_embeds`, real, want.imageEmbeds, ATOL);
    t.log(`padded vs dynamic: max |Δ| = ${maxAbsDiff(real, got).toExponential(2)}`);
  });
}
