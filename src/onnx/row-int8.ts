// int8 matmul with one activation scale per row (per token), from standard ONNX ops that ONNX
// Runtime's CPU EP runs with integer dot-product kernels (MLAS u8s8: AVX-512 VNNI / AVX-VNNI where
// the CPU has them, else AVX2):
//
//   x [M, K] ─ReduceMin/ReduceMax per row─▶ scale [M], zero point [M]
//            ─QuantizeLinear-21 (axis 0)──▶ q uint8 [M, K]
//   q @ w (int8 [K, N], one scale per output column) ─MatMulInteger / MatMulIntegerToFloat─▶ [M, N]
//            ─rescale: row scale × column scale (and the zero-point correction)─▶ y float32 [M, N]
//
// ORT takes MatMulInteger's and MatMulIntegerToFloat's A zero point and A scale per tensor only,
// so per-row activations are applied around the product:
//  - symmetric: codes centred on 128 (one zero point for every row, which MLAS takes), the row
//    scale max|x| / 127 multiplied in after;
//  - asymmetric: codes spanning [min(x, 0), max(x, 0)] of each row, zero point z_m per row, and
//    Σₖ (q − z_m) w = Σₖ q w − z_m · Σₖ w: the column sums of the int8 weight are a constant [N];
//  - two passes (either mapping): the rows' rounding error quantized again, both passes one
//    batched product [2, M, K] @ [K, N] summed after, so the weight is prepacked once.

import { graphBuild } from '../errors.js';
import type { Value } from './graph.js';
import { add, cast, concat, div, expand, max, min, mul, reduceMax, reduceMin, reduceSum, reshape, round, shapeOf, sub, unsqueeze } from './ops/index.js';
import { dequantizeLinear, matMulInteger, matMulIntegerToFloat, quantizeLinear } from './ops/quant.js';
import type { RowActivations, RowKernel } from './linear-scheme.js';

export type { RowActivations, RowKernel } from './linear-scheme.js';

export interface RowInt8Weight {
  /** int8 [K, N]: the weight transposed, one scale per output column. */
  readonly codes: Value;
  /** float32 [N]. */
  readonly scales: Value;
  /** float32 [N]: Σₖ codes[k, n] · scales[n], needed by asymmetric rows. */
  readonly columnSums?: Value | undefined;
  /** float32 [N]. */
  readonly bias?: Value | undefined;
}

/** Rows of `x` [M, K] quantized to uint8: the codes, and each row's scale and zero point as QuantizeLinear took them ([M]) and as floats ([M, 1]; a scalar 128 when symmetric). */
export interface QuantizedRows {
  readonly codes: Value;
  readonly rowScale: Value;
  readonly rowZeroPoint: Value;
  readonly scale: Value;
  readonly zeroPoint: Value;
}

/** Rows of `x` [M, K] as uint8 codes with a float32 scale and zero point per row. */
export function quantizeRows(x: Value, activations: RowActivations): QuantizedRows {
  const g = x.graph;
  if (x.rank !== 2) throw graphBuild(g.pendingNodeName('QuantizeLinear'), `per-row quantization takes x [M, K], got rank ${x.rank}`);
  const lo = min(reduceMin(x, [-1], true), g.scalar('float32', 0)); // [M, 1], ≤ 0
  const hi = max(reduceMax(x, [-1], true), g.scalar('float32', 0)); // [M, 1], ≥ 0
  const tiny = g.scalar('float32', 1e-30); // an all-zero row quantizes to its zero point
  if (activations === 'symmetric') {
    const scale = max(mul(max(hi, sub(g.scalar('float32', 0), lo)), g.scalar('float32', 1 / 127)), tiny); // [M, 1]
    const rowScale = reshape(scale, [-1]); // [M]
    const rowZeroPoint = expand(g.scalar('uint8', 128), shapeOf(rowScale), rowScale.shape); // [M]
    return { codes: quantizeLinear(x, rowScale, { zeroPoint: rowZeroPoint, axis: 0 }), rowScale, rowZeroPoint, scale, zeroPoint: g.scalar('float32', 128) };
  }
  const scale = max(mul(sub(hi, lo), g.scalar('float32', 1 / 255)), tiny); // [M, 1]
  const zeroPoint = round(div(sub(g.scalar('float32', 0), lo), scale)); // [M, 1] in 0 … 255
  const rowScale = reshape(scale, [-1]); // [M]
  const rowZeroPoint = cast(reshape(zeroPoint, [-1]), 'uint8'); // [M]
  return { codes: quantizeLinear(x, rowScale, { zeroPoint: rowZeroPoint, axis: 0 }), rowScale, rowZeroPoint, scale, zeroPoint };
}

/**
 * y = x @ w + bias with x [M, K] float32 quantized per row at run time and w int8 per column:
 * → [M, N] float32. `activations` picks the row mapping, `kernel` the ORT matmul. With `passes: 2`
 * each row's rounding error x − dequant(q) is quantized again (a 255× finer grid) and multiplied
 * too, stacked with the first pass as a batch of two: activations good to ~16 bits for twice the
 * integer work, with the same (prepacked once) weight.
 */
export function rowInt8MatMul(x: Value, w: RowInt8Weight, options: { activations: RowActivations; kernel: RowKernel; passes?: 1 | 2 }): Value {
  const g = x.graph;
  const first = quantizeRows(x, options.activations);
  const symmetric = options.activations === 'symmetric';
  let q: { codes: Value; scale: Value; zeroPoint: Value } = first; // codes [M, K] or [2, M, K]
  if (options.passes === 2) {
    const error = sub(x, dequantizeLinear(first.codes, first.rowScale, { zeroPoint: first.rowZeroPoint, axis: 0 })); // [M, K]
    const second = quantizeRows(error, options.activations);
    const stack = (a: Value, b: Value): Value => concat([unsqueeze(a, [0]), unsqueeze(b, [0])], 0); // [2, …]
    q = { codes: stack(first.codes, second.codes), scale: stack(first.scale, second.scale), zeroPoint: symmetric ? first.zeroPoint : stack(first.zeroPoint, second.zeroPoint) };
  }
  const aZeroPoint = symmetric ? g.scalar('uint8', 128) : undefined;
  let product: Value; // [(2,) M, N]: Σₖ (q − zp) · codes · column scale, before the row scale
  if (options.kernel === 'matmul-integer-to-float') {
    product = matMulIntegerToFloat(q.codes, w.codes, g.scalar('float32', 1), w.scales, aZeroPoint ? { aZeroPoint } : {});
  } else {
    product = mul(cast(matMulInteger(q.codes, w.codes, aZeroPoint ? { a: aZeroPoint } : {}), 'float32'), w.scales);
  }
  if (!symmetric) {
    if (!w.columnSums) throw graphBuild(g.pendingNodeName('MatMulInteger'), 'asymmetric rows need the weight column sums');
    product = sub(product, mul(q.zeroPoint, w.columnSums)); // − z_m · Σₖ w[k, n]
  }
  let y = mul(product, q.scale);
  if (options.passes === 2) y = reduceSum(y, [0]); // [M, N]: the two passes added
  return w.bias ? add(y, w.bias) : y;
}

/** Σₖ codes[k, n] · scales[n] for an int8 weight [K, N] with one scale per column → float32 [N]. */
export function weightColumnSums(w: { readonly codes: Int8Array; readonly scales: Float32Array; readonly k: number; readonly n: number }): Float32Array {
  const sums = new Float64Array(w.n);
  for (let k = 0; k < w.k; k++) for (let n = 0; n < w.n; n++) sums[n]! += w.codes[k * w.n + n]!;
  return Float32Array.from(sums, (s, n) => s * w.scales[n]!);
}
