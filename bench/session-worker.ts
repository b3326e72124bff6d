// One timed case in its own process, so its load time and peak RSS are its own: opens one graph
// as an onnxruntime-node session, runs the inputs of a safetensors file `warmup + runs` times,
// optionally saves the last run's outputs, and prints one JSON line.

import { Session } from '../src/runtime/session.js';
import { summarizeTimes, timeRuns } from '../src/runtime/files.js';
import { readSafetensors, writeSafetensors } from '../src/weights/index.js';

export interface SessionCase {
  model: string;
  /** safetensors with pixel_values and grid_thw. */
  inputs: string;
  runs: number;
  warmup: number;
  threads: number;
  /** Quantized graphs need ORT's prepacked weights to be fast; float graphs load faster without. */
  prepack: boolean;
  /** Where to write the last run's outputs (for accuracy against another case). */
  saveOutputs?: string;
}

export interface SessionResult {
  load_ms: number;
  median_ms: number;
  min_ms: number;
  times_ms: number[];
  /** RSS before the session loaded (node, ORT's library, the inputs), right after, and the process's peak. */
  rss_before_load_bytes: number;
  rss_after_load_bytes: number;
  peak_rss_bytes: number;
}

const rss = (): number => process.memoryUsage.rss();

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as SessionCase;
  const tensors = await readSafetensors(c.inputs);
  const feeds = { pixel_values: tensors.get('pixel_values')!, grid_thw: tensors.get('grid_thw')! };
  const beforeLoad = rss();
  const start = performance.now();
  const session = await Session.load(c.model, { threads: c.threads, prepackWeights: c.prepack });
  const loadMs = performance.now() - start;
  const afterLoad = rss();
  let last: Awaited<ReturnType<Session['run']>> | undefined;
  const timed = await timeRuns(async () => (last = await session.run(feeds)), { runs: c.runs, warmup: c.warmup });
  if (c.saveOutputs && last) await writeSafetensors(c.saveOutputs, last, { producer: 'vitgraph bench' });
  await session.close();
  const s = summarizeTimes(timed.times_ms);
  const result: SessionResult = {
    load_ms: loadMs,
    median_ms: s.median_ms,
    min_ms: s.min_ms,
    times_ms: [...timed.times_ms],
    rss_before_load_bytes: beforeLoad,
    rss_after_load_bytes: afterLoad,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
