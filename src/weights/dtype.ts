// Float format conversion between float32, IEEE float16 and bfloat16, over whole typed arrays.
// Half types travel as raw bits in Uint16Array (as in tensor.ts). Every conversion is exact where
// the target can hold the value, and rounds to nearest, ties to even, where it cannot.
// The loops work on integer bit patterns (a Uint32Array view of the float32 data) so that they
// allocate nothing per element.

import { invalidArgument } from '../errors.js';

/** Float types a checkpoint tensor may be stored in, and the types `convertFloatBytes` produces. */
export type FloatSource = 'float64' | 'float32' | 'float16' | 'bfloat16';
export type FloatTarget = 'float32' | 'float16' | 'bfloat16';

/** bfloat16 → float32: bfloat16 is the top half of a float32, so this is a shift and always exact. */
export function bf16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
  return dst;
}

/** float16 → float32, exact for every bit pattern (subnormals, ±0, ±inf, NaN payloads). */
export function f16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const table = f16Table();
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return dst;
}

/** float32 → bfloat16, round to nearest even; NaN stays NaN (quieted, sign kept). */
export function f32ToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    // Adding 0x7fff plus the lowest kept bit rounds ties to even; the sum stays below 2^32 for every
    // non-NaN pattern, and overflow past the largest finite value correctly lands on infinity.
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return dst;
}

/** float32 → float16, round to nearest even, including into the subnormal range; overflow → ±inf. */
export function f32ToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const abs = x & 0x7fffffff;
    let h: number;
    if (abs > 0x7f800000) {
      h = 0x7e00 | ((abs >>> 13) & 0x3ff); // NaN: quiet bit set, top payload bits kept
    } else if (abs >= 0x477ff000) {
      h = 0x7c00; // ≥ 65520 (halfway between 65504 and 2^16) rounds to inf; also inf itself
    } else if (abs >= 0x38800000) {
      // Normal half (≥ 2^-14): rebias the exponent by 127 − 15 = 112 and drop 13 mantissa bits.
      // A mantissa carry moves into the exponent, which is the right result.
      const m = abs - 0x38000000;
      h = (m + 0xfff + ((m >>> 13) & 1)) >>> 13;
    } else if (abs > 0x33000000) {
      // Subnormal half: value / 2^-24 = mantissa · 2^(e − 126); drop (126 − e) bits, 14..24 of them.
      // Rounding up from the largest subnormal yields 0x0400, the smallest normal, as it should.
      const e = abs >>> 23;
      const mantissa = (abs & 0x7fffff) | 0x800000;
      const shift = 126 - e;
      const rest = mantissa & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      h = mantissa >>> shift;
      if (rest > half || (rest === half && (h & 1) === 1)) h++;
    } else {
      h = 0; // ≤ 2^-25 (exactly 2^-25 is a tie and goes to the even value, zero)
    }
    dst[i] = sign | h;
  }
  return dst;
}

/**
 * Converts little-endian float bytes from one float type to another; returns `bytes` itself when the
 * types agree. float64 goes through float32 (Math.fround rounding), so a float64 → half conversion
 * rounds twice; checkpoints are not stored in float64 in practice.
 */
export function convertFloatBytes(bytes: Uint8Array, from: FloatSource, to: FloatTarget): Uint8Array {
  if (from === to) return bytes;
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes); // copy to align
  const { buffer, byteOffset } = aligned;
  const n = aligned.byteLength / BYTES[from];
  if (!Number.isInteger(n)) throw invalidArgument(`${from} bytes`, `a multiple of ${BYTES[from]} bytes`, aligned.byteLength);
  let f32: Float32Array;
  if (from === 'float32') f32 = new Float32Array(buffer, byteOffset, n);
  else if (from === 'float64') f32 = Float32Array.from(new Float64Array(buffer, byteOffset, n));
  else if (from === 'float16') f32 = f16ToF32(new Uint16Array(buffer, byteOffset, n));
  else f32 = bf16ToF32(new Uint16Array(buffer, byteOffset, n));
  if (to === 'float32') return asBytes(f32);
  return asBytes(to === 'float16' ? f32ToF16(f32) : f32ToBf16(f32));
}

const BYTES: Readonly<Record<FloatSource, number>> = { float64: 8, float32: 4, float16: 2, bfloat16: 2 };

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
const asBytes = (a: Float32Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// float16 → float32 bit patterns for all 65536 halves (256 KiB), built on first use.
let F16_TABLE: Uint32Array | undefined;

function f16Table(): Uint32Array {
  if (F16_TABLE) return F16_TABLE;
  const table = new Uint32Array(65536);
  const asFloat = new Float32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0x1f) table[h] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
    else if (exponent !== 0) table[h] = (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
    else asFloat[h] = (sign ? -1 : 1) * mantissa * 2 ** -24; // zero and subnormals, exact in float32
  }
  F16_TABLE = table;
  return table;
}
