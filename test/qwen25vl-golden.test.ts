// The Qwen2.5-VL tower (graphs/qwen2.5-vl) against the upstream golden `qwen2_5vl_tiny`
// (fixtures/encoder/README.md): window 112 px (8×8 patches) with partial edge windows on
// [1,12,20], a 2-frame video [2,8,8] and a small image [1,6,4]; full attention in blocks 1 and 3.
// Dynamic graph (looped, dense) and a padded bucket in float32 (max |Δ| ≤ 1e-4) and float16
// (≤ 1e-2); the in-graph window permutation against the golden's debug.window_index and
// debug.cu_window_seqlens (exact).

import test from 'ava';
import { GraphBuilder, op } from '../src/onnx/index.js';
import { buildDynamicGraph, buildPaddedGraph, parseConfig } from '../graphs/qwen2.5-vl/index.js';
import { windowOrder, windowStarts } from '../graphs/qwen2.5-vl/windows.js';
import { patchCoordinates } from '../graphs/shared/layout.js';
import { assertClose } from './helpers/numeric.js';
import { runGraph } from './helpers/onnx.js';
import { loadQwen2Golden, padToBucket, sessionOf } from './helpers/qwen2.js';

const ATOL = 1e-4;
const FP16_ATOL = 1e-2;
const BUCKET = { maxPatches: 512, maxItems: 4 };

for (const attention of ['looped', 'dense'] as const) {
  test(`dynamic graph (${attention} attention) matches the golden`, async (t) => {
    const golden = await loadQwen2Golden('qwen2_5vl_tiny');
    const config = parseConfig(golden.config);
    const session = await sessionOf(t, golden.dir, 'float32', (params) => buildDynamicGraph(config, params, { attention }));
    const out = await session.run({ pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
    t.deepEqual(Object.keys(out), ['image_embeds']);
    t.deepEqual(out.image_embeds!.shape, [98, 80]);
    assertClose(t, 'image_embeds', out.image_embeds!.data as Float32Array, golden.imageEmbeds, ATOL);
  });
}

test('padded bucket (512 patches, 4 items) matches the golden; token_count counts the real tokens', async (t) => {
  const golden = await loadQwen2Golden('qwen2_5vl_tiny');
  const config = parseConfig(golden.config);
  const session = await sessionOf(t, golden.dir, 'float32', (params) => buildPaddedGraph(config, params, BUCKET));
  const out = await session.run(padToBucket(golden.pixelValues, golden.grid, BUCKET.maxPatches, BUCKET.maxItems));
  t.deepEqual(out.image_embeds!.shape, [128, 80]);
  t.is(Number((out.token_count!.data as BigInt64Array)[0]), 98);
  assertClose(t, 'image_embeds (real rows)', (out.image_embeds!.data as Float32Array).subarray(0, 98 * 80), golden.imageEmbeds, ATOL);
});

test('float16 weights: dynamic and padded within 1e-2 of the golden', async (t) => {
  const golden = await loadQwen2Golden('qwen2_5vl_tiny');
  const config = parseConfig(golden.config);
  const dynamic = await sessionOf(t, golden.dir, 'float16', (params) => buildDynamicGraph(config, params, { dtype: 'float16' }));
  const got = await dynamic.run({ pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
  assertClose(t, 'fp16 dynamic image_embeds', got.image_embeds!.data as Float32Array, golden.imageEmbeds, FP16_ATOL);
  const padded = await sessionOf(t, golden.dir, 'float16', (params) => buildPaddedGraph(config, params, BUCKET, { dtype: 'float16' }));
  const out = await padded.run(padToBucket(golden.pixelValues, golden.grid, BUCKET.maxPatches, BUCKET.maxItems));
  assertClose(t, 'fp16 padded image_embeds', (out.image_embeds!.data as Float32Array).subarray(0, 98 * 80), golden.imageEmbeds, FP16_ATOL);
});

test("the graph's window permutation and window starts equal upstream's window_index and cu_window_seqlens", async (t) => {
  const golden = await loadQwen2Golden('qwen2_5vl_tiny');
  const config = parseConfig(golden.config);
  const n = golden.pixelValues.shape[0]!;
  const g = new GraphBuilder({ name: 'windows_only' });
  const grid = g.input('grid_thw', 'int64', ['I', 3]);
  const rowIndex = g.constant('int64', [n], Array.from({ length: n }, (_, i) => BigInt(i)));
  const order = windowOrder(g, config, patchCoordinates(g, config, grid, rowIndex), rowIndex);
  const coords = patchCoordinates(g, config, grid, order.source);
  g.output(order.source, 'source');
  g.output(order.target, 'target');
  g.output(op.cast(windowStarts(g, config, coords), 'int64'), 'starts');
  const out = await runGraph(g, { grid_thw: golden.gridThw });
  const source = Array.from(out.source!.data as BigInt64Array, Number);
  const target = Array.from(out.target!.data as BigInt64Array, Number);

  // window_index [N/4] in merged tokens: whole merge units move, their inner order is kept.
  const windowIndex = Array.from(golden.debug.get('window_index')!.data as BigInt64Array, Number);
  t.deepEqual(source.filter((_, i) => i % 4 === 0).map((p) => p / 4), windowIndex);
  t.deepEqual(source.map((p, i) => p % 4 === i % 4), Array<boolean>(n).fill(true), 'row order inside a merge unit kept');
  t.deepEqual(target.map((_, p) => source[target[p]!]), Array.from({ length: n }, (_, p) => p), 'target inverts source');

  // cu_window_seqlens: the window starts in window order, then N.
  const starts = Array.from(out.starts!.data as BigInt64Array, Number).flatMap((s, i) => (s ? [i] : []));
  t.deepEqual([...starts, n], Array.from(golden.debug.get('cu_window_seqlens')!.data as BigInt64Array, Number));
});
