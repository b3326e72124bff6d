// Element types, once: the DataType names (as onnxruntime-node names them), bytes per element,
// the ONNX TensorProto.DataType and safetensors codes, the typed array each travels in, and the
// float format conversions between float32, IEEE float16 and bfloat16. Every other dtype table in
// vitgraph (the builder's, the readers', the sessions', the native addon's) is derived from this one.
//
// Half types travel as raw bits in Uint16Array. Every conversion is exact where the target can hold
// the value, and rounds to nearest, ties to even, where it cannot. The loops work on integer bit
// patterns (a Uint32Array view of the float32 data) so that they allocate nothing per element.

import { invalidArgument } from './errors.js';

/** Element types vitgraph moves around, named as onnxruntime-node names them. */
export type DataType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** The tag a safetensors header gives a tensor's dtype (I16 has no DataType). */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The typed array each DataType's elements travel in. */
export interface TypedArrayOf {
  float32: Float32Array;
  float16: Uint16Array; // raw IEEE half bits
  bfloat16: Uint16Array; // raw bfloat16 bits
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

interface DTypeFacts<T extends DataType> {
  readonly bytes: number;
  /** onnx.proto TensorProto.DataType. */
  readonly onnx: number;
  readonly safetensors: SafetensorsDType;
  readonly array: new (length: number) => TypedArrayOf[T];
}

/** Every DataType's facts: the one table the others derive from. */
export const DTYPES: { readonly [T in DataType]: DTypeFacts<T> } = {
  float32: { bytes: 4, onnx: 1, safetensors: 'F32', array: Float32Array },
  uint8: { bytes: 1, onnx: 2, safetensors: 'U8', array: Uint8Array },
  int8: { bytes: 1, onnx: 3, safetensors: 'I8', array: Int8Array },
  int32: { bytes: 4, onnx: 6, safetensors: 'I32', array: Int32Array },
  int64: { bytes: 8, onnx: 7, safetensors: 'I64', array: BigInt64Array },
  bool: { bytes: 1, onnx: 9, safetensors: 'BOOL', array: Uint8Array },
  float16: { bytes: 2, onnx: 10, safetensors: 'F16', array: Uint16Array },
  float64: { bytes: 8, onnx: 11, safetensors: 'F64', array: Float64Array },
  bfloat16: { bytes: 2, onnx: 16, safetensors: 'BF16', array: Uint16Array },
};

export const DATA_TYPES = Object.keys(DTYPES) as DataType[];

export const BYTES_PER_ELEMENT: Readonly<Record<DataType, number>> = mapTypes((t) => DTYPES[t].bytes);

export const onnxTypeCode = (dtype: DataType): number => DTYPES[dtype].onnx;

export const dataTypeOfCode = (code: number): DataType | undefined => DATA_TYPES.find((t) => DTYPES[t].onnx === code);

export const safetensorsDTypeOf = (dtype: DataType): SafetensorsDType | undefined => DTYPES[dtype]?.safetensors;

export const dataTypeOfSafetensors = (tag: SafetensorsDType): DataType | undefined => DATA_TYPES.find((t) => DTYPES[t].safetensors === tag);

/** A typed array of `dtype` over a whole buffer (no copy). */
export function typedArrayOver<T extends DataType>(dtype: T, buffer: ArrayBuffer): TypedArrayOf[T] {
  const Array = DTYPES[dtype].array as unknown as new (buffer: ArrayBuffer) => TypedArrayOf[T];
  return new Array(buffer);
}

function mapTypes<V>(f: (t: DataType) => V): Readonly<Record<DataType, V>> {
  return Object.fromEntries(DATA_TYPES.map((t) => [t, f(t)])) as Record<DataType, V>;
}

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
  const n = aligned.byteLength / BYTES_PER_ELEMENT[from];
  if (!Number.isInteger(n)) throw invalidArgument(`${from} bytes`, `a multiple of ${BYTES_PER_ELEMENT[from]} bytes`, aligned.byteLength);
  let f32: Float32Array;
  if (from === 'float32') f32 = new Float32Array(buffer, byteOffset, n);
  else if (from === 'float64') f32 = Float32Array.from(new Float64Array(buffer, byteOffset, n));
  else if (from === 'float16') f32 = f16ToF32(new Uint16Array(buffer, byteOffset, n));
  else f32 = bf16ToF32(new Uint16Array(buffer, byteOffset, n));
  if (to === 'float32') return asBytes(f32);
  return asBytes(to === 'float16' ? f32ToF16(f32) : f32ToBf16(f32));
}

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
