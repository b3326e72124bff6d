// How a model's Linear layers store their weights: a fact of the whole model, set on the graph
// builder and recorded in metadata_props, so every tower's Linear follows it without plumbing.

import { invalidArgument } from '../errors.js';
import type { QuantBits } from './quantize.js';

/** How MatMulNBits computes: 0 = unset (fp32), 1 = fp32, 2 = fp16, 3 = bf16, 4 = int8 activations. */
export type AccuracyLevel = 0 | 1 | 2 | 3 | 4;

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
