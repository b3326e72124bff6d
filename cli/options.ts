// Options several commands share, declared once: the model and its files, the backend
// (--backend/--device/--device-id/--no-cuda-graph/--threads/--profile/--no-verify), the inputs and
// pixel budget of encode and preprocess, the export precision, and the package's graphs.

import { MODELS, PRECISIONS, type BackendOptions, type EncodeInput, type PixelBudget, type Precision } from '../index.js';
import { invalidArgument } from '../src/errors.js';
import { choice, flag, int, str, type OptionSpec, type ParsedArgs } from './args.js';

export const BACKEND_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  backend: { type: 'string', value: 'ort-node|native', description: 'onnxruntime-node (CPU, default) or the native addon (IO binding; CUDA graphs on --device cuda)' },
  device: { type: 'string', value: 'cpu|cuda', description: 'execution device (default cpu; cuda implies --backend native)' },
  'device-id': { type: 'string', value: '<n>', description: 'CUDA device ordinal (default 0)' },
  'no-cuda-graph': { type: 'boolean', description: 'on CUDA, run eagerly instead of capturing a CUDA graph per bucket' },
  tf32: { type: 'boolean', description: 'on CUDA, let float32 matmuls use TF32 tensor cores (faster, ~2e-3 error; default off: exact float32)' },
  threads: { type: 'string', value: '<n>', description: 'intra-op threads (default: all cores)' },
  profile: { type: 'string', value: '<prefix>', description: 'write an ONNX Runtime profile (JSON trace) per session, named <prefix>_<date>.json' },
  'no-verify': { type: 'boolean', description: "open a package without checking its files' sha256 against vitgraph.json (checked by default; cheap after the first open)" },
};

export function backendOptions(args: ParsedArgs): BackendOptions {
  const backend = choice(args, 'backend', ['ort-node', 'native'] as const);
  const device = choice(args, 'device', ['cpu', 'cuda'] as const);
  const deviceId = int(args, 'device-id', 0);
  const threads = int(args, 'threads', 1);
  const profilePrefix = str(args, 'profile');
  return {
    ...(profilePrefix ? { profilePrefix } : {}),
    ...(backend ? { backend } : {}),
    ...(device ? { device } : {}),
    ...(deviceId !== undefined ? { deviceId } : {}),
    ...(flag(args, 'no-cuda-graph') ? { cudaGraph: false } : {}),
    ...(flag(args, 'tf32') ? { tf32: true } : {}),
    ...(threads ? { threads } : {}),
    ...(flag(args, 'no-verify') ? { verify: false } : {}),
  };
}

/**
 * The native backend runs the padded bucket graphs even on CPU; unasked, that changes what runs
 * (and, for a checkpoint, adds buckets to its cache entry), so it is said in one line. On CUDA the
 * buckets are the point (CUDA graphs) and the help says so.
 */
export function bucketNotice(backend: BackendOptions, graphs: string | undefined, quiet: boolean, stream: Pick<NodeJS.WriteStream, 'write'> = process.stderr): void {
  if (quiet || graphs !== undefined || backend.backend !== 'native' || backend.device === 'cuda') return;
  stream.write('note: --backend native runs the padded bucket graphs (as --graphs buckets); a checkpoint exports them into its cache entry on first use\n');
}

/** --onnx and --inputs of run and bench: a graph file or package, fed from a safetensors file. */
export const GRAPH_FILE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  onnx: { type: 'string', value: '<file.onnx|dir>', required: true, description: 'the model: a .onnx file or an exported package directory' },
  inputs: { type: 'string', value: '<in.safetensors>', required: true, description: 'input tensors by graph-input name (others are ignored)' },
};

/** --graphs: which graphs of a package run. */
export const GRAPHS_OPTION: Readonly<Record<string, OptionSpec>> = {
  graphs: { type: 'string', value: 'dynamic|buckets', description: 'for a package: the dynamic graph (CPU default) or the padded buckets' },
};

export const graphsChoice = (args: ParsedArgs): { graphs?: 'dynamic' | 'buckets' } => {
  const graphs = choice(args, 'graphs', ['dynamic', 'buckets'] as const);
  return graphs ? { graphs } : {};
};

/** Positional images and `--video a,b,c` frame lists, as encoder inputs in command-line order. */
export function visualInputs(args: ParsedArgs): EncodeInput[] {
  const inputs: EncodeInput[] = args.sequence.flatMap((arg): EncodeInput[] =>
    arg.option === undefined ? [arg.value] : arg.option === 'video' ? [{ frames: arg.value.split(',').filter(Boolean) }] : [],
  );
  if (inputs.length === 0) throw invalidArgument('inputs', 'at least one image path or --video frame list', undefined, 'See --help');
  return inputs;
}

export function pixelBudget(args: ParsedArgs): PixelBudget {
  const minPixels = int(args, 'min-pixels', 1);
  const maxPixels = int(args, 'max-pixels', 1);
  return { ...(minPixels ? { minPixels } : {}), ...(maxPixels ? { maxPixels } : {}) };
}

/** --video and the pixel budget, whose defaults are the model's processor's (the registry says which). */
export const PIXEL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  video: { type: 'string', multiple: true, value: '<f1,f2,…>', description: 'frames of one video, comma-separated (repeatable); animated GIF/WebP files are videos already' },
  'min-pixels': { type: 'string', value: '<n>', description: `smallest resized image area in pixels (default: the model's processor's; ${familyDefaults('minPixels')})` },
  'max-pixels': { type: 'string', value: '<n>', description: `largest resized image area in pixels (default: the model's processor's; ${familyDefaults('maxPixels')})` },
};

/** What encode and preprocess share: --model (whose processor), --out (a safetensors file), --video and the pixel budget. */
export const imageOptions = (model: string, out: string): Readonly<Record<string, OptionSpec>> => ({
  model: { type: 'string', value: '<m>', description: model },
  out: { type: 'string', value: '<file.safetensors>', required: true, description: out },
  ...PIXEL_OPTIONS,
});

/** The registered families' values of a processor field, e.g. "65536 for qwen3-vl, qwen3.5; 3136 for qwen2.5-vl, qwen2-vl". */
function familyDefaults(field: 'minPixels' | 'maxPixels'): string {
  const byValue = new Map<number, string[]>();
  for (const model of MODELS.models) byValue.set(model.processor[field], [...(byValue.get(model.processor[field]) ?? []), model.id]);
  return [...byValue].map(([value, ids]) => `${value} for ${ids.join(', ')}`).join('; ');
}

/** --dtype for commands that export a checkpoint on first use (encode, serve). */
export const DTYPE_OPTION: Readonly<Record<string, OptionSpec>> = {
  dtype: {
    type: 'string',
    value: PRECISIONS.join('|'),
    description: 'for a checkpoint: the precision it is exported in on first use (default float32; int8 is the fast CPU choice, float16/bfloat16 the CUDA ones; cached separately)',
  },
};

export const precisionChoice = (args: ParsedArgs): { dtype?: Precision } => {
  const dtype = choice(args, 'dtype', PRECISIONS);
  return dtype ? { dtype } : {};
};
