// One benchmark case in its own process, so its peak RSS is its own: loads the model, runs
// a synthetic request `warmup + runs` times, prints one JSON line.

import { EncoderRuntime } from '../graphs/qwen3-vl/runtime.js';
import { hostTensor } from '../src/tensor.js';

export interface WorkerCase {
  model: string;
  grid: [number, number, number][];
  runs: number;
  warmup: number;
  threads: number;
  graphs?: 'dynamic' | 'buckets';
}

export interface WorkerResult {
  times_ms: number[];
  load_ms: number;
  peak_rss_bytes: number;
}

/** Deterministic pixel rows in [-1, 1] (the processor's range). */
function syntheticPixels(rows: number, patchDim: number): Float32Array {
  const out = new Float32Array(rows * patchDim);
  let x = 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 0xffffffff) * 2 - 1;
  }
  return out;
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as WorkerCase;
  const start = performance.now();
  const runtime = await EncoderRuntime.open(c.model, { threads: c.threads, ...(c.graphs ? { graphs: c.graphs } : {}) });
  const rows = c.grid.reduce((s, [t, h, w]) => s + t * h * w, 0);
  const pixels = hostTensor('float32', [rows, runtime.patchDim], syntheticPixels(rows, runtime.patchDim));
  const grid = hostTensor('int64', [c.grid.length, 3], BigInt64Array.from(c.grid.flat().map(BigInt)));
  await runtime.run(pixels, grid); // first run also builds lazily created sessions
  const load = performance.now() - start;
  for (let i = 1; i < c.warmup; i++) await runtime.run(pixels, grid);
  const times: number[] = [];
  for (let i = 0; i < c.runs; i++) {
    const t0 = performance.now();
    await runtime.run(pixels, grid);
    times.push(performance.now() - t0);
  }
  await runtime.close();
  const result: WorkerResult = { times_ms: times, load_ms: load, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
