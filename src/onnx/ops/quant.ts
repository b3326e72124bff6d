// Quantized matrix products: ONNX Runtime's weight-quantized com.microsoft MatMulNBits,
// DynamicQuantizeMatMul and MatMulIntegerToFloat (contrib opset 1), the standard
// DynamicQuantizeLinear-11 / MatMulInteger-10 pair they fuse from, and QuantizeLinear-21.

import { graphBuild } from '../../errors.js';
import { formatDims } from '../dims.js';
import type { Value } from '../graph.js';
import type { AccuracyLevel } from '../linear-scheme.js';
import { expectDType, expectRank, expectSameDType, graphOf } from './check.js';

const CONTRIB = 'com.microsoft';

export type { AccuracyLevel } from '../linear-scheme.js';

export interface MatMulNBitsOptions {
  /** Bits per weight code: 4 or 8 (2 exists in ORT but not on every CPU path). */
  bits: 4 | 8;
  /** Weights per block along K sharing one scale: a power of two ≥ 16. */
  blockSize: number;
  accuracyLevel?: AccuracyLevel;
  /** Packed uint8 [N · ⌈blocks·bits/8⌉] (or [N, ⌈blocks·bits/8⌉]); absent = symmetric, zero point 2^(bits−1). */
  zeroPoints?: Value;
  /** [N], added to the product. */
  bias?: Value;
}

/** Blocks per output row and bytes per block for `k` inputs (ORT's n_blocks_per_col and blob_size). */
export function nbitsLayout(k: number, bits: 4 | 8, blockSize: number): { blocks: number; blobBytes: number; zeroPointBytes: number } {
  const blocks = Math.ceil(k / blockSize);
  return { blocks, blobBytes: (blockSize * bits) / 8, zeroPointBytes: Math.ceil((blocks * bits) / 8) };
}

/**
 * com.microsoft MatMulNBits: y = a @ dequant(b)ᵀ + bias, the weight stored per output row in
 * blocks along K: a [..., K] float, b uint8 [N, blocks, blockSize·bits/8] with codes packed low
 * bits first, scales [N · blocks] (or [N, blocks]) of a's dtype → [..., N]. Block j of row n
 * dequantizes as (code − zero_point[n, j]) · scales[n, j].
 */
export function matMulNBits(a: Value, b: Value, scales: Value, options: MatMulNBitsOptions): Value {
  const op = 'MatMulNBits';
  const g = graphOf(op, a, b, scales);
  const fail = (problem: string): never => {
    throw graphBuild(g.pendingNodeName(op), problem);
  };
  expectDType(op, a, ['float32', 'float16']);
  expectSameDType(op, a, scales, ...(options.bias ? [options.bias] : []));
  expectDType(op, b, ['uint8']);
  expectRank(op, b, [3]);
  const { bits, blockSize } = options;
  if (bits !== 4 && bits !== 8) fail(`bits must be 4 or 8, got ${String(bits)}`);
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) fail(`block_size must be a power of two ≥ 16, got ${blockSize}`);
  const k = a.dim(-1);
  const n = b.dim(0);
  if (typeof k !== 'number' || typeof n !== 'number') return fail(`K and N must be static, got a ${formatDims(a.shape)} and b ${formatDims(b.shape)}`);
  const layout = nbitsLayout(k, bits, blockSize);
  if (b.dim(1) !== layout.blocks || b.dim(2) !== layout.blobBytes)
    fail(`b ${formatDims(b.shape)} does not hold K = ${k} in ${bits}-bit blocks of ${blockSize} (expects [${n}, ${layout.blocks}, ${layout.blobBytes}])`);
  expectRows(op, scales, n, layout.blocks, `[N·blocks] = [${n * layout.blocks}]`);
  if (options.zeroPoints) {
    expectDType(op, options.zeroPoints, ['uint8']);
    expectRows(op, options.zeroPoints, n, layout.zeroPointBytes, `packed uint8 [N·⌈blocks·bits/8⌉] = [${n * layout.zeroPointBytes}]`);
  }
  if (options.bias && (options.bias.rank !== 1 || options.bias.dim(0) !== n)) fail(`bias ${formatDims(options.bias.shape)} does not match N = ${n}`);
  return g.node(op, [a, b, scales, options.zeroPoints, undefined, options.bias], {
    domain: CONTRIB,
    outputs: [{ dtype: a.dtype, shape: [...a.shape.slice(0, -1), n] }],
    attributes: { K: k, N: n, bits, block_size: blockSize, accuracy_level: options.accuracyLevel },
  })[0]!;
}

/**
 * com.microsoft DynamicQuantizeMatMul: quantizes a to uint8 per tensor at run time and
 * multiplies by the int8/uint8 weight b [K, N] (note: not transposed) with scale bScale
 * [1] or [N] (per output channel) and optional zero point of b's dtype: a [..., K] float32 →
 * [..., N] float32, plus optional bias [N].
 */
export function dynamicQuantizeMatMul(a: Value, b: Value, bScale: Value, options: { bZeroPoint?: Value; bias?: Value } = {}): Value {
  const op = 'DynamicQuantizeMatMul';
  const g = graphOf(op, a, b, bScale);
  expectDType(op, a, ['float32']);
  expectSameDType(op, a, bScale, ...(options.bias ? [options.bias] : []));
  expectDType(op, b, ['int8', 'uint8']);
  expectRank(op, b, [2]);
  const n = b.dim(1);
  if (a.dim(-1) !== b.dim(0)) throw graphBuild(g.pendingNodeName(op), `a ${formatDims(a.shape)} does not match weight ${formatDims(b.shape)} (expects [K, N] with K = ${a.dim(-1)})`);
  for (const [label, v] of [
    ['b_scale', bScale],
    ['b_zero_point', options.bZeroPoint],
    ['bias', options.bias],
  ] as const) {
    if (v && !(v.rank === 1 && (v.dim(0) === n || (label !== 'bias' && v.dim(0) === 1)))) {
      throw graphBuild(g.pendingNodeName(op), `${label} ${formatDims(v.shape)} must be [${label === 'bias' ? '' : '1 or '}N = ${n}]`);
    }
  }
  if (options.bZeroPoint) expectSameDType(op, b, options.bZeroPoint);
  return g.node(op, [a, b, bScale, options.bZeroPoint, options.bias], {
    domain: CONTRIB,
    outputs: [{ dtype: 'float32', shape: [...a.shape.slice(0, -1), n] }],
  })[0]!;
}

/**
 * DynamicQuantizeLinear-11: x float32 → (y uint8 of x's shape, y_scale float32 [], y_zero_point
 * uint8 []), the asymmetric per-tensor quantization MatMulInteger consumes.
 */
export function dynamicQuantizeLinear(x: Value): { y: Value; scale: Value; zeroPoint: Value } {
  const op = 'DynamicQuantizeLinear';
  expectDType(op, x, ['float32']);
  const [y, scale, zeroPoint] = x.graph.node(op, [x], {
    outputs: [
      { dtype: 'uint8', shape: x.shape },
      { dtype: 'float32', shape: [] },
      { dtype: 'uint8', shape: [] },
    ],
  });
  return { y: y!, scale: scale!, zeroPoint: zeroPoint! };
}

/** MatMulInteger-10: a [..., M, K] uint8/int8 @ b [K, N] uint8/int8 with zero points → int32 [..., M, N]. */
export function matMulInteger(a: Value, b: Value, zeroPoints: { a?: Value; b?: Value } = {}): Value {
  const op = 'MatMulInteger';
  const g = graphOf(op, a, b);
  expectDType(op, a, ['uint8', 'int8']);
  expectDType(op, b, ['uint8', 'int8']);
  expectRank(op, b, [2]);
  if (zeroPoints.a) expectSameDType(op, a, zeroPoints.a);
  if (zeroPoints.b) expectSameDType(op, b, zeroPoints.b);
  if (a.rank < 2 || a.dim(-1) !== b.dim(0)) throw graphBuild(g.pendingNodeName(op), `inner dims differ: ${formatDims(a.shape)} @ ${formatDims(b.shape)}`);
  return g.node(op, [a, b, zeroPoints.a, zeroPoints.b], { outputs: [{ dtype: 'int32', shape: [...a.shape.slice(0, -1), b.dim(1)] }] })[0]!;
}

/**
 * QuantizeLinear-21: y = saturate(round(x / scale) + zeroPoint), x float32 [..] → uint8 (no zero
 * point, or a uint8 one) or int8 (an int8 zero point) of x's shape. A scalar scale quantizes per
 * tensor; a 1-D one of x's `axis` length (and a zero point of the same shape) per slice along it.
 */
export function quantizeLinear(x: Value, scale: Value, options: { zeroPoint?: Value; axis?: number } = {}): Value {
  const op = 'QuantizeLinear';
  const g = graphOf(op, x, scale);
  expectDType(op, x, ['float32']);
  expectSameDType(op, x, scale);
  const zp = options.zeroPoint;
  if (zp) {
    expectDType(op, zp, ['uint8', 'int8']);
    if (formatDims(zp.shape) !== formatDims(scale.shape)) throw graphBuild(g.pendingNodeName(op), `zero point ${formatDims(zp.shape)} must have the scale's shape ${formatDims(scale.shape)}`);
  }
  if (scale.rank === 1 && options.axis === undefined) throw graphBuild(g.pendingNodeName(op), `a 1-D scale ${formatDims(scale.shape)} needs an axis`);
  if (scale.rank > 1) throw graphBuild(g.pendingNodeName(op), `scale must be a scalar or 1-D, got ${formatDims(scale.shape)}`);
  return g.node(op, [x, scale, zp], {
    outputs: [{ dtype: zp?.dtype ?? 'uint8', shape: x.shape }],
    attributes: { axis: scale.rank === 1 ? options.axis : undefined },
  })[0]!;
}

/**
 * DequantizeLinear-21: y = (x − zeroPoint) · scale, x uint8/int8 → float32 of x's shape; scale and
 * zero point per tensor (scalars) or per slice along `axis` (1-D, as for `quantizeLinear`).
 */
export function dequantizeLinear(x: Value, scale: Value, options: { zeroPoint?: Value; axis?: number } = {}): Value {
  const op = 'DequantizeLinear';
  const g = graphOf(op, x, scale);
  expectDType(op, x, ['uint8', 'int8']);
  expectDType(op, scale, ['float32']);
  if (options.zeroPoint) expectSameDType(op, x, options.zeroPoint);
  if (scale.rank === 1 && options.axis === undefined) throw graphBuild(g.pendingNodeName(op), `a 1-D scale ${formatDims(scale.shape)} needs an axis`);
  return g.node(op, [x, scale, options.zeroPoint], {
    outputs: [{ dtype: 'float32', shape: x.shape }],
    attributes: { axis: scale.rank === 1 ? options.axis : undefined },
  })[0]!;
}

/**
 * com.microsoft MatMulIntegerToFloat: (a − aZeroPoint) @ (b − bZeroPoint) · aScale · bScale + bias
 * with int32 accumulation, a [..., M, K] uint8/int8, b [K, N] uint8/int8, aScale [] or [1] (ORT
 * takes A per tensor), bScale [] or [N] (per output column) → [..., M, N] float32.
 */
export function matMulIntegerToFloat(a: Value, b: Value, aScale: Value, bScale: Value, options: { aZeroPoint?: Value; bZeroPoint?: Value; bias?: Value } = {}): Value {
  const op = 'MatMulIntegerToFloat';
  const g = graphOf(op, a, b, aScale, bScale);
  expectDType(op, a, ['uint8', 'int8']);
  expectDType(op, b, ['uint8', 'int8']);
  expectRank(op, b, [2]);
  expectDType(op, aScale, ['float32']);
  expectSameDType(op, aScale, bScale, ...(options.bias ? [options.bias] : []));
  const n = b.dim(1);
  if (a.rank < 2 || a.dim(-1) !== b.dim(0)) throw graphBuild(g.pendingNodeName(op), `inner dims differ: ${formatDims(a.shape)} @ ${formatDims(b.shape)}`);
  if (aScale.rank > 1 || (aScale.rank === 1 && aScale.dim(0) !== 1)) throw graphBuild(g.pendingNodeName(op), `a_scale must be per tensor ([] or [1]), got ${formatDims(aScale.shape)}`);
  if (options.aZeroPoint) expectSameDType(op, a, options.aZeroPoint);
  if (options.bZeroPoint) expectSameDType(op, b, options.bZeroPoint);
  if (options.bias && (options.bias.rank !== 1 || options.bias.dim(0) !== n)) throw graphBuild(g.pendingNodeName(op), `bias ${formatDims(options.bias.shape)} does not match N = ${n}`);
  return g.node(op, [a, b, aScale, bScale, options.aZeroPoint, options.bZeroPoint, options.bias], {
    domain: CONTRIB,
    outputs: [{ dtype: 'float32', shape: [...a.shape.slice(0, -1), n] }],
  })[0]!;
}

/** `v` must be [rows · perRow] or [rows, perRow]. */
function expectRows(op: string, v: Value, rows: number, perRow: number, expected: string): void {
  const flat = v.rank === 1 && v.dim(0) === rows * perRow;
  const matrix = v.rank === 2 && v.dim(0) === rows && v.dim(1) === perRow;
  if (!flat && !matrix) {
    throw graphBuild(v.graph.pendingNodeName(op), `operand ${v.name}: expected ${expected}, got ${formatDims(v.shape)}`);
  }
}
