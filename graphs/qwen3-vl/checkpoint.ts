// A Hugging Face model directory: config.json + safetensors, bound strictly to the tower.

import { join } from 'node:path';
import { VitgraphError, invalidFile, notFound } from '../../src/errors.js';
import { readRegularText, requirePath } from '../../src/fs/confined.js';
import type { ParameterSource } from '../../src/onnx/index.js';
import { BYTES_PER_ELEMENT } from '../../src/tensor.js';
import { Checkpoint, WeightBinder } from '../../src/weights/index.js';
import { checkConfigAgainstWeights, parseConfig, type VisionConfig } from './config.js';

export interface ModelDirectory {
  readonly dir: string;
  readonly config: VisionConfig;
  /** config.json as written (recorded in exported metadata). */
  readonly rawConfig: Record<string, unknown>;
  readonly checkpoint: Checkpoint;
}

export async function openModelDirectory(dir: string): Promise<ModelDirectory> {
  const configPath = join(requirePath(dir, 'model directory'), 'config.json');
  let text: string;
  try {
    text = await readRegularText(configPath, 'config.json');
  } catch (error) {
    if (error instanceof VitgraphError && error.code !== 'not_found') throw error; // a FIFO, a directory, ...
    throw notFound('config.json', configPath, 'Pass --model a Hugging Face model directory (config.json + *.safetensors)');
  }
  let rawConfig: Record<string, unknown>;
  try {
    rawConfig = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw invalidFile(configPath, `not valid JSON (${(error as Error).message})`);
  }
  const config = parseConfig(rawConfig);
  const checkpoint = await Checkpoint.open(dir);
  // Before any table, graph or buffer is sized from the config.
  checkConfigAgainstWeights(config, (name) => checkpoint.tensors.get(name)?.shape);
  return { dir, config, rawConfig, checkpoint };
}

/**
 * Parameters for a graph build: each `param()` claims its checkpoint tensor (strict: the
 * name and shape must match) and loads it lazily when the model is written.
 * Call `finish()` after building to reject tensors the graph never used.
 */
export function checkpointParameters(checkpoint: Checkpoint, dtype: 'float32' | 'float16'): ParameterSource & { finish(): void } {
  const binder = new WeightBinder(checkpoint, dtype);
  return {
    take: (name, shape) => {
      const weight = binder.take(name, shape);
      return () => weight.load();
    },
    finish: () => binder.finish(),
  };
}

/** Zero-filled parameters of the requested shapes: for graph-structure tests and inspection. */
export const zeroParameters: ParameterSource = {
  take: (_name, shape, dtype) => new Uint8Array(shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype]),
};
