import { VisionEncoder, type EncodeInput, type EncodeResult } from '../../index.js';
import { invalidArgument } from '../../src/errors.js';
import { checkSafetensorsOutput } from '../../src/fs/vitgraph-files.js';
import { QWEN2_VL_PROCESSOR, QWEN3_VL_PROCESSOR } from '../../src/image/index.js';
import { concatTokens } from '../../src/runtime/buckets.js';
import { hostTensor } from '../../src/tensor.js';
import { writeSafetensors } from '../../src/weights/index.js';
import { choice, flag, int, requiredStr, str, type Command, type ParsedArgs } from '../args.js';
import { BACKEND_OPTIONS, backendOptions, bucketNotice } from '../backend.js';
import { byteProgress, itemProgress } from '../progress.js';

/** Positional images and `--video a,b,c` frame lists, as encoder inputs in command-line order. */
export function visualInputs(args: ParsedArgs): EncodeInput[] {
  const inputs: EncodeInput[] = args.sequence.flatMap((arg): EncodeInput[] =>
    arg.option === undefined ? [arg.value] : arg.option === 'video' ? [{ frames: arg.value.split(',').filter(Boolean) }] : [],
  );
  if (inputs.length === 0) throw invalidArgument('inputs', 'at least one image path or --video frame list', undefined, 'See --help');
  return inputs;
}

export function pixelBudget(args: ParsedArgs): { minPixels?: number; maxPixels?: number } {
  const minPixels = int(args, 'min-pixels', 1);
  const maxPixels = int(args, 'max-pixels', 1);
  return { ...(minPixels ? { minPixels } : {}), ...(maxPixels ? { maxPixels } : {}) };
}

export const PIXEL_OPTIONS = {
  video: { type: 'string', multiple: true, value: '<f1,f2,…>', description: 'frames of one video, comma-separated (repeatable); animated GIF/WebP files are videos already' },
  'min-pixels': { type: 'string', value: '<n>', description: `smallest resized image area in pixels (default: the model's processor; ${QWEN3_VL_PROCESSOR.minPixels} for Qwen3-VL and Qwen3.5, ${QWEN2_VL_PROCESSOR.minPixels} for Qwen2-VL and Qwen2.5-VL)` },
  'max-pixels': { type: 'string', value: '<n>', description: `largest resized image area in pixels (default: the model's processor; ${QWEN3_VL_PROCESSOR.maxPixels} for Qwen3-VL and Qwen3.5, ${QWEN2_VL_PROCESSOR.maxPixels} for Qwen2-VL and Qwen2.5-VL)` },
} as const;

/** `--dtype` for commands that export a checkpoint on first use (encode, serve). */
export const DTYPE_OPTION = {
  dtype: { type: 'string', value: 'float32|float16|bfloat16|int8|int4', description: 'for a checkpoint: the precision it is exported in on first use (default float32; int8 is the fast CPU choice, float16/bfloat16 the CUDA ones; cached separately)' },
} as const;

export const exportDType = (args: ParsedArgs): 'float32' | 'float16' | 'bfloat16' | 'int8' | 'int4' | undefined => choice(args, 'dtype', ['float32', 'float16', 'bfloat16', 'int8', 'int4'] as const);

export const encodeCommand: Command = {
  name: 'encode',
  summary: 'Images (or frame lists) → visual tokens: every graph output (image_embeds; Qwen3-VL adds deepstack_embeds) and grid_thw as safetensors.',
  positionals: '<image…>',
  options: {
    model: { type: 'string', value: '<m>', description: 'a .onnx, an exported package dir, or a Hugging Face checkpoint dir or hub folder models--org--name[@revision] (default: the embedded tiny tower)' },
    out: { type: 'string', value: '<file.safetensors>', required: true, description: 'where to write the outputs (image_embeds, deepstack_embeds for Qwen3-VL) and grid_thw: a new file, one vitgraph wrote, or /dev/stdout' },
    ...PIXEL_OPTIONS,
    ...BACKEND_OPTIONS,
    graphs: { type: 'string', value: 'dynamic|buckets', description: 'for a package: the dynamic graph (default) or the padded buckets' },
    ...DTYPE_OPTION,
    'cache-dir': { type: 'string', value: '<dir>', description: 'where a checkpoint is exported on first use (default $VITGRAPH_CACHE, else ~/.cache/vitgraph)' },
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
    const graphs = choice(args, 'graphs', ['dynamic', 'buckets'] as const);
    const backend = backendOptions(args);
    const buckets = graphs === 'buckets' || backend.backend === 'native' || backend.device === 'cuda';
    const batch = int(args, 'batch', 1) ?? (buckets ? 8 : 1);
    const quiet = flag(args, 'quiet');
    const model = str(args, 'model');
    const dtype = exportDType(args);
    const out = requiredStr(args, 'out');
    const cacheDir = str(args, 'cache-dir');
    await checkSafetensorsOutput(out); // before minutes of export or encoding
    bucketNotice(backend, graphs, quiet);
    const encoder = await VisionEncoder.load(model, {
      ...backend,
      ...(graphs ? { graphs } : {}),
      ...(dtype ? { dtype } : {}),
      ...(cacheDir ? { cacheDir } : {}),
      ...(quiet ? {} : { onHashProgress: byteProgress('hashing weights (first use)'), onExportProgress: byteProgress('exporting checkpoint (first use)') }),
    });
    const progress = itemProgress('encoding', inputs.length, { quiet });
    try {
      const results: EncodeResult[] = [];
      for (let i = 0; i < inputs.length; i += batch) {
        results.push(await encoder.encode(inputs.slice(i, i + batch), pixelBudget(args)));
        progress.update(Math.min(i + batch, inputs.length));
      }
      progress.stop();
      const merged = concatTokens(results.map((r) => r.outputs), encoder.outputs);
      const grid = results.flatMap((r) => Array.from(r.gridThw.data));
      await writeSafetensors(out, { ...merged, grid_thw: hostTensor('int64', [grid.length / 3, 3], BigInt64Array.from(grid)) }, { producer: 'vitgraph encode', model: encoder.modelId });
      const summary = {
        items: results.flatMap((r) => r.items.map((it) => ({ kind: it.kind, grid_thw: it.gridThw, tokens: it.tokens }))),
        tokens: results.reduce((s, r) => s + r.items.reduce((n, it) => n + it.tokens, 0), 0),
        ms: { preprocess: round(results.reduce((s, r) => s + r.ms.preprocess, 0)), encode: round(results.reduce((s, r) => s + r.ms.encode, 0)) },
      };
      if (flag(args, 'json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else if (!quiet) process.stderr.write(`encoded ${summary.items.length} item(s), ${summary.tokens} tokens → ${out}\n`);
    } finally {
      progress.stop();
      await encoder.close();
    }
  },
};

const round = (ms: number): number => Math.round(ms * 10) / 10;
