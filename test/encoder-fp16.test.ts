// fp16 export: weights and matmuls in half precision, LayerNorm statistics, softmax, rotary and
// position interpolation in float32. Expected error vs the float64 reference on the tiny goldens:
// max |Δ| ≤ 1e-2 absolute on outputs of magnitude ~0.5–2.7 (measured ≈ 2e-3); ORT's CPU EP runs it.

import test from 'ava';
import { join } from 'node:path';
import { exportModel, VitgraphError } from '../index.js';
import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { inspectModel } from '../src/onnx/inspect.js';
import { deepstackBlocks, loadGolden, tempDir } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';

const FP16_ATOL = 1e-2;

for (const name of ['tiny', 'tiny_single'] as const) {
  test(`${name}: fp16 dynamic graph and padded bucket within ${FP16_ATOL} of the float64 reference`, async (t) => {
    const golden = await loadGolden(name);
    const pkg = join(await tempDir(t), 'pkg');
    await exportModel({ model: golden.dir, out: pkg, maxPatches: [256], dtype: 'float16' });
    for (const graphs of ['dynamic', 'buckets'] as const) {
      const runtime = await EncoderRuntime.open(pkg, { graphs, threads: 1 });
      try {
        const out = await runtime.run(golden.pixelValues, golden.gridThw);
        const err = assertClose(t, `${graphs} image_embeds`, out.image_embeds!.data, golden.expected.imageEmbeds, FP16_ATOL);
        t.true(err > 1e-5, 'fp16 really ran in reduced precision (error above fp32 level)');
        deepstackBlocks(out.deepstack_embeds!.data, golden.expected.deepstack.length).forEach((block, j) =>
          assertClose(t, `${graphs} deepstack_embeds[${j}]`, block, golden.expected.deepstack[j]!, FP16_ATOL),
        );
      } finally {
        await runtime.close();
      }
    }
  });
}

test('fp16 graphs keep float32 I/O and store float16 weights; bfloat16 on CPU is refused with the remedy', async (t) => {
  const golden = await loadGolden('tiny');
  const dir = await tempDir(t);
  const out = join(dir, 'fp16.onnx');
  await exportModel({ model: golden.dir, out, dtype: 'float16' });
  const summary = await inspectModel(out);
  t.deepEqual(
    summary.inputs.map((i) => i.dtype),
    ['float32', 'int64'],
  );
  t.deepEqual(
    summary.outputs.map((o) => o.dtype),
    ['float32', 'float32'],
  );
  t.is(summary.metadata['vitgraph.dtype'], 'float16');
  const bf16 = await t.throwsAsync(exportModel({ model: golden.dir, out: join(dir, 'bf16.onnx'), dtype: 'bfloat16' }), { instanceOf: VitgraphError });
  t.is(bf16?.code, 'unsupported');
  t.regex(bf16?.message ?? '', /bfloat16.*device.*cuda/s);
});
