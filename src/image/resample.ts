// Antialiased bicubic resize of uint8 pixels, reproducing Pillow's `Image.resize(size, BICUBIC)`
// bit for bit (Pillow `libImaging/Resample.c`: `ImagingResample` → `ImagingResampleInner`, the
// 8-bit-per-channel path, as in Pillow 9.4).
//
// What Pillow does, restated:
// * The filter is separable. For each axis and each output index it builds a window of input
//   indices and a weight per input, once, in float64: the kernel is Keys' cubic with a = −0.5 and
//   support 2, widened by the downscale factor (never narrowed when upscaling), centred on the
//   output pixel's centre mapped into the input ((i + 0.5)·in/out); the window is rounded to whole
//   input pixels and clipped to the image, and the weights are divided by their sum.
// * The weights are then turned into 22-bit fixed point (32 − 8 bits of data − 2 bits of headroom),
//   rounding half away from zero.
// * The horizontal pass runs first, over only the input rows the vertical pass will read; its result
//   is rounded (add half, shift right 22) and clipped to uint8. The vertical pass then runs on that
//   uint8 image with the same arithmetic. An axis whose size does not change is not filtered.

import { invalidArgument } from '../errors.js';

/** Fractional bits of the fixed-point weights (`PRECISION_BITS` in Pillow). */
const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
/** Keys' cubic reaches zero at |x| = 2. */
const BICUBIC_SUPPORT = 2;

/** One axis of the separable filter: the input window and fixed-point weights of every output index. */
export interface AxisFilter {
  /** Weights stored per output index (the longest window); window `i` uses the first `count[i]`. */
  readonly taps: number;
  /** [out] first input index of each window. */
  readonly first: Int32Array;
  /** [out] window length. */
  readonly count: Int32Array;
  /** [out, taps] weights scaled by 2^22, summing to ≈ 2^22 per output index. */
  readonly weights: Int32Array;
}

/** Keys' cubic convolution kernel with a = −0.5 (Pillow `bicubic_filter`; same operation order). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/**
 * The filter mapping `inSize` samples onto `outSize` (Pillow `precompute_coeffs` followed by
 * `normalize_coeffs_8bpc`, for the full-image box [0, inSize)).
 */
export function bicubicAxisFilter(inSize: number, outSize: number): AxisFilter {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const window = new Float64Array(taps);
  const inverseScale = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // C `(int)` truncates toward zero; the clip to [0, inSize] follows.
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const n = hi - lo;
    let sum = 0;
    for (let t = 0; t < n; t++) {
      const w = bicubic((t + lo - center + 0.5) * inverseScale);
      window[t] = w;
      sum += w;
    }
    for (let t = 0; t < n; t++) {
      const w = sum !== 0 ? window[t]! / sum : window[t]!;
      const scaled = w * (1 << PRECISION_BITS);
      weights[i * taps + t] = Math.trunc(w < 0 ? scaled - 0.5 : scaled + 0.5);
    }
    first[i] = lo;
    count[i] = n;
  }
  return { taps, first, count, weights };
}

/**
 * Resizes an interleaved uint8 image `[srcH, srcW, channels]` to `[dstH, dstW, channels]` with
 * Pillow's antialiased bicubic filter, bit-exactly.
 *
 * Memory: besides the output, one uint8 buffer of `dstW × (rows the vertical pass reads) × channels`
 * and the per-axis weight tables; no per-pixel floating-point arrays.
 */
export function resizeBicubic(src: Uint8Array, srcW: number, srcH: number, channels: number, dstW: number, dstH: number): Uint8Array {
  for (const [what, value] of [
    ['source width', srcW],
    ['source height', srcH],
    ['channels', channels],
    ['target width', dstW],
    ['target height', dstH],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw invalidArgument(`resizeBicubic ${what}`, 'a positive integer', value);
  }
  if (src.length !== srcW * srcH * channels) {
    throw invalidArgument('resizeBicubic source length', `${srcW}×${srcH}×${channels} = ${srcW * srcH * channels} bytes`, src.length);
  }
  if (dstW === srcW && dstH === srcH) return src.slice();

  const vertical = bicubicAxisFilter(srcH, dstH);
  if (dstW === srcW) return resampleColumns(src, srcW * channels, vertical, 0, dstH);

  // Only the input rows some output row reads: [firstRow, lastRow).
  const firstRow = vertical.first[0]!;
  const lastRow = vertical.first[dstH - 1]! + vertical.count[dstH - 1]!;
  const rows = resampleRows(src, srcW, channels, firstRow, lastRow - firstRow, bicubicAxisFilter(srcW, dstW));
  if (dstH === srcH) return rows;
  return resampleColumns(rows, dstW * channels, vertical, firstRow, dstH);
}

/**
 * Horizontal pass (Pillow `ImagingResampleHorizontal_8bpc`): rows [rowStart, rowStart + rowCount)
 * of `[*, srcW, channels]` → `[rowCount, out, channels]`.
 */
function resampleRows(src: Uint8Array, srcW: number, channels: number, rowStart: number, rowCount: number, filter: AxisFilter): Uint8Array {
  const { taps, first, count, weights } = filter;
  const dstW = first.length;
  const out = new Uint8Array(rowCount * dstW * channels);
  // A clamped view stores the shifted sums clipped to [0, 255], as Pillow's `clip8` does.
  const clamped = new Uint8ClampedArray(out.buffer, out.byteOffset, out.length);
  for (let y = 0; y < rowCount; y++) {
    const srcRow = (rowStart + y) * srcW * channels;
    let o = y * dstW * channels;
    for (let x = 0; x < dstW; x++) {
      const n = count[x]!;
      const k0 = x * taps;
      let p = srcRow + first[x]! * channels;
      if (channels === 3) {
        let r = HALF;
        let g = HALF;
        let b = HALF;
        for (let t = 0; t < n; t++, p += 3) {
          const k = weights[k0 + t]!;
          r = (r + src[p]! * k) | 0;
          g = (g + src[p + 1]! * k) | 0;
          b = (b + src[p + 2]! * k) | 0;
        }
        clamped[o++] = r >> PRECISION_BITS;
        clamped[o++] = g >> PRECISION_BITS;
        clamped[o++] = b >> PRECISION_BITS;
      } else {
        for (let c = 0; c < channels; c++) {
          let s = HALF;
          for (let t = 0, q = p + c; t < n; t++, q += channels) s = (s + src[q]! * weights[k0 + t]!) | 0;
          clamped[o++] = s >> PRECISION_BITS;
        }
      }
    }
  }
  return out;
}

/**
 * Vertical pass (Pillow `ImagingResampleVertical_8bpc`): `[*, rowLength]` → `[out, rowLength]`, where
 * input row r of the filter is row `r − rowOffset` of `src`. Accumulates a whole output row tap by tap
 * so the input is read sequentially.
 */
function resampleColumns(src: Uint8Array, rowLength: number, filter: AxisFilter, rowOffset: number, dstH: number): Uint8Array {
  const { taps, first, count, weights } = filter;
  const out = new Uint8Array(dstH * rowLength);
  const clamped = new Uint8ClampedArray(out.buffer, out.byteOffset, out.length);
  const sums = new Int32Array(rowLength);
  for (let y = 0; y < dstH; y++) {
    sums.fill(HALF);
    const n = count[y]!;
    for (let t = 0; t < n; t++) {
      const k = weights[y * taps + t]!;
      const row = (first[y]! - rowOffset + t) * rowLength;
      for (let i = 0; i < rowLength; i++) sums[i] = sums[i]! + src[row + i]! * k;
    }
    const o = y * rowLength;
    for (let i = 0; i < rowLength; i++) clamped[o + i] = sums[i]! >> PRECISION_BITS;
  }
  return out;
}
