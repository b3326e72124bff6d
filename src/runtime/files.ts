// File-to-file runs for the CLI and scripts: feed a graph from a safetensors file, write
// every output to another, or time repeated runs in-process.

import { invalidArgument } from '../errors.js';
import { checkSafetensorsOutput } from '../fs/vitgraph-files.js';
import type { HostTensor } from '../tensor.js';
import { readSafetensors, writeSafetensors } from '../weights/index.js';
import { Session, type SessionOptions } from './session.js';

export interface FileRunOptions extends SessionOptions {
  model: string;
  /** safetensors whose same-named tensors feed the graph inputs (others are ignored). */
  inputs: string;
}

/** Graph-input feeds taken by name from `path`; a missing input is an error naming it. */
export async function loadFeeds(session: Session, path: string): Promise<Record<string, HostTensor>> {
  const tensors = await readSafetensors(path);
  const feeds: Record<string, HostTensor> = {};
  for (const input of session.inputs) {
    const t = tensors.get(input.name);
    if (!t) {
      throw invalidArgument(`--inputs ${path}`, `a tensor named "${input.name}" (${input.dtype} [${input.shape.join(', ')}])`, `only ${[...tensors.keys()].join(', ') || 'no tensors'}`);
    }
    feeds[input.name] = t;
  }
  return feeds;
}

export interface FileRunResult {
  readonly outputs: Record<string, HostTensor>;
  readonly ms: number;
}

/** Runs `model` once on the tensors of `inputs` and writes every output to `out`. */
export async function runFile(options: FileRunOptions & { out: string }): Promise<FileRunResult> {
  await checkSafetensorsOutput(options.out);
  const session = await Session.load(options.model, options);
  try {
    const feeds = await loadFeeds(session, options.inputs);
    const start = performance.now();
    const outputs = await session.run(feeds);
    const ms = performance.now() - start;
    await writeSafetensors(options.out, outputs, { producer: 'vitgraph run', model: options.model });
    return { outputs, ms };
  } finally {
    await session.close();
  }
}

export interface BenchResult {
  readonly median_ms: number;
  readonly min_ms: number;
  readonly mean_ms: number;
  readonly max_ms: number;
  readonly runs: number;
  readonly warmup: number;
  readonly times_ms: readonly number[];
}

/** Times `runs` session runs after `warmup` untimed ones, in this process. */
export async function benchFile(options: FileRunOptions & { runs?: number; warmup?: number }): Promise<BenchResult> {
  const session = await Session.load(options.model, options);
  try {
    const feeds = await loadFeeds(session, options.inputs);
    return await timeRuns(() => session.run(feeds), options);
  } finally {
    await session.close();
  }
}

/** Calls `run` `warmup` times untimed, then `runs` times timed (defaults 2 and 10). */
export async function timeRuns(run: () => Promise<unknown>, options: { runs?: number; warmup?: number } = {}): Promise<BenchResult> {
  const runs = options.runs ?? 10;
  const warmup = options.warmup ?? 2;
  if (!Number.isInteger(runs) || runs < 1) throw invalidArgument('--runs', 'an integer ≥ 1', runs);
  if (!Number.isInteger(warmup) || warmup < 0) throw invalidArgument('--warmup', 'an integer ≥ 0', warmup);
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  return summarizeTimes(times, warmup);
}

export function summarizeTimes(times: readonly number[], warmup = 0): BenchResult {
  const sorted = [...times].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  return {
    median_ms: round(median),
    min_ms: round(sorted[0]!),
    mean_ms: round(times.reduce((a, b) => a + b, 0) / times.length),
    max_ms: round(sorted[sorted.length - 1]!),
    runs: times.length,
    warmup,
    times_ms: times.map(round),
  };
}
