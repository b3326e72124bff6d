// resizeBicubic on small cases, the expected weights computed with a float64 restatement of
// Pillow's coefficient rule; the photographs in image-golden.test.ts pin it against Pillow itself.

import test from 'ava';
import { VitgraphError } from '../src/errors.js';
import { bicubicAxisFilter, resizeBicubic } from '../src/image/index.js';

test('2 → 4 upscale of [0, 255]: weights (1.0882, −0.0882) and (0.7929, 0.2071) give [0, 53, 202, 255]', (t) => {
  // Output 1 has centre 0.75: kernel(−0.25) = 0.8672, kernel(0.75) = 0.2266, normalized by their sum 1.0938.
  const filter = bicubicAxisFilter(2, 4);
  t.is(filter.taps, 5);
  t.deepEqual(Array.from(filter.first), [0, 0, 0, 0]);
  t.deepEqual(Array.from(filter.count), [2, 2, 2, 2]);
  t.deepEqual(Array.from(filter.weights.subarray(5, 7)), [3325484, 868820]); // × 2^22, rounded half away from zero
  t.deepEqual(Array.from(filter.weights.subarray(0, 2)), [4564390, -370086]);
  t.deepEqual(Array.from(resizeBicubic(Uint8Array.from([0, 255]), 2, 1, 1, 4, 1)), [0, 53, 202, 255]); // horizontal pass only
  t.deepEqual(Array.from(resizeBicubic(Uint8Array.from([0, 255]), 1, 2, 1, 1, 4)), [0, 53, 202, 255]); // vertical pass only
});

test('a downscale widens the kernel by the scale factor', (t) => {
  const filter = bicubicAxisFilter(300, 100); // support 2·3 = 6 → 2·6 + 1 taps
  t.is(filter.taps, 13);
  t.deepEqual([filter.first[50], filter.count[50]], [146, 12]); // centre 151.5 ± 6, ends rounded: [146, 158)
  const sum = filter.weights.subarray(50 * 13, 51 * 13).reduce((a, b) => a + b, 0);
  t.true(Math.abs(sum - 2 ** 22) <= 13, `weights sum to 2^22 within rounding, got ${sum}`);
});

test('a flat image stays flat at any scale, in every channel', (t) => {
  const [w, h] = [37, 23];
  const src = new Uint8Array(w * h * 3);
  for (let i = 0; i < src.length; i += 3) src.set([17, 128, 250], i);
  for (const [dw, dh] of [
    [96, 64],
    [5, 3],
    [37, 64],
    [8, 23],
  ] as const) {
    const out = resizeBicubic(src, w, h, 3, dw, dh);
    t.is(out.length, dw * dh * 3);
    let off = 0;
    for (let i = 0; i < out.length; i += 3) if (out[i] !== 17 || out[i + 1] !== 128 || out[i + 2] !== 250) off++;
    t.is(off, 0, `${w}×${h} → ${dw}×${dh}`);
  }
});

test('same size returns a copy; wrong sizes are invalid_argument', (t) => {
  const src = Uint8Array.from([1, 2, 3, 4]);
  const out = resizeBicubic(src, 2, 2, 1, 2, 2);
  t.deepEqual(out, src);
  t.not(out, src);
  const error = t.throws(() => resizeBicubic(src, 3, 2, 1, 4, 4), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.is(error?.message, 'resizeBicubic source length: expected 3×2×1 = 6 bytes, got 4');
  t.throws(() => resizeBicubic(src, 2, 2, 1, 0, 4), { message: /resizeBicubic target width: expected a positive integer, got 0/ });
});
