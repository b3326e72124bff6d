// One benchmark case in its own process, so its peak RSS is its own: loads the model, runs
// a synthetic request `warmup + runs` times, prints one JSON line.

import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { uniformFloats } from '../src/random.js';
import { timeRuns } from '../src/runtime/files.js';
import { Session } from '../src/runtime/session.js';
import { hostTensor, type HostTensor } from '../src/tensor.js';

export interface WorkerCase {
  model: string;
  grid: [number, number, number][];
  runs: number;
  warmup: number;
  threads: number;
  graphs?: 'dynamic' | 'buckets';
  /** A graph with pixel_values as its only input (the traced baseline), run as a plain session. */
  pixelsOnly?: boolean;
}

export interface WorkerResult {
  times_ms: number[];
  load_ms: number;
  peak_rss_bytes: number;
}

/** The traced baseline takes pixel_values only (its grid is baked in). */
async function pixelsOnlyRunner(c: WorkerCase): Promise<{ run: (p: HostTensor, g: HostTensor) => Promise<unknown>; close: () => Promise<void> }> {
  const session = await Session.load(c.model, { threads: c.threads });
  return { run: (pixels) => session.run({ pixel_values: pixels }), close: () => session.close() };
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as WorkerCase;
  const start = performance.now();
  const rows = c.grid.reduce((s, [t, h, w]) => s + t * h * w, 0);
  const pixels = hostTensor('float32', [rows, 1536], uniformFloats(rows * 1536, 0x9e3779b9));
  const grid = hostTensor('int64', [c.grid.length, 3], BigInt64Array.from(c.grid.flat().map(BigInt)));
  const runtime = c.pixelsOnly ? await pixelsOnlyRunner(c) : await EncoderRuntime.open(c.model, { threads: c.threads, ...(c.graphs ? { graphs: c.graphs } : {}) });
  await runtime.run(pixels, grid); // first run also builds lazily created sessions
  const load = performance.now() - start;
  // runs = 0: the cold first run (session creation included) is the measurement.
  const times = c.runs === 0 ? [load] : (await timeRuns(() => runtime.run(pixels, grid), { runs: c.runs, warmup: Math.max(c.warmup - 1, 0) })).times_ms;
  await runtime.close();
  const result: WorkerResult = { times_ms: [...times], load_ms: load, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
