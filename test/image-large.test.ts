// A 24-megapixel photo goes through in bounded memory: the decoded image, one horizontal-pass
// buffer and the resized frame, plus the output itself. Figures are logged, not asserted.

import test from 'ava';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { preprocess } from '../src/image/index.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';

const MiB = 1024 * 1024;

test('a 6000×4000 noise photo preprocesses to 4992×3328, grid [1, 208, 312]', async (t) => {
  const jpeg = await sharp({ create: { width: 6000, height: 4000, channels: 3, background: 'black', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .jpeg({ quality: 90 })
    .toBuffer();
  const before = process.memoryUsage();
  const start = performance.now();
  const out = await preprocess([jpeg], { processor: QWEN3_VL_PROCESSOR });
  const seconds = (performance.now() - start) / 1000;
  const after = process.memoryUsage();

  t.deepEqual(out.items[0]!.resized, { height: 3328, width: 4992 });
  t.deepEqual(Array.from(out.gridThw), [1n, 208n, 312n]);
  t.is(out.items[0]!.rows, 208 * 312);
  t.is(out.pixelValues.length, 208 * 312 * 1536);
  // Every value is a normalized uint8 level in [−1, 1]; spot-check a spread of them.
  let outside = 0;
  for (let i = 0; i < out.pixelValues.length; i += 9973) if (!(Math.abs(out.pixelValues[i]!) <= 1)) outside++;
  t.is(outside, 0);

  const output = out.pixelValues.byteLength / MiB;
  t.log(
    `${seconds.toFixed(2)} s; pixel_values ${output.toFixed(0)} MiB; external+arrayBuffers after − before ` +
      `${((after.arrayBuffers - before.arrayBuffers) / MiB).toFixed(0)} MiB; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB ` +
      `(decoded 6000×4000×3 = ${((6000 * 4000 * 3) / MiB).toFixed(0)} MiB, horizontal pass 4992×4000×3 = ${((4992 * 4000 * 3) / MiB).toFixed(0)} MiB, ` +
      `resized ${((4992 * 3328 * 3) / MiB).toFixed(0)} MiB)`,
  );
});
