import { benchModelFile, benchSubject, profileMarkdown, readProfiles } from '../../index.js';
import { flag, int, requiredStr, type Command } from '../args.js';
import { BACKEND_OPTIONS, backendOptions, GRAPH_FILE_OPTIONS, GRAPHS_OPTION, graphsChoice } from '../options.js';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Time session runs of an ONNX graph in-process (median and min over --runs after --warmup).',
  options: {
    ...GRAPH_FILE_OPTIONS,
    runs: { type: 'string', value: '<n>', description: 'timed runs (default 10)' },
    warmup: { type: 'string', value: '<n>', description: 'untimed runs first (default 2)' },
    ...BACKEND_OPTIONS,
    ...GRAPHS_OPTION,
    json: { type: 'boolean', description: 'print one JSON line {"median_ms","min_ms","runs","graph","patches","items","threads",...} (with --profile: "profiles")' },
  },
  async run(args) {
    const runs = int(args, 'runs', 1);
    const warmup = int(args, 'warmup', 0);
    const options = { model: requiredStr(args, 'onnx'), inputs: requiredStr(args, 'inputs'), ...graphsChoice(args), ...backendOptions(args) };
    const subject = await benchSubject(options);
    const started = Date.now();
    const result = await benchModelFile({ ...options, ...(runs !== undefined ? { runs } : {}), ...(warmup !== undefined ? { warmup } : {}) });
    // --profile: ORT's trace per session, summarized (the warm-up runs left out).
    const profiles = options.profilePrefix ? await readProfiles(options.profilePrefix, started - 1000, { skipRuns: warmup ?? 2 }) : [];
    if (flag(args, 'json')) {
      process.stdout.write(`${JSON.stringify({ median_ms: result.median_ms, min_ms: result.min_ms, runs: result.runs, ...subject, ...(profiles.length > 0 ? { profiles } : {}) })}\n`);
      return;
    }
    const size = subject.patches !== undefined ? `${subject.patches} patches${subject.items !== undefined ? ` in ${subject.items} item(s)` : ''}` : 'the inputs as given';
    const threads = subject.threads === 'default' ? "ORT's default threads (one per core)" : `${subject.threads} thread(s)`;
    process.stdout.write(`timed: ${subject.model}, ${subject.graph}; ${size}; ${threads}; ${subject.backend} on ${subject.device}\n`);
    process.stdout.write(`median ${result.median_ms.toFixed(1)} ms, min ${result.min_ms.toFixed(1)} ms, mean ${result.mean_ms.toFixed(1)} ms over ${result.runs} runs (${result.warmup} warm-up)\n`);
    for (const { file, summary } of profiles)
      process.stdout.write(`\n${profileMarkdown(summary, `ONNX Runtime profile ${file} (host time per node; on CUDA, run with CUDA_LAUNCH_BLOCKING=1 for GPU time)`)}`);
  },
};
