// How a model's Linear layers store their weights: a fact of the whole model, set on the graph
// builder and recorded in metadata_props, so every tower's Linear follows it without plumbing.
// A scheme may differ by the Linear's role in its tower (attention, MLP, patch merger), which
// the tower states at each call.

import { invalidArgument } from '../errors.js';
import type { QuantBits } from './quantize.js';

/** How MatMulNBits computes: 0 = unset (fp32), 1 = fp32, 2 = fp16, 3 = bf16, 4 = int8 activations. */
export type AccuracyLevel = 0 | 1 | 2 | 3 | 4;

/** How each row of activations is mapped onto uint8 codes (per-row int8, src/onnx/row-int8.ts). */
export type RowActivations = 'symmetric' | 'asymmetric';
/** Which ORT integer matmul computes the product: int32 out (then rescaled), or its fused float rescale. */
export type RowKernel = 'matmul-integer' | 'matmul-integer-to-float';

/** What a Linear does in a vision tower: its input is normed (qkv, mlp.in, merger.in), attention's output, or an activation's (mlp.out, merger.out). */
export type LinearRole = 'attention.qkv' | 'attention.out' | 'mlp.in' | 'mlp.out' | 'merger.in' | 'merger.out';
export const LINEAR_ROLES: readonly LinearRole[] = ['attention.qkv', 'attention.out', 'mlp.in', 'mlp.out', 'merger.in', 'merger.out'];

/** How a model's Linear layers are stored and computed: one way for all, or one per role. */
export type LinearScheme =
  | LayerScheme
  | {
      readonly kind: 'by-role';
      readonly roles: Readonly<Record<LinearRole, LayerScheme>>;
      /** Linears under these parameter-path prefixes (e.g. "blocks.0.") take `scheme` whatever their role: the layers measured sensitive. */
      readonly sensitive?: { readonly prefixes: readonly string[]; readonly scheme: LayerScheme };
    };

/** How one Linear layer is stored and computed. */
export type LayerScheme =
  | { readonly kind: 'float' }
  /** DynamicQuantizeMatMul: int8 weights, one scale per output channel, activations quantized per tensor at run time (float32 graphs). */
  | { readonly kind: 'dynamic-int8' }
  /** int8 weights per output channel, activations quantized per row (per token) at run time by standard ops (src/onnx/row-int8.ts). */
  | {
      readonly kind: 'row-int8';
      readonly activations: RowActivations;
      readonly kernel: RowKernel;
      /** 2: each row's rounding error is quantized and multiplied again (≈16-bit activations, twice the integer work); default 1. */
      readonly passes?: 1 | 2;
    }
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

export const FLOAT_LINEAR: LayerScheme = { kind: 'float' };

/** The scheme of the Linear at parameter path `path` (e.g. "blocks.3.attn.qkv") with `role` (a by-role scheme must be given one). */
export function layerScheme(scheme: LinearScheme, path: string, role: LinearRole | undefined): LayerScheme {
  if (scheme.kind !== 'by-role') return scheme;
  if (scheme.sensitive?.prefixes.some((prefix) => `${path}.`.startsWith(prefix))) return scheme.sensitive.scheme;
  if (role === undefined) throw invalidArgument(`Linear ${path} role`, `one of ${LINEAR_ROLES.join(', ')} for a by-role scheme`, role);
  return scheme.roles[role];
}

/** The metadata_props key under which an exported model records its Linear scheme. */
export const LINEAR_SCHEME_KEY = 'vitgraph.linear_scheme';

/**
 * The scheme as one metadata string: "float", "dynamic-int8", e.g. "nbits bits=8 block_size=32
 * symmetric=1 accuracy_level=4", or "by-role" and each role's string with commas for spaces:
 * "by-role attention.qkv=row-int8,activations=asymmetric,kernel=matmul-integer … merger.out=…".
 */
export function describeLinearScheme(scheme: LinearScheme): string {
  if (scheme.kind === 'by-role') {
    const roles = LINEAR_ROLES.map((r) => `${r}=${describeLinearScheme(scheme.roles[r]).replaceAll(' ', ',')}`);
    const sensitive = scheme.sensitive ? [`sensitive=${scheme.sensitive.prefixes.join(',')}`, `sensitive_scheme=${describeLinearScheme(scheme.sensitive.scheme).replaceAll(' ', ',')}`] : [];
    return ['by-role', ...roles, ...sensitive].join(' ');
  }
  if (scheme.kind === 'row-int8') return `row-int8 activations=${scheme.activations} kernel=${scheme.kernel}${scheme.passes === 2 ? ' passes=2' : ''}`;
  if (scheme.kind !== 'nbits') return scheme.kind;
  return `nbits bits=${scheme.bits} block_size=${scheme.blockSize} symmetric=${scheme.symmetric ? 1 : 0} accuracy_level=${scheme.accuracyLevel}`;
}

/** Reads `describeLinearScheme`'s string back (absent metadata means float). */
export function parseLinearScheme(text: string | undefined): LinearScheme {
  if (text?.startsWith('by-role ')) return parseByRole(text);
  return parseLayerScheme(text);
}

function parseByRole(text: string): LinearScheme {
  const entries = text
    .trim()
    .split(/\s+/)
    .slice(1)
    .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)] as const);
  const given = new Map(entries);
  const prefixes = given
    .get('sensitive')
    ?.split(',')
    .filter((p) => p.length > 0);
  const sensitiveScheme = given.get('sensitive_scheme');
  given.delete('sensitive');
  given.delete('sensitive_scheme');
  const missing = LINEAR_ROLES.filter((r) => !given.has(r));
  if (missing.length || given.size !== LINEAR_ROLES.length || entries.length !== given.size + (prefixes ? 2 : 0) || !prefixes !== !sensitiveScheme) {
    throw invalidArgument(`metadata ${LINEAR_SCHEME_KEY}`, `"by-role" with each of ${LINEAR_ROLES.join(', ')} once, and optionally sensitive=<prefix>,… sensitive_scheme=<scheme>`, text);
  }
  const roles = Object.fromEntries(LINEAR_ROLES.map((r) => [r, parseLayerScheme(given.get(r)!.replaceAll(',', ' '))])) as Record<LinearRole, LayerScheme>;
  return { kind: 'by-role', roles, ...(prefixes && sensitiveScheme ? { sensitive: { prefixes, scheme: parseLayerScheme(sensitiveScheme.replaceAll(',', ' ')) } } : {}) };
}

function parseLayerScheme(text: string | undefined): LayerScheme {
  if (text === undefined || text === 'float') return FLOAT_LINEAR;
  if (text === 'dynamic-int8') return { kind: 'dynamic-int8' };
  const [kind, ...fields] = text.trim().split(/\s+/);
  const values = new Map(fields.map((f) => f.split('=') as [string, string]));
  if (kind === 'row-int8') return parseRowInt8(values, text);
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

const ROW_ACTIVATIONS: readonly RowActivations[] = ['symmetric', 'asymmetric'];
const ROW_KERNELS: readonly RowKernel[] = ['matmul-integer', 'matmul-integer-to-float'];

function parseRowInt8(values: Map<string, string>, text: string): LayerScheme {
  const activations = ROW_ACTIVATIONS.find((a) => a === values.get('activations'));
  const kernel = ROW_KERNELS.find((k) => k === values.get('kernel'));
  const passes = values.get('passes') ?? '1';
  if (!activations || !kernel || (passes !== '1' && passes !== '2') || values.size !== (values.has('passes') ? 3 : 2)) {
    throw invalidArgument(`metadata ${LINEAR_SCHEME_KEY}`, `"row-int8 activations=${ROW_ACTIVATIONS.join('|')} kernel=${ROW_KERNELS.join('|')} [passes=2]"`, text);
  }
  return { kind: 'row-int8', activations, kernel, ...(passes === '2' ? { passes: 2 as const } : {}) };
}
