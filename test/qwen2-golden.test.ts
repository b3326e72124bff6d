// The Qwen2-VL and Qwen2.5-VL towers (graphs/qwen2-vl, graphs/qwen2.5-vl) against the upstream
// goldens (fixtures/encoder/README.md) on onnxruntime-node:
//   qwen2vl_tiny    image [1,4,6], 2-frame video [2,8,8], image [1,6,4]; per-frame attention;
//   qwen2_5vl_tiny  [1,12,20] with partial windows at 112 px, video [2,8,8], [1,6,4]; full
//                   attention in blocks 1 and 3.
// Dynamic graph (looped and dense attention) and a padded bucket in float32 (max |Δ| ≤ 1e-4, the
// goldens' bar) and with float16 weights (≤ 1e-2); for Qwen2.5-VL also the in-graph window
// permutation against the golden's debug.window_index and debug.cu_window_seqlens (exact).

import test from 'ava';
import { GraphBuilder, op, type ParameterSource } from '../src/onnx/index.js';
import * as qwen2 from '../graphs/qwen2-vl/index.js';
import * as qwen25 from '../graphs/qwen2.5-vl/index.js';
import { windowOrder, windowStarts } from '../graphs/qwen2.5-vl/windows.js';
import type { DynamicGraphOptions } from '../graphs/shared/graph-io.js';
import type { FloatDType } from '../src/model.js';
import { patchCoordinates } from '../graphs/shared/layout.js';
import { assertClose } from './helpers/numeric.js';
import { runGraph } from './helpers/onnx.js';
import { loadQwen2Golden, padToBucket, sessionOf, type Qwen2Case } from './helpers/qwen2.js';

const ATOL = 1e-4;
const FP16_ATOL = 1e-2;

interface Case {
  readonly tokens: number;
  readonly bucket: { maxPatches: number; maxItems: number };
  readonly dynamic: (config: unknown, params: ParameterSource, options: DynamicGraphOptions) => GraphBuilder;
  readonly padded: (config: unknown, params: ParameterSource, bucket: Case['bucket'], dtype: FloatDType) => GraphBuilder;
}

const CASES: Readonly<Record<Qwen2Case, Case>> = {
  qwen2vl_tiny: {
    tokens: 44,
    bucket: { maxPatches: 256, maxItems: 4 },
    dynamic: (c, p, o) => qwen2.buildDynamicGraph(qwen2.parseConfig(c), p, o),
    padded: (c, p, b, dtype) => qwen2.buildPaddedGraph(qwen2.parseConfig(c), p, b, { dtype }),
  },
  qwen2_5vl_tiny: {
    tokens: 98,
    bucket: { maxPatches: 512, maxItems: 4 },
    dynamic: (c, p, o) => qwen25.buildDynamicGraph(qwen25.parseConfig(c), p, o),
    padded: (c, p, b, dtype) => qwen25.buildPaddedGraph(qwen25.parseConfig(c), p, b, { dtype }),
  },
};

for (const [name, { tokens, bucket, dynamic, padded }] of Object.entries(CASES) as [Qwen2Case, Case][]) {
  for (const attention of ['looped', 'dense'] as const) {
    test(`${name}: dynamic graph (${attention} attention) matches the golden`, async (t) => {
      const golden = await loadQwen2Golden(name);
      const session = await sessionOf(t, golden.dir, 'float32', (params) => dynamic(golden.config, params, { attention }));
      const out = await session.run({ pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
      t.deepEqual(Object.keys(out), ['image_embeds']);
      t.deepEqual(out.image_embeds!.shape, [tokens, 80]);
      assertClose(t, 'image_embeds', out.image_embeds!.data as Float32Array, golden.imageEmbeds, ATOL);
    });
  }

  test(`${name}: padded bucket (${bucket.maxPatches} patches, ${bucket.maxItems} items) matches the golden; token_count counts the real tokens`, async (t) => {
    const golden = await loadQwen2Golden(name);
    const session = await sessionOf(t, golden.dir, 'float32', (params) => padded(golden.config, params, bucket, 'float32'));
    const out = await session.run(padToBucket(golden.pixelValues, golden.grid, bucket.maxPatches, bucket.maxItems));
    t.deepEqual(out.image_embeds!.shape, [bucket.maxPatches / 4, 80]);
    t.is(Number((out.token_count!.data as BigInt64Array)[0]), tokens);
    assertClose(t, 'image_embeds (real rows)', (out.image_embeds!.data as Float32Array).subarray(0, tokens * 80), golden.imageEmbeds, ATOL);
  });

  test(`${name}: float16 weights, dynamic and padded, within 1e-2 of the golden`, async (t) => {
    const golden = await loadQwen2Golden(name);
    const session = await sessionOf(t, golden.dir, 'float16', (params) => dynamic(golden.config, params, { dtype: 'float16' }));
    const got = await session.run({ pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
    assertClose(t, 'fp16 dynamic image_embeds', got.image_embeds!.data as Float32Array, golden.imageEmbeds, FP16_ATOL);
    const bucketSession = await sessionOf(t, golden.dir, 'float16', (params) => padded(golden.config, params, bucket, 'float16'));
    const out = await bucketSession.run(padToBucket(golden.pixelValues, golden.grid, bucket.maxPatches, bucket.maxItems));
    assertClose(t, 'fp16 padded image_embeds', (out.image_embeds!.data as Float32Array).subarray(0, tokens * 80), golden.imageEmbeds, FP16_ATOL);
  });
}

test("qwen2_5vl_tiny: the graph's window permutation and window starts equal upstream's window_index and cu_window_seqlens", async (t) => {
  const golden = await loadQwen2Golden('qwen2_5vl_tiny');
  const config = qwen25.parseConfig(golden.config);
  const n = golden.pixelValues.shape[0]!;
  const g = new GraphBuilder({ name: 'windows_only' });
  const grid = g.input('grid_thw', 'int64', ['I', 3]);
  const rowIndex = g.constant(
    'int64',
    [n],
    Array.from({ length: n }, (_, i) => BigInt(i)),
  );
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
  t.deepEqual(
    source.filter((_, i) => i % 4 === 0).map((p) => p / 4),
    windowIndex,
  );
  t.deepEqual(
    source.map((p, i) => p % 4 === i % 4),
    Array<boolean>(n).fill(true),
    'row order inside a merge unit kept',
  );
  t.deepEqual(
    target.map((_, p) => source[target[p]!]),
    Array.from({ length: n }, (_, p) => p),
    'target inverts source',
  );

  // cu_window_seqlens: the window starts in window order, then N.
  const starts = Array.from(out.starts!.data as BigInt64Array, Number).flatMap((s, i) => (s ? [i] : []));
  t.deepEqual([...starts, n], Array.from(golden.debug.get('cu_window_seqlens')!.data as BigInt64Array, Number));
});
