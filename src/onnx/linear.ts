// A Linear layer (torch.nn.Linear: y = x @ wᵀ + b, weight [out, in]) whose storage the caller
// chooses: float Gemm, or weights quantized at export time from the checkpoint's own values
// for ONNX Runtime's DynamicQuantizeMatMul (int8 per channel), per-row int8 (src/onnx/row-int8.ts:
// int8 per channel, activations per token) or MatMulNBits (int8/int4 blocks). The weights stay named by their checkpoint key; quantized
// initializers add a suffix (`….weight.codes`, `.scales`, `.zero_points`).

import { invalidArgument } from '../errors.js';
import { f32ToF16 } from '../dtype.js';
import { quantizeBlocks, quantizeChannels } from './quantize.js';
import type { DataType, Graph, Value } from './graph.js';
import { gemmTransB } from './ops/linalg.js';
import { dynamicQuantizeMatMul, matMulNBits, nbitsLayout } from './ops/quant.js';
import { FLOAT_LINEAR, layerScheme, type LayerScheme, type LinearRole, type LinearScheme } from './linear-scheme.js';
import { rowInt8MatMul, weightColumnSums } from './row-int8.js';

export { describeLinearScheme, FLOAT_LINEAR, LINEAR_ROLES, LINEAR_SCHEME_KEY, parseLinearScheme, type LayerScheme, type LinearRole, type LinearScheme } from './linear-scheme.js';

/**
 * y = x @ weightᵀ + bias for the Linear whose parameters are `weight` [outFeatures, K] and
 * `bias` [outFeatures] in the current scope: x [M, K] → [M, outFeatures] (MatMulNBits also
 * takes x [..., K]). Call inside `g.scope(<layer name>)`, as for `gemmTransB`. A by-role scheme
 * stores the layer as its `role` says (or as its `sensitive` scheme, where its path is listed there).
 */
export function linear(g: Graph, x: Value, outFeatures: number, linearScheme: LinearScheme = FLOAT_LINEAR, options: { bias?: boolean; role?: LinearRole } = {}): Value {
  const scheme = layerScheme(linearScheme, g.paramPath, options.role);
  const k = x.dim(-1);
  if (typeof k !== 'number') throw invalidArgument(`${g.paramPath} input features`, 'a static last dim', k);
  const biasParam = (): Value | undefined => (options.bias === false ? undefined : g.param('bias', [outFeatures]));
  if (scheme.kind === 'float') return gemmTransB(x, g.param('weight', [outFeatures, k]), biasParam()); // weight, then bias: the order the towers always used
  if (scheme.kind === 'dynamic-int8') return dynamicInt8Linear(g, x, outFeatures, k, biasParam);
  if (scheme.kind === 'row-int8') return rowInt8Linear(g, x, outFeatures, k, biasParam, scheme);
  const { bits, blockSize, symmetric, accuracyLevel } = scheme;
  const layout = nbitsLayout(k, bits, blockSize);
  const scaleDType: DataType = x.dtype === 'float16' ? 'float16' : 'float32';
  const parts = [
    { suffix: 'codes', dtype: 'uint8' as const, shape: [outFeatures, layout.blocks, layout.blobBytes] },
    { suffix: 'scales', dtype: scaleDType, shape: [outFeatures * layout.blocks] }, // scales share x's dtype
    ...(symmetric ? [] : [{ suffix: 'zero_points', dtype: 'uint8' as const, shape: [outFeatures * layout.zeroPointBytes] }]),
  ];
  const [codes, scales, zeroPoints] = g.derivedParams('weight', [outFeatures, k], parts, (weight) => {
    const q = quantizeBlocks(weight, outFeatures, k, { bits, blockSize, symmetric });
    const scales = scaleDType === 'float16' ? f32ToF16(q.scales) : q.scales;
    const scaleBytes = new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength);
    return q.zeroPoints ? [q.codes, scaleBytes, q.zeroPoints] : [q.codes, scaleBytes];
  });
  const bias = biasParam();
  return matMulNBits(x, codes!, scales!, { bits, blockSize, accuracyLevel, ...(zeroPoints ? { zeroPoints } : {}), ...(bias ? { bias } : {}) });
}

/** Per-channel int8 weights ([K, N], as MatMulInteger takes them) with per-row activations: x [M, K] → [M, N]. */
function rowInt8Linear(g: Graph, x: Value, outFeatures: number, k: number, biasParam: () => Value | undefined, scheme: Extract<LayerScheme, { kind: 'row-int8' }>): Value {
  const asymmetric = scheme.activations === 'asymmetric';
  const parts = [
    { suffix: 'codes', dtype: 'int8' as const, shape: [k, outFeatures] },
    { suffix: 'scales', dtype: 'float32' as const, shape: [outFeatures] },
    ...(asymmetric ? [{ suffix: 'column_sums', dtype: 'float32' as const, shape: [outFeatures] }] : []),
  ];
  const [codes, scales, columnSums] = g.derivedParams('weight', [outFeatures, k], parts, (weight) => {
    const q = quantizeChannels(weight, outFeatures, k);
    const bytes = (a: Int8Array | Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    return [bytes(q.codes), bytes(q.scales), ...(asymmetric ? [bytes(weightColumnSums(q))] : [])];
  });
  return rowInt8MatMul(x, { codes: codes!, scales: scales!, columnSums, bias: biasParam() }, scheme);
}

function dynamicInt8Linear(g: Graph, x: Value, outFeatures: number, k: number, biasParam: () => Value | undefined): Value {
  const parts = [
    { suffix: 'codes', dtype: 'int8' as const, shape: [k, outFeatures] }, // transposed: DynamicQuantizeMatMul takes B as [K, N]
    { suffix: 'scales', dtype: 'float32' as const, shape: [outFeatures] },
  ];
  const [codes, scales] = g.derivedParams('weight', [outFeatures, k], parts, (weight) => {
    const q = quantizeChannels(weight, outFeatures, k);
    return [new Uint8Array(q.codes.buffer, q.codes.byteOffset, q.codes.byteLength), new Uint8Array(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength)];
  });
  const bias = biasParam();
  return dynamicQuantizeMatMul(x, codes!, scales!, bias ? { bias } : {});
}
