// Float conversions: known bit patterns, subnormals, infinities, NaN, and round-to-nearest-even ties.
// Expected halves are written as bit patterns worked out by hand from the IEEE 754 layouts.

import test from 'ava';
import { bf16ToF32, convertFloatBytes, f16ToF32, f32ToBf16, f32ToF16 } from '../src/dtype.js';

const f32 = (...values: number[]): Float32Array => Float32Array.from(values);
const f32Bits = (...bits: number[]): Float32Array => new Float32Array(Uint32Array.from(bits).buffer);
const u16 = (...bits: number[]): Uint16Array => Uint16Array.from(bits);
const hex = (a: ArrayLike<number>): string[] => Array.from(a, (x) => `0x${x.toString(16).padStart(4, '0')}`);

test('bf16 → f32 is the exact upper-half shift', (t) => {
  const out = bf16ToF32(u16(0x3f80, 0xc000, 0x8000, 0x0001, 0x7f80, 0xff80, 0x3eab));
  t.deepEqual([...out.slice(0, 6)], [1, -2, -0, 2 ** -133, Infinity, -Infinity]);
  t.true(Object.is(out[2], -0));
  t.is(new Uint32Array(out.buffer)[6], 0x3eab0000);
  t.true(Number.isNaN(bf16ToF32(u16(0x7fc0))[0]));
});

test('f16 → f32 is exact for normals, subnormals, zeros, infinities and NaN', (t) => {
  const out = f16ToF32(u16(0x3c00, 0xc000, 0x3555, 0x7bff, 0x0400, 0x03ff, 0x0001, 0x8001, 0x8000, 0x7c00, 0xfc00));
  t.deepEqual([...out], [1, -2, 0.333251953125, 65504, 2 ** -14, 1023 * 2 ** -24, 2 ** -24, -(2 ** -24), -0, Infinity, -Infinity]);
  t.true(Object.is(out[8], -0));
  const nan = f16ToF32(u16(0x7e00, 0xfd01));
  t.true(Number.isNaN(nan[0]) && Number.isNaN(nan[1]));
  t.is(new Uint32Array(nan.buffer)[1]! >>> 31, 1, 'NaN keeps its sign');
});

test('every half and every bfloat16 survives a round trip through f32', (t) => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const isF16NaN = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
  const isBf16NaN = (h: number): boolean => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
  const viaF16 = f32ToF16(f16ToF32(all));
  const viaBf16 = f32ToBf16(bf16ToF32(all));
  let bad = 0;
  for (let h = 0; h < 65536; h++) {
    if (isF16NaN(h) ? !isF16NaN(viaF16[h]!) : viaF16[h] !== h) bad++;
    if (isBf16NaN(h) ? !isBf16NaN(viaBf16[h]!) : viaBf16[h] !== h) bad++;
  }
  t.is(bad, 0);
});

test('f32 → f16 rounds to nearest, ties to even, in the normal range', (t) => {
  const ulp = 2 ** -10; // spacing of halves in [1, 2)
  const out = f32ToF16(f32(1 + ulp / 2, 1 + (3 * ulp) / 2, 1 + ulp / 2 + 2 ** -20, 1 + ulp / 2 - 2 ** -20, -(1 + ulp / 2)));
  t.deepEqual(hex(out), hex([0x3c00, 0x3c02, 0x3c01, 0x3c00, 0xbc00]));
});

test('f32 → f16 overflow: 65519 stays finite, 65520 (a tie to even) and beyond become inf', (t) => {
  const out = f32ToF16(f32(65504, 65519, 65520, 1e6, -1e6, Infinity, -Infinity, 3.4e38));
  t.deepEqual(hex(out), hex([0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7c00, 0xfc00, 0x7c00]));
});

test('f32 → f16 rounds into subnormals with ties to even', (t) => {
  const unit = 2 ** -24; // smallest half subnormal
  const out = f32ToF16(f32(unit, unit / 2, 0.75 * unit, 1.5 * unit, 2.5 * unit, 1023 * unit, 1023.5 * unit, 2 ** -14, -unit, 1e-45, -0, 0.4 * unit));
  t.deepEqual(hex(out), hex([0x0001, 0x0000, 0x0001, 0x0002, 0x0002, 0x03ff, 0x0400, 0x0400, 0x8001, 0x0000, 0x8000, 0x0000]));
});

test('f32 → f16 keeps NaN a NaN (never inf) with its sign', (t) => {
  const out = f32ToF16(f32Bits(0x7fc00000, 0x7f800001, 0xffc00000));
  for (const h of out) t.true((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, `0x${h.toString(16)} is NaN`);
  t.is(out[2]! >>> 15, 1);
});

test('f32 → bf16 rounds to nearest even, overflows to inf, keeps NaN', (t) => {
  const ulp = 2 ** -7; // spacing of bfloat16 in [1, 2)
  const out = f32ToBf16(f32(1 + ulp / 2, 1 + (3 * ulp) / 2, 1 + ulp / 2 + 2 ** -20, -1.5, 3.4028234663852886e38));
  t.deepEqual(hex(out), hex([0x3f80, 0x3f82, 0x3f81, 0xbfc0, 0x7f80]));
  const special = f32ToBf16(f32Bits(0x7f800001, 0xff800000, 0x00008000, 0x00018000, 0x80000000));
  t.deepEqual(hex(special.slice(1)), hex([0xff80, 0x0000, 0x0002, 0x8000]));
  t.true((special[0]! & 0x7f80) === 0x7f80 && (special[0]! & 0x7f) !== 0, 'signalling NaN with low payload stays NaN');
});

test('convertFloatBytes converts between stored and requested types, also from unaligned bytes', (t) => {
  const halves = u16(0x3c00, 0xc000, 0x0001);
  const unaligned = new Uint8Array(7).subarray(1);
  unaligned.set(new Uint8Array(halves.buffer));
  const asF32 = convertFloatBytes(unaligned, 'float16', 'float32');
  t.deepEqual([...new Float32Array(asF32.buffer, asF32.byteOffset, 3)], [1, -2, 2 ** -24]);
  const asBf16 = convertFloatBytes(unaligned, 'float16', 'bfloat16');
  t.deepEqual(hex(new Uint16Array(asBf16.buffer, asBf16.byteOffset, 3)), hex([0x3f80, 0xc000, 0x3380]));
  const f64 = new Uint8Array(Float64Array.from([0.1, -3]).buffer);
  t.deepEqual([...new Float32Array(convertFloatBytes(f64, 'float64', 'float32').buffer)], [Math.fround(0.1), -3]);
  const same = new Uint8Array(8);
  t.is(convertFloatBytes(same, 'float32', 'float32'), same);
});

test('convertFloatBytes rejects a byte count that is not a whole number of elements', (t) => {
  t.throws(() => convertFloatBytes(new Uint8Array(6), 'float32', 'float16'), { message: /float32 bytes: expected a multiple of 4 bytes, got 6/ });
});
