// Item isolation in the padded buckets (issue 9, item 3): a NaN or Inf in one item's pixels must
// never reach another item's outputs. Every tower's block-diagonal attention zeroes non-finite
// K and V before the fused op (graphs/shared/attention.ts), so cross-item terms are exactly
// 0·finite. Checked on onnxruntime-node with two items in one bucket, for Qwen3-VL, Qwen2-VL and
// Qwen2.5-VL (golden weights): item 1 next to a poisoned item 0 is bit-identical to item 1 next to
// a clean item 0, and to item 1 alone in the same bucket; item 0's token holding the bad patch is
// NaN (its other tokens are finite but meaningless: the host runtime rejects non-finite pixels).

import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GraphBuilder, ParameterSource } from '../src/onnx/index.js';
import { hostTensor } from '../src/tensor.js';
import * as qwen3 from '../graphs/qwen3-vl/index.js';
import * as qwen2 from '../graphs/qwen2-vl/index.js';
import * as qwen25 from '../graphs/qwen2.5-vl/index.js';
import type { GridRow } from './reference/qwen3vl.js';
import { ENCODER_FIXTURES } from './helpers/files.js';
import { padToBucket, sessionOf } from './helpers/qwen2.js';
import { normal, rng } from './helpers/random.js';

interface Tower {
  readonly fixture: string;
  readonly patchDim: number;
  readonly out: number;
  readonly build: (config: unknown, params: ParameterSource, bucket: { maxPatches: number; maxItems: number }) => GraphBuilder;
}

const TOWERS: Readonly<Record<string, Tower>> = {
  'Qwen3-VL': { fixture: 'tiny', patchDim: 1536, out: 80, build: (c, p, b) => qwen3.buildPaddedGraph(qwen3.parseConfig(c), p, b) },
  'Qwen2-VL': { fixture: 'qwen2vl_tiny', patchDim: 1176, out: 80, build: (c, p, b) => qwen2.buildPaddedGraph(qwen2.parseConfig(c), p, b) },
  'Qwen2.5-VL': { fixture: 'qwen2_5vl_tiny', patchDim: 1176, out: 80, build: (c, p, b) => qwen25.buildPaddedGraph(qwen25.parseConfig(c), p, b) },
};

const ITEM0: GridRow = [1, 8, 10]; // 80 rows: two windows at 112 px for Qwen2.5-VL
const ITEM1: GridRow = [1, 6, 4]; // 24 rows
const BUCKET = { maxPatches: 128, maxItems: 2 };
const BAD_ROW = 37; // a patch of item 0: merged token 9

function rows(patchDim: number, count: number, seed: number): Float32Array {
  const gauss = normal(rng(seed));
  return Float32Array.from({ length: count * patchDim }, gauss);
}

for (const [name, tower] of Object.entries(TOWERS)) {
  for (const poison of [Number.NaN, Number.POSITIVE_INFINITY] as const) {
    test(`${name}: a ${poison} in item 0's pixels leaves item 1 bit-identical (next to a clean item 0, and alone)`, async (t) => {
      const dir = join(ENCODER_FIXTURES, tower.fixture);
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as unknown;
      const session = await sessionOf(t, dir, 'float32', (params) => tower.build(config, params, BUCKET));
      const n0 = ITEM0[0] * ITEM0[1] * ITEM0[2];
      const n1 = ITEM1[0] * ITEM1[1] * ITEM1[2];
      const clean0 = rows(tower.patchDim, n0, 1);
      const item1 = rows(tower.patchDim, n1, 2);
      const bad0 = clean0.slice();
      bad0.fill(poison, BAD_ROW * tower.patchDim + 5, BAD_ROW * tower.patchDim + 6); // one value of one patch

      const run = async (pixels: Float32Array, grid: GridRow[]): Promise<Float32Array> => {
        const feeds = padToBucket(hostTensor('float32', [pixels.length / tower.patchDim, tower.patchDim], pixels), grid, BUCKET.maxPatches, BUCKET.maxItems);
        return (await session.run(feeds)).image_embeds!.data as Float32Array;
      };
      const concat = (a: Float32Array, b: Float32Array): Float32Array => Float32Array.from([...a, ...b]);
      const token = tower.out;
      const t0 = n0 / 4;
      const t1 = n1 / 4;
      const poisoned = await run(concat(bad0, item1), [ITEM0, ITEM1]);
      const clean = await run(concat(clean0, item1), [ITEM0, ITEM1]);
      const alone = await run(item1, [ITEM1]);

      const item1Rows = (out: Float32Array, from: number): Float32Array => out.slice(from * token, (from + t1) * token);
      t.deepEqual(item1Rows(poisoned, t0), item1Rows(clean, t0), 'item 1 next to a poisoned item 0 = next to a clean one, bit for bit');
      t.true(item1Rows(poisoned, t0).every(Number.isFinite));
      const vsAlone = item1Rows(alone, 0);
      const differing = item1Rows(poisoned, t0).filter((v, i) => !Object.is(v, vsAlone[i])).length;
      t.log(`item 1 vs item 1 alone in the same bucket: ${differing} of ${vsAlone.length} values differ`);
      t.deepEqual(item1Rows(poisoned, t0), vsAlone, 'item 1 next to a poisoned item 0 = item 1 alone, bit for bit');

      const badToken = poisoned.subarray(Math.floor(BAD_ROW / 4) * token, (Math.floor(BAD_ROW / 4) + 1) * token);
      t.true(badToken.every(Number.isNaN), "item 0's token holding the bad patch is all NaN");
    });
  }
}
