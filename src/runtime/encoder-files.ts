// File-to-file encoder runs for `vitgraph run` and `vitgraph bench`: inputs from safetensors,
// padded graphs padded and sliced, outputs to safetensors.

import { stat } from 'node:fs/promises';
import { invalidArgument } from '../errors.js';
import { checkSafetensorsOutput } from '../fs/vitgraph-files.js';
import { inspectModel } from '../onnx/inspect.js';
import type { HostTensor } from '../tensor.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../weights/index.js';
import { resolveBackend, useBuckets } from './backend.js';
import { EncoderRuntime, type EncoderRuntimeOptions } from './encoder-runtime.js';
import { benchFile, runFile, timeRuns, type BenchResult } from './files.js';
import { INPUTS as IO } from '../contract.js';

export interface EncoderFileOptions extends EncoderRuntimeOptions {
  /** A .onnx file or a package directory. */
  model: string;
  /** safetensors holding pixel_values and grid_thw (other tensors are ignored). */
  inputs: string;
}

/** True for a package directory or a .onnx taking pixel_values + grid_thw. */
export async function isEncoderModel(model: string): Promise<boolean> {
  if ((await stat(model).catch(() => undefined))?.isDirectory()) return true;
  const names = (await inspectModel(model)).inputs.map((i) => i.name);
  return names.includes(IO.pixelValues) && names.includes(IO.gridThw);
}

async function encoderInputs(path: string): Promise<{ pixelValues: HostTensor; gridThw: HostTensor }> {
  const tensors = await readSafetensors(path);
  const pixelValues = tensors.get(IO.pixelValues);
  const gridThw = tensors.get(IO.gridThw);
  if (!pixelValues || !gridThw) {
    throw invalidArgument(`--inputs ${path}`, `tensors "${IO.pixelValues}" and "${IO.gridThw}"`, [...tensors.keys()].join(', ') || 'no tensors');
  }
  return { pixelValues, gridThw };
}

/**
 * Runs a model once. Encoder graphs (dynamic, padded, packages) take pixel_values +
 * grid_thw and write their named outputs sliced to the real tokens; any other
 * graph is fed by input name and writes every output.
 */
export async function runModelFile(options: EncoderFileOptions & { out: string }): Promise<{ outputs: Record<string, HostTensor>; ms: number }> {
  await checkSafetensorsOutput(options.out); // before the run: a file vitgraph did not write is never replaced
  if (!(await isEncoderModel(options.model))) return runFile(options);
  const { pixelValues, gridThw } = await encoderInputs(options.inputs);
  const runtime = await EncoderRuntime.open(options.model, options);
  try {
    const start = performance.now();
    const out = await runtime.run(pixelValues, gridThw);
    const ms = performance.now() - start;
    const outputs: Record<string, HostTensor> = { ...out };
    await writeSafetensors(options.out, outputs, { producer: 'vitgraph run' });
    return { outputs, ms };
  } finally {
    await runtime.close();
  }
}

/** Times `runs` encoder calls after `warmup` (or plain session runs for other graphs). */
export async function benchModelFile(options: EncoderFileOptions & { runs?: number; warmup?: number }): Promise<BenchResult> {
  if (!(await isEncoderModel(options.model))) return benchFile(options);
  const { pixelValues, gridThw } = await encoderInputs(options.inputs);
  const runtime = await EncoderRuntime.open(options.model, options);
  try {
    return await timeRuns(() => runtime.run(pixelValues, gridThw), options);
  } finally {
    await runtime.close();
  }
}

/** What a bench run times: the graph, the input size and the threads, stated beside the numbers. */
export interface BenchSubject {
  model: string;
  graph: string;
  /** pixel_values rows and grid_thw rows, for encoder inputs. */
  patches?: number;
  items?: number;
  threads: number | 'default';
  backend: string;
  device: string;
}

/** The subject of `benchModelFile(options)`, read from the inputs' header (no weights are loaded). */
export async function benchSubject(options: Pick<EncoderFileOptions, 'model' | 'inputs' | 'graphs' | 'backend' | 'device' | 'threads'>): Promise<BenchSubject> {
  const { backend, device } = resolveBackend(options);
  const isPackage = (await stat(options.model).catch(() => undefined))?.isDirectory() === true;
  const graph = isPackage ? (useBuckets(options) ? 'padded bucket graphs (smallest that fits)' : 'dynamic graph') : 'the .onnx file';
  const entries = (await readSafetensorsHeader(options.inputs)).entries;
  const pixels = entries.get(IO.pixelValues)?.shape;
  const grid = entries.get(IO.gridThw)?.shape;
  return {
    model: options.model,
    graph,
    ...(pixels ? { patches: pixels[0] } : {}),
    ...(grid ? { items: grid[0] } : {}),
    threads: options.threads ?? 'default',
    backend,
    device,
  };
}
