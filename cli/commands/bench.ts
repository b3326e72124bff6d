import { stat } from 'node:fs/promises';
import { INPUTS as IO } from '../../src/contract.js';
import { benchModelFile } from '../../src/runtime/encoder-files.js';
import { resolveBackend } from '../../src/runtime/backend.js';
import { readSafetensorsHeader } from '../../src/weights/index.js';
import { choice, flag, int, requiredStr, type Command } from '../args.js';
import { BACKEND_OPTIONS, backendOptions } from '../backend.js';

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

export async function benchSubject(model: string, inputs: string, graphs: 'dynamic' | 'buckets' | undefined, options: ReturnType<typeof backendOptions>): Promise<BenchSubject> {
  const { backend, device } = resolveBackend(options);
  const isPackage = (await stat(model).catch(() => undefined))?.isDirectory() === true;
  const buckets = graphs === 'buckets' || backend === 'native';
  const graph = isPackage ? (buckets ? 'padded bucket graphs (smallest that fits)' : 'dynamic graph') : 'the .onnx file';
  const entries = (await readSafetensorsHeader(inputs)).entries;
  const pixels = entries.get(IO.pixelValues)?.shape;
  const grid = entries.get(IO.gridThw)?.shape;
  return {
    model,
    graph,
    ...(pixels ? { patches: pixels[0] } : {}),
    ...(grid ? { items: grid[0] } : {}),
    threads: options.threads ?? 'default',
    backend,
    device,
  };
}

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
    json: { type: 'boolean', description: 'print one JSON line {"median_ms","min_ms","runs","graph","patches","items","threads",...}' },
  },
  async run(args) {
    const runs = int(args, 'runs', 1);
    const warmup = int(args, 'warmup', 0);
    const graphs = choice(args, 'graphs', ['dynamic', 'buckets'] as const);
    const model = requiredStr(args, 'onnx');
    const inputs = requiredStr(args, 'inputs');
    const backend = backendOptions(args);
    const subject = await benchSubject(model, inputs, graphs, backend);
    const result = await benchModelFile({
      model,
      inputs,
      ...(graphs ? { graphs } : {}),
      ...backend,
      ...(runs !== undefined ? { runs } : {}),
      ...(warmup !== undefined ? { warmup } : {}),
    });
    if (flag(args, 'json')) {
      process.stdout.write(`${JSON.stringify({ median_ms: result.median_ms, min_ms: result.min_ms, runs: result.runs, ...subject })}\n`);
      return;
    }
    const size = subject.patches !== undefined ? `${subject.patches} patches${subject.items !== undefined ? ` in ${subject.items} item(s)` : ''}` : 'the inputs as given';
    const threads = subject.threads === 'default' ? "ORT's default threads (one per core)" : `${subject.threads} thread(s)`;
    process.stdout.write(`timed: ${subject.model}, ${subject.graph}; ${size}; ${threads}; ${subject.backend} on ${subject.device}\n`);
    process.stdout.write(`median ${result.median_ms.toFixed(1)} ms, min ${result.min_ms.toFixed(1)} ms, mean ${result.mean_ms.toFixed(1)} ms over ${result.runs} runs (${result.warmup} warm-up)\n`);
  },
};
