import { encodeToFile } from '../../index.js';
import { flag, int, requiredStr, str, type Command } from '../args.js';
import { BACKEND_OPTIONS, backendOptions, bucketNotice, DTYPE_OPTION, GRAPHS_OPTION, graphsChoice, imageOptions, pixelBudget, precisionChoice, visualInputs } from '../options.js';
import { byteProgress, itemProgress, type ItemProgress } from '../progress.js';

const MODEL = 'a .onnx, an exported package dir, or a Hugging Face checkpoint dir or hub folder models--org--name[@revision] (default: the embedded tiny tower)';

export const encodeCommand: Command = {
  name: 'encode',
  summary: 'Images (or frame lists) → visual tokens: every graph output (image_embeds; Qwen3-VL adds deepstack_embeds) and grid_thw as safetensors.',
  positionals: '<image…>',
  options: {
    ...imageOptions(MODEL, 'where to write the outputs (image_embeds, deepstack_embeds for Qwen3-VL) and grid_thw: a new file, one vitgraph wrote, or /dev/stdout'),
    'cache-dir': { type: 'string', value: '<dir>', description: 'where a checkpoint is exported on first use (default $VITGRAPH_CACHE, else ~/.cache/vitgraph)' },
    ...BACKEND_OPTIONS,
    ...GRAPHS_OPTION,
    ...DTYPE_OPTION,
    batch: { type: 'string', value: '<n>', description: 'inputs per encoder call (default 1 on the dynamic graph, 8 on buckets, which pack several per run)' },
    json: { type: 'boolean', description: 'print a JSON summary: items, tokens, ms' },
    quiet: { type: 'boolean', short: 'q', description: 'no progress or summary on stderr (progress shows only on a terminal, after 1 s)' },
  },
  details:
    'Without --model the embedded tiny random-weight tower is used: it shows the pipeline works but its\n' +
    'numbers mean nothing. For real embeddings pass a checkpoint (Qwen3-VL, Qwen3.5, Qwen2-VL, Qwen2.5-VL), e.g.\n' +
    '  vitgraph encode photo.jpg --model ./Qwen3-VL-2B-Instruct --out photo.safetensors',
  async run(args) {
    const inputs = visualInputs(args);
    const quiet = flag(args, 'quiet');
    const out = requiredStr(args, 'out');
    const batch = int(args, 'batch', 1);
    let progress: ItemProgress | undefined; // from the model's load on: a first-use export shows its own progress
    const backend = backendOptions(args);
    const graphs = graphsChoice(args);
    bucketNotice(backend, graphs.graphs, quiet);
    try {
      const summary = await encodeToFile(str(args, 'model'), inputs, {
        out,
        ...backend,
        ...graphs,
        ...precisionChoice(args),
        ...pixelBudget(args),
        ...(batch ? { batch } : {}),
        ...(str(args, 'cache-dir') ? { cacheDir: str(args, 'cache-dir') } : {}),
        ...(quiet ? {} : { onHashProgress: byteProgress('hashing weights (first use)'), onExportProgress: byteProgress('exporting checkpoint (first use)') }),
        onEncoded: (done) => (progress ??= itemProgress('encoding', inputs.length, { quiet })).update(done),
      });
      progress?.stop();
      if (flag(args, 'json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else if (!quiet) process.stderr.write(`encoded ${summary.items.length} item(s), ${summary.tokens} tokens → ${out}\n`);
    } finally {
      progress?.stop();
    }
  },
};
