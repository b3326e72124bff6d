// Weight quantization for ONNX Runtime's quantized matmuls, from float32 Linear weights
// [N, K] (torch layout: out × in), with no calibration data:
//  - block-wise codes for com.microsoft MatMulNBits (bits 8 or 4, one scale per block of K);
//  - per-output-channel int8 for com.microsoft DynamicQuantizeMatMul.
//
// Symmetric blocks store no zero points (ORT assumes 2^(bits−1)): weights of a normed
// transformer are centred on zero, the kernel skips the zero-point term, and the file is
// smaller. Asymmetric blocks (min/max with a uint8 zero point) are there for skewed weights.

import { invalidArgument } from '../errors.js';

export type QuantBits = 4 | 8;

export interface BlockQuantScheme {
  readonly bits: QuantBits;
  /** Weights per block along K sharing a scale: a power of two ≥ 16 (ORT's block_size). */
  readonly blockSize: number;
  /** true: codes centred on 2^(bits−1), no zero points; false: per-block min/max with zero points. */
  readonly symmetric: boolean;
}

/** MatMulNBits inputs for one weight, laid out as ORT reads them. */
export interface BlockQuantized {
  readonly scheme: BlockQuantScheme;
  readonly n: number;
  readonly k: number;
  /** Blocks per output row: ⌈K / blockSize⌉. */
  readonly blocks: number;
  /** uint8 [N, blocks, blockSize·bits/8]: codes in K order, 4-bit pairs low nibble first. */
  readonly codes: Uint8Array;
  /** float32 [N · blocks]. */
  readonly scales: Float32Array;
  /** uint8 [N · ⌈blocks·bits/8⌉], 4-bit pairs low nibble first; absent when symmetric. */
  readonly zeroPoints?: Uint8Array;
}

/** Quantizes `weight` [N, K] block-wise along K; a last partial block is padded with zeros. */
export function quantizeBlocks(weight: Float32Array, n: number, k: number, scheme: BlockQuantScheme): BlockQuantized {
  checkScheme(scheme);
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1 || weight.length !== n * k) {
    throw invalidArgument('weight to quantize', `${n}·${k} float32 values ([N, K])`, weight.length);
  }
  const { bits, blockSize, symmetric } = scheme;
  const blocks = Math.ceil(k / blockSize);
  const blobBytes = (blockSize * bits) / 8;
  const zpBytes = Math.ceil((blocks * bits) / 8);
  const maxCode = 2 ** bits - 1;
  const codes = new Uint8Array(n * blocks * blobBytes);
  const scales = new Float32Array(n * blocks);
  const zeroPoints = symmetric ? undefined : new Uint8Array(n * zpBytes);
  const block = new Uint8Array(blockSize); // one block's codes before packing
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const start = row * k + b * blockSize;
      const end = row * k + Math.min((b + 1) * blockSize, k);
      const { scale, zeroPoint } = symmetric ? symmetricBlock(weight, start, end, bits) : asymmetricBlock(weight, start, end, bits);
      block.fill(zeroPoint);
      for (let i = start; i < end; i++) block[i - start] = scale === 0 ? zeroPoint : clamp(Math.round(weight[i]! / scale) + zeroPoint, 0, maxCode);
      const index = row * blocks + b;
      scales[index] = scale;
      packCodes(block, bits, codes, index * blobBytes);
      if (zeroPoints) setCode(zeroPoints, row * zpBytes, b, bits, zeroPoint);
    }
  }
  return { scheme, n, k, blocks, codes, scales, ...(zeroPoints ? { zeroPoints } : {}) };
}

/** The float32 weight [N, K] a quantized one stands for: (code − zero point) · scale. */
export function dequantizeBlocks(q: BlockQuantized): Float32Array {
  const { bits, blockSize } = q.scheme;
  const blobBytes = (blockSize * bits) / 8;
  const zpBytes = Math.ceil((q.blocks * bits) / 8);
  const out = new Float32Array(q.n * q.k);
  for (let row = 0; row < q.n; row++) {
    for (let b = 0; b < q.blocks; b++) {
      const index = row * q.blocks + b;
      const scale = q.scales[index]!;
      const zeroPoint = q.zeroPoints ? getCode(q.zeroPoints, row * zpBytes, b, bits) : 2 ** (bits - 1);
      for (let i = 0; i < blockSize && b * blockSize + i < q.k; i++) {
        out[row * q.k + b * blockSize + i] = (getCode(q.codes, index * blobBytes, i, bits) - zeroPoint) * scale;
      }
    }
  }
  return out;
}

/** DynamicQuantizeMatMul inputs: symmetric int8 per output channel, weight transposed to [K, N]. */
export interface ChannelQuantized {
  readonly n: number;
  readonly k: number;
  /** int8 [K, N]. */
  readonly codes: Int8Array;
  /** float32 [N]: column j dequantizes as codes[:, j] · scales[j]. */
  readonly scales: Float32Array;
}

/** Quantizes `weight` [N, K] to int8 with one scale per output row (max |w| / 127). */
export function quantizeChannels(weight: Float32Array, n: number, k: number): ChannelQuantized {
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1 || weight.length !== n * k) {
    throw invalidArgument('weight to quantize', `${n}·${k} float32 values ([N, K])`, weight.length);
  }
  const codes = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let row = 0; row < n; row++) {
    let max = 0;
    for (let i = row * k; i < (row + 1) * k; i++) max = Math.max(max, Math.abs(weight[i]!));
    const scale = Math.fround(max / 127);
    scales[row] = scale;
    const inverse = scale === 0 ? 0 : 1 / scale;
    for (let i = 0; i < k; i++) codes[i * n + row] = clamp(Math.round(weight[row * k + i]! * inverse), -127, 127);
  }
  return { n, k, codes, scales };
}

// ---- one block ------------------------------------------------------------------------------------

/**
 * Codes −2^(bits−1) … 2^(bits−1)−1 around zero point 2^(bits−1). The scale maps the block's
 * largest-magnitude value onto −2^(bits−1) (its sign folded into the scale), using the whole
 * code range; if a value of the other sign would then round past the top code, the scale
 * falls back to max |w| / (2^(bits−1) − 1). Either way every value lies within half a step.
 */
function symmetricBlock(w: Float32Array, start: number, end: number, bits: QuantBits): { scale: number; zeroPoint: number } {
  const half = 2 ** (bits - 1);
  let extreme = 0;
  for (let i = start; i < end; i++) if (Math.abs(w[i]!) > Math.abs(extreme)) extreme = w[i]!;
  if (extreme === 0) return { scale: 0, zeroPoint: half };
  let scale = Math.fround(extreme / -half);
  for (let i = start; i < end; i++) {
    if (Math.round(w[i]! / scale) > half - 1) {
      scale = Math.fround(Math.abs(extreme) / (half - 1));
      break;
    }
  }
  return { scale, zeroPoint: half };
}

/** Codes 0 … 2^bits − 1 spanning [min(w, 0), max(w, 0)], zero at the rounded zero point. */
function asymmetricBlock(w: Float32Array, start: number, end: number, bits: QuantBits): { scale: number; zeroPoint: number } {
  let lo = 0;
  let hi = 0;
  for (let i = start; i < end; i++) {
    lo = Math.min(lo, w[i]!);
    hi = Math.max(hi, w[i]!);
  }
  const maxCode = 2 ** bits - 1;
  const scale = Math.fround((hi - lo) / maxCode);
  if (scale === 0) return { scale: 0, zeroPoint: 0 };
  return { scale, zeroPoint: clamp(Math.round(-lo / scale), 0, maxCode) };
}

// ---- packing: 8-bit codes one per byte, 4-bit codes two per byte, low nibble first ------------------

function packCodes(block: Uint8Array, bits: QuantBits, out: Uint8Array, offset: number): void {
  if (bits === 8) {
    out.set(block, offset);
    return;
  }
  for (let i = 0; i < block.length; i += 2) out[offset + (i >> 1)] = block[i]! | (block[i + 1]! << 4);
}

function setCode(out: Uint8Array, offset: number, index: number, bits: QuantBits, code: number): void {
  if (bits === 8) out[offset + index] = code;
  else {
    const at = offset + (index >> 1);
    out[at] = index & 1 ? (out[at]! & 0x0f) | (code << 4) : (out[at]! & 0xf0) | code;
  }
}

function getCode(data: Uint8Array, offset: number, index: number, bits: QuantBits): number {
  if (bits === 8) return data[offset + index]!;
  const byte = data[offset + (index >> 1)]!;
  return index & 1 ? byte >> 4 : byte & 0x0f;
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

function checkScheme(scheme: BlockQuantScheme): void {
  if (scheme.bits !== 4 && scheme.bits !== 8) throw invalidArgument('quantization bits', '4 or 8', scheme.bits);
  const b = scheme.blockSize;
  if (!Number.isInteger(b) || b < 16 || (b & (b - 1)) !== 0) throw invalidArgument('quantization block size', 'a power of two ≥ 16', b);
}
