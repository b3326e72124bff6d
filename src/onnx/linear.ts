// A Linear layer (torch.nn.Linear: y = x @ wᵀ + b, weight [out, in]) whose storage the caller
// chooses: float Gemm, or weights quantized at export time from the checkpoint's own values
// for ONNX Runtime's DynamicQuantizeMatMul (int8 per channel) or MatMulNBits (int8/int4 blocks). The weights stay named by their checkpoint key; quantized
// initializers add a suffix (`….weight.codes`, `.scales`, `.zero_points`).

import { invalidArgument } from '../errors.js';
import { f32ToF16 } from '../weights/dtype.js';
import { quantizeBlocks, quantizeChannels, type QuantBits } from '../weights/quantize.js';
import type { DataType, Graph, Value } from './graph.js';
import { gemmTransB } from './ops/linalg.js';
import { dynamicQuantizeMatMul, matMulNBits, nbitsLayout, type AccuracyLevel } from './ops/quant.js';

/** How a model's Linear layers are stored and computed. */
export type LinearScheme =
  | { readonly kind: 'float' }
  /** DynamicQuantizeMatMul: int8 weights, one scale per output channel, activations quantized per tensor at run time (float32 graphs). */
  | { readonly kind: 'dynamic-int8' }
  | {
      readonly kind: 'nbits';
      readonly bits: QuantBits;
      /** Weights per block along the input axis sharing one scale. */
      readonly blockSize: number;
      /** Symmetric: no zero points (2^(bits−1) implied); asymmetric: per-block zero points. */
      readonly symmetric: boolean;
      /** 4: int8 activations and integer dot products (the fast path); 0: fp32 compute. */
      readonly accuracyLevel: AccuracyLevel;
    };

export const FLOAT_LINEAR: LinearScheme = { kind: 'float' };

/** The metadata_props key under which an exported model records its Linear scheme. */
export const LINEAR_SCHEME_KEY = 'vitgraph.linear_scheme';

/**
 * y = x @ weightᵀ + bias for the Linear whose parameters are `weight` [outFeatures, K] and
 * `bias` [outFeatures] in the current scope: x [M, K] → [M, outFeatures] (MatMulNBits also
 * takes x [..., K]). Call inside `g.scope(<layer name>)`, as for `gemmTransB`.
 */
export function linear(g: Graph, x: Value, outFeatures: number, scheme: LinearScheme = FLOAT_LINEAR, options: { bias?: boolean } = {}): Value {
  const k = x.dim(-1);
  if (typeof k !== 'number') throw invalidArgument(`${g.paramPath} input features`, 'a static last dim', k);
  const biasParam = (): Value | undefined => (options.bias === false ? undefined : g.param('bias', [outFeatures]));
  if (scheme.kind === 'float') return gemmTransB(x, g.param('weight', [outFeatures, k]), biasParam()); // weight, then bias: the order the towers always used
  if (scheme.kind === 'dynamic-int8') return dynamicInt8Linear(g, x, outFeatures, k, biasParam);
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

/** The scheme as one metadata string: "float", "dynamic-int8" or e.g. "nbits bits=8 block_size=32 symmetric=1 accuracy_level=4". */
export function describeLinearScheme(scheme: LinearScheme): string {
  if (scheme.kind !== 'nbits') return scheme.kind;
  return `nbits bits=${scheme.bits} block_size=${scheme.blockSize} symmetric=${scheme.symmetric ? 1 : 0} accuracy_level=${scheme.accuracyLevel}`;
}

/** Reads `describeLinearScheme`'s string back (absent metadata means float). */
export function parseLinearScheme(text: string | undefined): LinearScheme {
  if (text === undefined || text === 'float') return FLOAT_LINEAR;
  if (text === 'dynamic-int8') return { kind: 'dynamic-int8' };
  const [kind, ...fields] = text.trim().split(/\s+/);
  const values = new Map(fields.map((f) => f.split('=') as [string, string]));
  const num = (key: string): number => Number(values.get(key));
  const bits = num('bits');
  const blockSize = num('block_size');
  const symmetric = values.get('symmetric');
  const accuracyLevel = num('accuracy_level');
  const valid =
    kind === 'nbits' &&
    (bits === 4 || bits === 8) &&
    Number.isInteger(blockSize) &&
    blockSize >= 16 &&
    (blockSize & (blockSize - 1)) === 0 &&
    (symmetric === '0' || symmetric === '1') &&
    [0, 1, 2, 3, 4].includes(accuracyLevel);
  if (!valid) throw invalidArgument(`metadata ${LINEAR_SCHEME_KEY}`, '"float", "dynamic-int8" or "nbits bits=4|8 block_size=<2^n ≥ 16> symmetric=0|1 accuracy_level=0-4"', text);
  return { kind: 'nbits', bits: bits as QuantBits, blockSize, symmetric: symmetric === '1', accuracyLevel: accuracyLevel as AccuracyLevel };
}
