// A Hugging Face model directory: config.json (+ preprocessor_config.json) + safetensors, its tower
// detected from the config and bound strictly to the checkpoint's tensors.

import { invalidArgument } from '../errors.js';
import { join } from 'node:path';
import { VitgraphError, notFound } from '../errors.js';
import { readRegularText, requirePath } from '../fs/confined.js';
import { resolveHubModel } from '../fs/hub.js';
import { parseJsonFile } from '../fs/json.js';
import type { ModelDescriptor, ModelRegistry, TowerConfig } from '../model.js';
import type { ParameterSource } from '../onnx/index.js';
import { BYTES_PER_ELEMENT } from '../tensor.js';
import { Checkpoint, WeightBinder } from '../weights/index.js';

export interface ModelDirectory {
  readonly dir: string;
  readonly model: ModelDescriptor;
  readonly config: TowerConfig;
  /** config.json as written (recorded in exported metadata). */
  readonly rawConfig: Record<string, unknown>;
  readonly checkpoint: Checkpoint;
}

export async function openModelDirectory(models: ModelRegistry, path: string): Promise<ModelDirectory> {
  const dir = await resolveHubModel(requirePath(path, 'model directory')); // a hub repository folder → its snapshot
  const configPath = join(dir, 'config.json');
  let text: string;
  try {
    text = await readRegularText(configPath, 'config.json');
  } catch (error) {
    if (error instanceof VitgraphError && error.code !== 'not_found') throw error; // a FIFO, a directory, ...
    throw notFound('config.json', configPath, 'Pass a Hugging Face model directory (config.json + *.safetensors)');
  }
  const rawConfig = parseJsonFile(text, configPath, 'config.json') as Record<string, unknown>;
  const model = models.detect(rawConfig);
  const config = model.parseConfig(rawConfig);
  const checkpoint = await Checkpoint.open(dir);
  // Before any table, graph or buffer is sized from the config.
  model.checkWeights?.(config, (name) => checkpoint.tensors.get(name)?.shape);
  return { dir, model, config, rawConfig, checkpoint };
}

/**
 * Parameters for a graph build: each `param()` claims its checkpoint tensor (strict: the
 * name and shape must match) and loads it lazily when the model is written.
 * Call `finish()` after building to reject tensors the graph never used.
 */
export function checkpointParameters(checkpoint: Checkpoint, dtype: 'float32' | 'float16' | 'bfloat16'): ParameterSource & { finish(): void } {
  const binder = new WeightBinder(checkpoint, dtype);
  return {
    take: (name, shape, as) => {
      if (as !== 'float32' && as !== 'float16' && as !== 'bfloat16') throw invalidArgument(`parameter ${name} dtype`, 'float32, float16 or bfloat16', as);
      const weight = binder.take(name, shape, as);
      return () => weight.load();
    },
    finish: () => binder.finish(),
  };
}

/** Zero-filled parameters of the requested shapes: for graph-structure tests and inspection. */
export const zeroParameters: ParameterSource = {
  take: (_name, shape, dtype) => new Uint8Array(shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype]),
};
