// The graph I/O every tower shares, and the contract an exported file records about itself so
// that the runtime can feed it and slice its outputs without knowing the model.
// Input names match the upstream processors' outputs and the vision models' forward arguments.

import { invalidFile } from '../errors.js';
import { parseJsonFile } from '../fs/json.js';
import { checkProcessor, patchDim as processorPatchDim, type ProcessorParams } from '../image/processor.js';
import type { GraphDevice, OutputSpec, TowerConfig } from '../model.js';
import { inspectModel } from '../onnx/inspect.js';
import { describeLinearScheme, parseLinearScheme } from '../onnx/linear-scheme.js';

export const INPUTS = {
  /** float32 [N, patchDim]: patch rows in merge-window order, columns (c, t, y, x). */
  pixelValues: 'pixel_values',
  /** int64 [I, 3]: (t, h, w) per item in patch units. */
  gridThw: 'grid_thw',
} as const;

/** Extra output of padded (bucket) graphs: int64 [], real merged tokens; later rows are padding. */
export const TOKEN_COUNT = 'token_count';

/** What the runtime needs to know about an encoder graph; recorded in vitgraph.json and metadata_props. */
export interface EncoderIO {
  readonly patchDim: number;
  readonly mergeUnit: number;
  readonly spatialMergeSize: number;
  readonly outputs: readonly OutputSpec[];
  /** Quantized Linear layers (src/onnx/linear-scheme.ts), absent for float graphs: sessions then prepack weights. */
  readonly quantization?: string | undefined;
  /** Preprocessing of the checkpoint the graph came from (family defaults + its preprocessor_config.json). */
  readonly processor?: ProcessorParams | undefined;
  /** 'cuda': graphs built for the CUDA provider only (refused elsewhere); absent: any device. */
  readonly device?: 'cuda' | undefined;
}

export function encoderIO(config: TowerConfig, outputs: readonly OutputSpec[], processor?: ProcessorParams, quantization?: string, device: GraphDevice = 'cpu'): EncoderIO {
  return {
    patchDim: config.patchDim,
    mergeUnit: config.mergeUnit,
    spatialMergeSize: config.spatialMergeSize,
    outputs,
    ...(quantization ? { quantization } : {}),
    ...(processor ? { processor } : {}),
    ...(device === 'cuda' ? { device } : {}),
  };
}

/** The device a recorded contract's graphs need. */
export const graphDevice = (io: EncoderIO): GraphDevice => io.device ?? 'cpu';

/** The EncoderIO a .onnx file records in its metadata_props (`vitgraph.io`), or undefined for a graph vitgraph did not export. */
export async function recordedIO(path: string): Promise<EncoderIO | undefined> {
  const text = (await inspectModel(path)).metadata['vitgraph.io'];
  if (text === undefined) return undefined;
  return parseEncoderIO(parseJsonFile(text, path, 'the vitgraph.io metadata'), path);
}

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
  let quantization: string | undefined;
  if (io.quantization !== undefined) {
    try {
      quantization = describeLinearScheme(parseLinearScheme(String(io.quantization)));
    } catch (error) {
      return bad(`quantization: ${(error as Error).message}`);
    }
  }
  if (io.device !== undefined && io.device !== 'cuda') return bad(`device: expected "cuda" or absent, got ${JSON.stringify(io.device)}`);
  const [patchDim, mergeUnit, spatialMergeSize] = [size('patchDim', 1 << 20), size('mergeUnit', 64), size('spatialMergeSize', 8)];
  // The numbers must agree with each other, or rows and tokens would be sliced at fractional counts.
  if (mergeUnit !== spatialMergeSize ** 2) bad(`mergeUnit: expected spatialMergeSize² = ${spatialMergeSize ** 2}, got ${mergeUnit}`);
  if (processor && processorPatchDim(processor) !== patchDim) bad(`patchDim: expected ${processorPatchDim(processor)} (3 × temporal_patch_size × patch_size² of its processor), got ${patchDim}`);
  if (processor && processor.mergeSize !== spatialMergeSize) bad(`spatialMergeSize: expected ${processor.mergeSize} (its processor's merge_size), got ${spatialMergeSize}`);
  return {
    ...(quantization ? { quantization } : {}),
    ...(io.device === 'cuda' ? { device: 'cuda' as const } : {}),
    patchDim,
    mergeUnit,
    spatialMergeSize,
    outputs: specs,
    ...(processor ? { processor } : {}),
  };
}

/** Checks a recorded EncoderIO against the graph it describes: pixel_values' width and every named output. */
export function checkIOAgainstGraph(io: EncoderIO, graph: { readonly inputs: readonly TensorShape[]; readonly outputs: readonly TensorShape[] }, where: string): void {
  const bad = (problem: string): never => {
    throw invalidFile(where, `io: ${problem}`, 'Re-export the model with this vitgraph');
  };
  const width = graph.inputs.find((i) => i.name === INPUTS.pixelValues)?.shape[1];
  if (typeof width === 'number' && width !== io.patchDim) bad(`patchDim: expected ${width} (the graph's ${INPUTS.pixelValues} width), got ${io.patchDim}`);
  for (const { name } of io.outputs) if (!graph.outputs.some((o) => o.name === name)) bad(`outputs: expected names of graph outputs, got "${name}" (the graph has ${graph.outputs.map((o) => o.name).join(', ')})`);
}

interface TensorShape {
  readonly name: string;
  readonly shape: readonly (number | string)[];
}
