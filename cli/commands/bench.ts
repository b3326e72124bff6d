import { benchModelFile } from '../../src/runtime/encoder-files.js';
import { choice, flag, int, requiredStr, type Command } from '../args.js';
import { BACKEND_OPTIONS, backendOptions } from '../backend.js';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Time session runs of an ONNX graph in-process (median and min over --runs after --warmup).',
  options: {
    onnx: { type: 'string', value: '<file.onnx|dir>', required: true, description: 'the model: a .onnx file or an exported package directory' },
    inputs: { type: 'string', value: '<in.safetensors>', required: true, description: 'input tensors by graph-input name' },
    runs: { type: 'string', value: '<n>', description: 'timed runs (default 10)' },
    warmup: { type: 'string', value: '<n>', description: 'untimed runs first (default 2)' },
    ...BACKEND_OPTIONS,
    graphs: { type: 'string', value: 'dynamic|buckets', description: 'for a package: the dynamic graph (default) or the padded buckets' },
    json: { type: 'boolean', description: 'print one JSON line {"median_ms","min_ms","runs"}' },
  },
  async run(args) {
    const runs = int(args, 'runs', 1);
    const warmup = int(args, 'warmup', 0);
    const graphs = choice(args, 'graphs', ['dynamic', 'buckets'] as const);
    const result = await benchModelFile({
      model: requiredStr(args, 'onnx'),
      inputs: requiredStr(args, 'inputs'),
      ...(graphs ? { graphs } : {}),
      ...backendOptions(args),
      ...(runs !== undefined ? { runs } : {}),
      ...(warmup !== undefined ? { warmup } : {}),
    });
    if (flag(args, 'json')) {
      process.stdout.write(`${JSON.stringify({ median_ms: result.median_ms, min_ms: result.min_ms, runs: result.runs })}\n`);
    } else {
      process.stdout.write(`median ${result.median_ms.toFixed(1)} ms, min ${result.min_ms.toFixed(1)} ms, mean ${result.mean_ms.toFixed(1)} ms over ${result.runs} runs (${result.warmup} warm-up)\n`);
    }
  },
};
