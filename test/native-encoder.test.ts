// The encoder on the native backend (ORT C API addon, CPU EP): the goldens through padded
// buckets, repeated and concurrent requests through the same bindings, and a closed encoder.

import test from 'ava';
import { join } from 'node:path';
import { exportModel } from '../index.js';
import { VisionEncoder, VitgraphError } from '../index.js';
import { nativeAvailable } from '../src/runtime/native/index.js';
import { loadGolden, tempDir } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';

const NATIVE = nativeAvailable();
const nativeTest = NATIVE.ok ? test : test.skip;
if (!NATIVE.ok) console.log(`native-encoder tests skipped: ${NATIVE.reason}`);

nativeTest('goldens through padded buckets on the native backend (≤ 1e-4), 20 back-to-back and concurrent requests agree', async (t) => {
  const dir = await tempDir(t);
  const [tiny, single] = [await loadGolden('tiny'), await loadGolden('tiny_single')];
  const pkg = join(dir, 'pkg');
  await exportModel({ model: tiny.dir, out: pkg, maxPatches: [64, 256] });
  const encoder = await VisionEncoder.load(pkg, { backend: 'native', threads: 1, warmup: true });
  try {
    for (const golden of [tiny, single]) {
      const out = await encoder.encode([{ pixelValues: golden.pixelValues, gridThw: golden.gridThw }]);
      assertClose(t, `${golden.grid.length}-item golden image_embeds`, out.outputs.image_embeds!.data, golden.expected.imageEmbeds, 1e-4);
    }
    // Alternate the two requests 20 times: a stale bound buffer would show as the other's numbers.
    const first = await encoder.encode([{ pixelValues: tiny.pixelValues, gridThw: tiny.gridThw }]);
    const second = await encoder.encode([{ pixelValues: single.pixelValues, gridThw: single.gridThw }]);
    for (let i = 0; i < 20; i++) {
      const [golden, expected] = i % 2 ? [single, second] : [tiny, first];
      const out = await encoder.encode([{ pixelValues: golden.pixelValues, gridThw: golden.gridThw }]);
      t.deepEqual(out.outputs.image_embeds!.data, expected.outputs.image_embeds!.data);
    }
    const concurrent = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? single : tiny)).map((g) => encoder.encode([{ pixelValues: g.pixelValues, gridThw: g.gridThw }])));
    concurrent.forEach((out, i) => t.deepEqual(out.outputs.image_embeds!.data, (i % 2 ? second : first).outputs.image_embeds!.data));
  } finally {
    await encoder.close();
  }
  const closed = await t.throwsAsync(encoder.encode([{ pixelValues: tiny.pixelValues, gridThw: tiny.gridThw }]), { instanceOf: VitgraphError });
  t.regex(closed?.message ?? '', /closed/);
});

nativeTest('the native backend refuses a dynamic graph, naming the fix', async (t) => {
  const dir = await tempDir(t);
  const tiny = await loadGolden('tiny');
  const out = join(dir, 'dynamic.onnx');
  await exportModel({ model: tiny.dir, out });
  const error = await t.throwsAsync(VisionEncoder.load(out, { backend: 'native' }), { instanceOf: VitgraphError });
  t.is(error?.code, 'unsupported');
  t.regex(error?.message ?? '', /static output shapes/);
});
