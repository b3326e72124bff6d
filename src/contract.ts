// The encoder contract: the graph I/O every tower shares (input names, their limits, the token-count
// output), the precisions a graph is exported in and the devices it runs on, and what an exported
// file records about itself (EncoderIO) so that the runtime can feed it and slice its outputs without
// knowing the model. graphs/ declares graphs by it, export records it,
// the runtime reads it back; none of them import each other for it.
// Input names match the upstream processors' outputs and the vision models' forward arguments.

import { invalidFile } from './errors.js';
import { checkProcessor, patchDim as processorPatchDim, type ProcessorParams } from './image/processor.js';
import type { OutputSpec, TowerConfig } from './model.js';
import { describeLinearScheme, FLOAT_LINEAR, parseLinearScheme, type LayerScheme, type LinearScheme } from './onnx/linear-scheme.js';

export const INPUTS = {
  /** float32 [N, patchDim]: patch rows in merge-window order, columns (c, t, y, x). */
  pixelValues: 'pixel_values',
  /** int64 [I, 3]: (t, h, w) per item in patch units. */
  gridThw: 'grid_thw',
} as const;

/** Extra output of padded (bucket) graphs: int64 [], real merged tokens; later rows are padding. */
export const TOKEN_COUNT = 'token_count';

/**
 * Largest t, h or w a grid row may hold (2^20 patches: 16 Mi px per side at 16 px). Bounded
 * values keep t·h·w below 2^60, so the product is exact in int64, and the dynamic graph
 * checks the same bound in-graph.
 */
export const MAX_GRID_VALUE = 2 ** 20;
/** Most patch rows one item may have: t·h·w ≤ 2^31, so Σ over any feasible number of items stays far from int64 wrap. */
export const MAX_ITEM_ROWS = 2 ** 31;

/**
 * Devices a graph runs on: ONNX Runtime's CPU provider, or CUDA (through the native backend). A
 * graph exported for 'cpu' runs anywhere; one exported for 'cuda' may use what only the CUDA
 * provider runs well or at all (bfloat16, memory-efficient float32 attention) and is refused
 * elsewhere.
 */
export type Device = 'cpu' | 'cuda';

/**
 * Patches per item slot of a slotted bucket, else undefined. In a slotted bucket item i's rows sit at
 * i·S ..< i·S + t·h·w (S = maxPatches / maxItems), each item one frame group, so attention runs as a
 * batch of items with a key length each and needs no [Nmax, Nmax] bias. A one-item bucket is slotted
 * on every device (one slot of Nmax rows); a multi-item one when it is built for CUDA. The host
 * splits a multi-frame item into its frames for these buckets, which is exact: frames never attend
 * to each other in any tower. One rule, read by the graph builders, the exporter and the packer.
 */
export function slotPatches(bucket: { readonly maxPatches: number; readonly maxItems: number }, device: Device): number | undefined {
  if (bucket.maxItems === 1) return bucket.maxPatches;
  return device === 'cuda' ? bucket.maxPatches / bucket.maxItems : undefined;
}

/** Precisions a graph is exported in, from the CLI's --dtype to the session's prepacking. */
export const PRECISIONS = ['float32', 'float16', 'bfloat16', 'int8', 'int4'] as const;

/**
 * Precision of exported weights and matmuls (statistics, softmax, rotary stay float32). bfloat16 is
 * for CUDA (ORT's CPU provider has almost no bfloat16 kernels). int8 / int4 quantize the Linear
 * layers only (CPU graphs; see src/onnx/linear-scheme.ts); the rest stays float32.
 */
export type Precision = (typeof PRECISIONS)[number];

/**
 * int8, chosen by measurement on the 2B-shaped tower (bench/quant-kernels.md for the kernels,
 * bench/quant-sensitivity.md for where the error comes from): int8 weights per output channel with
 * activations quantized per row (per token) at run time through MatMulIntegerToFloat — symmetric
 * rows for normed inputs (qkv, proj, fc1: as accurate, one rescale fewer), asymmetric for GELU
 * outputs (fc2); the patch mergers, whose error reaches the output directly, with two passes
 * (≈16-bit activations); and the first two transformer blocks, the most sensitive (each alone
 * carries 3–5× a late block's error), float32. Every registered tower names its blocks `blocks.<i>`.
 */
function int8Linear(): LinearScheme {
  const rows = (activations: 'symmetric' | 'asymmetric', passes: 1 | 2 = 1): LayerScheme => ({ kind: 'row-int8', activations, kernel: 'matmul-integer-to-float', ...(passes === 2 ? { passes } : {}) });
  const roles = {
    'attention.qkv': rows('symmetric'),
    'attention.out': rows('symmetric'),
    'mlp.in': rows('symmetric'),
    'mlp.out': rows('asymmetric'),
    'merger.in': rows('asymmetric', 2),
    'merger.out': rows('asymmetric', 2),
  };
  return { kind: 'by-role', roles, sensitive: { prefixes: ['blocks.0.', 'blocks.1.'], scheme: FLOAT_LINEAR } };
}

/** int4: 4-bit blocks for the transformer blocks' Linears, float patch mergers. */
function int4Linear(): LinearScheme {
  const blocks: LayerScheme = { kind: 'nbits', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 4 };
  return { kind: 'by-role', roles: { 'attention.qkv': blocks, 'attention.out': blocks, 'mlp.in': blocks, 'mlp.out': blocks, 'merger.in': FLOAT_LINEAR, 'merger.out': FLOAT_LINEAR } };
}

/**
 * What each precision builds. int8: see `int8Linear`. int4: 4-bit blocks of 32 with zero points via
 * MatMulNBits (accuracy_level 4 = int8 compute) in the blocks, float mergers: less accurate and no
 * faster than int8 (bench/quant-results.md). Patch embedding, positions, norms, rotary, softmax and
 * attention stay float32.
 */
export const PRECISION: Readonly<Record<Precision, { readonly float: 'float32' | 'float16' | 'bfloat16'; readonly linear: LinearScheme }>> = {
  float32: { float: 'float32', linear: FLOAT_LINEAR },
  float16: { float: 'float16', linear: FLOAT_LINEAR },
  bfloat16: { float: 'bfloat16', linear: FLOAT_LINEAR },
  int8: { float: 'float32', linear: int8Linear() },
  int4: { float: 'float32', linear: int4Linear() },
};

/** The name the API has always given a Precision (`exportModel({ dtype })`, `VisionEncoder.load(model, { dtype })`). */
export type ExportDType = Precision;

export const isPrecision = (value: unknown): value is Precision => PRECISIONS.includes(value as Precision);

/** A quantized precision's Linear scheme as recorded ("dynamic-int8", "nbits bits=4 …"); undefined for float. */
export function quantizationOf(precision: Precision): string | undefined {
  const { linear } = PRECISION[precision];
  return linear === FLOAT_LINEAR ? undefined : describeLinearScheme(linear);
}

/** What the runtime needs to know about an encoder graph; recorded in vitgraph.json and metadata_props. */
export interface EncoderIO {
  readonly patchDim: number;
  readonly mergeUnit: number;
  readonly spatialMergeSize: number;
  readonly outputs: readonly OutputSpec[];
  /** The precision it was exported in: recorded once, here (files from before it record only `quantization`). */
  readonly precision?: Precision | undefined;
  /**
   * Quantized Linear layers (src/onnx/linear-scheme.ts), absent for float graphs: sessions then prepack
   * weights. Read back from `precision` (or, in older files, from this recorded field); never written.
   */
  readonly quantization?: string | undefined;
  /** Preprocessing of the checkpoint the graph came from (family defaults + its preprocessor_config.json). */
  readonly processor?: ProcessorParams | undefined;
  /** 'cuda': graphs exported for the CUDA provider only (refused elsewhere); absent: any device. */
  readonly device?: 'cuda' | undefined;
}

/** The EncoderIO export records for a tower's graphs. */
export function encoderIO(config: TowerConfig, outputs: readonly OutputSpec[], precision: Precision, processor?: ProcessorParams, device: Device = 'cpu'): EncoderIO {
  return {
    patchDim: config.patchDim,
    mergeUnit: config.mergeUnit,
    spatialMergeSize: config.spatialMergeSize,
    outputs,
    precision,
    ...(processor ? { processor } : {}),
    ...(device === 'cuda' ? { device } : {}),
  };
}

/** The device a recorded contract's graphs need. */
export const graphDevice = (io: EncoderIO): Device => io.device ?? 'cpu';

/** Whether sessions of this graph prepack weights: quantized matmuls are only fast on prepacked weights. */
export const prepacksWeights = (io: EncoderIO | undefined): boolean => io?.quantization !== undefined;

/** Reads a recorded EncoderIO back, checking every field (a manifest may be hostile). */
export function parseEncoderIO(json: unknown, where: string): EncoderIO {
  const bad = (problem: string): never => {
    throw invalidFile(where, `io: ${problem}`, 'Re-export the model with this vitgraph');
  };
  if (typeof json !== 'object' || json === null) return bad('expected an object');
  const io = json as Record<string, unknown>;
  const size = (key: string, max: number): number => {
    const v = io[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) return bad(`${key}: expected an integer in 1..${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  const outputs = io.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0 || outputs.length > 64) return bad('outputs: expected a list of {name, tokenAxis}');
  const specs = outputs.map((o: unknown): OutputSpec => {
    const spec = o as Record<string, unknown> | null;
    if (typeof spec?.name !== 'string' || !/^[A-Za-z0-9_.]{1,128}$/.test(spec.name) || !Number.isInteger(spec.tokenAxis) || (spec.tokenAxis as number) < 0 || (spec.tokenAxis as number) > 7) {
      return bad(`outputs: expected {name, tokenAxis}, got ${JSON.stringify(o)}`);
    }
    return { name: spec.name, tokenAxis: spec.tokenAxis as number };
  });
  let processor: ProcessorParams | undefined;
  if (io.processor !== undefined) {
    try {
      processor = checkProcessor(io.processor as ProcessorParams);
    } catch (error) {
      return bad(`processor: ${(error as Error).message}`);
    }
  }
  if (io.precision !== undefined && !isPrecision(io.precision)) return bad(`precision: expected one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(io.precision)}`);
  let quantization = io.precision === undefined ? undefined : quantizationOf(io.precision);
  if (io.precision === undefined && io.quantization !== undefined) {
    try {
      quantization = describeLinearScheme(parseLinearScheme(String(io.quantization)));
    } catch (error) {
      return bad(`quantization: ${(error as Error).message}`);
    }
  }
  // A file from before `precision` was recorded: the quantized precision its scheme names, if any.
  const precision = io.precision ?? (quantization === undefined ? undefined : legacyPrecision(quantization));
  if (io.device !== undefined && io.device !== 'cuda') return bad(`device: expected "cuda" or absent, got ${JSON.stringify(io.device)}`);
  const [patchDim, mergeUnit, spatialMergeSize] = [size('patchDim', 1 << 20), size('mergeUnit', 64), size('spatialMergeSize', 8)];
  // The numbers must agree with each other, or rows and tokens would be sliced at fractional counts.
  if (mergeUnit !== spatialMergeSize ** 2) bad(`mergeUnit: expected spatialMergeSize² = ${spatialMergeSize ** 2}, got ${mergeUnit}`);
  if (processor && processorPatchDim(processor) !== patchDim) bad(`patchDim: expected ${processorPatchDim(processor)} (3 × temporal_patch_size × patch_size² of its processor), got ${patchDim}`);
  if (processor && processor.mergeSize !== spatialMergeSize) bad(`spatialMergeSize: expected ${processor.mergeSize} (its processor's merge_size), got ${spatialMergeSize}`);
  return {
    ...(precision ? { precision } : {}),
    ...(io.device === 'cuda' ? { device: 'cuda' as const } : {}),
    ...(quantization ? { quantization } : {}),
    patchDim,
    mergeUnit,
    spatialMergeSize,
    outputs: specs,
    ...(processor ? { processor } : {}),
  };
}

/**
 * The precision an older file's recorded scheme belongs to: today's int8/int4 schemes, and the ones
 * earlier versions wrote (per-tensor `dynamic-int8`, uniform 4-bit `nbits` blocks).
 */
function legacyPrecision(quantization: string): Precision | undefined {
  const current = PRECISIONS.find((p) => quantizationOf(p) === quantization);
  if (current) return current;
  if (quantization === 'dynamic-int8') return 'int8';
  if (/^nbits bits=4\b/.test(quantization)) return 'int4';
  return undefined;
}

/** Checks a recorded EncoderIO against the graph it describes: pixel_values' width and every named output. */
export function checkIOAgainstGraph(io: EncoderIO, graph: { readonly inputs: readonly TensorShape[]; readonly outputs: readonly TensorShape[] }, where: string): void {
  const bad = (problem: string): never => {
    throw invalidFile(where, `io: ${problem}`, 'Re-export the model with this vitgraph');
  };
  const width = graph.inputs.find((i) => i.name === INPUTS.pixelValues)?.shape[1];
  if (typeof width === 'number' && width !== io.patchDim) bad(`patchDim: expected ${width} (the graph's ${INPUTS.pixelValues} width), got ${io.patchDim}`);
  for (const { name } of io.outputs)
    if (!graph.outputs.some((o) => o.name === name)) bad(`outputs: expected names of graph outputs, got "${name}" (the graph has ${graph.outputs.map((o) => o.name).join(', ')})`);
}

interface TensorShape {
  readonly name: string;
  readonly shape: readonly (number | string)[];
}
