// The graph I/O every tower shares, and the contract an exported file records about itself so
// that the runtime can feed it and slice its outputs without knowing the model.
// Input names match the upstream processors' outputs and the vision models' forward arguments.

import { invalidFile } from '../errors.js';
import { checkProcessor, type ProcessorParams } from '../image/processor.js';
import type { OutputSpec, TowerConfig } from '../model.js';
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
}

export function encoderIO(config: TowerConfig, outputs: readonly OutputSpec[], processor?: ProcessorParams, quantization?: string): EncoderIO {
  return { patchDim: config.patchDim, mergeUnit: config.mergeUnit, spatialMergeSize: config.spatialMergeSize, outputs, ...(quantization ? { quantization } : {}), ...(processor ? { processor } : {}) };
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
  return {
    ...(quantization ? { quantization } : {}),
    patchDim: size('patchDim', 1 << 20),
    mergeUnit: size('mergeUnit', 64),
    spatialMergeSize: size('spatialMergeSize', 8),
    outputs: specs,
    ...(processor ? { processor } : {}),
  };
}
