// `vitgraph export`: a Hugging Face checkpoint → ONNX: one .onnx file (dynamic or a single
// padded bucket), or a package directory with the dynamic graph, every bucket graph and one
// shared weights file.

import { access, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument, unsupported } from '../../src/errors.js';
import { requirePath } from '../../src/fs/confined.js';
import { ExternalDataFile, saveModel, type GraphBuilder, type SavedModel } from '../../src/onnx/index.js';
import { VITGRAPH_VERSION } from '../../src/version.js';
import type { AttentionKind } from './attention.js';
import { checkpointParameters, openModelDirectory, type ModelDirectory } from './checkpoint.js';
import { configToJson } from './config.js';
import { buildDynamicGraph } from './dynamic.js';
import { fileEntry, FORMAT, FORMAT_VERSION, MANIFEST, type GraphEntry, type Manifest } from './package.js';
import { bucket, buildPaddedGraph, type Bucket } from './padded.js';

export const DEFAULT_OPSET = 21;
export const MIN_OPSET = 20; // Gelu-20
export const MAX_OPSET = 24;
/** Buckets of a package when none are given: 256², 512², 1024² px images. */
export const DEFAULT_BUCKETS: readonly number[] = [256, 1024, 4096];

export interface ExportOptions {
  /** Hugging Face model directory: config.json + model.safetensors (or a sharded index). */
  model: string;
  /** A `.onnx` file, or a package directory. */
  out: string;
  /** For a .onnx output: 'dynamic' (default) or 'padded' (needs exactly one bucket size). */
  variant?: 'dynamic' | 'padded' | undefined;
  /** Padded bucket sizes in patches (multiples of 4). */
  maxPatches?: readonly number[] | undefined;
  /** grid_thw rows per bucket (default: maxPatches / 64). */
  maxItems?: number | undefined;
  /** 'bfloat16' is refused with the reason (no bf16 kernels for Gelu / MultiHeadAttention in ORT CUDA). */
  dtype?: 'float32' | 'float16' | 'bfloat16' | undefined;
  opset?: number | undefined;
  attention?: AttentionKind | undefined;
  /** For a .onnx output; packages always keep weights in one shared file. */
  externalData?: 'auto' | 'always' | 'never' | undefined;
  /** Replace existing outputs (otherwise an existing output is an error). */
  overwrite?: boolean | undefined;
  /** Weight bytes written so far and in all (a package writes each weight once). */
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface ExportResult {
  /** Paths written (the .onnx, or the package's manifest, graphs and weights). */
  readonly files: readonly string[];
  readonly graphs: number;
  readonly parameters: number;
}

interface Plan {
  readonly model: ModelDirectory;
  readonly dtype: 'float32' | 'float16';
  readonly opset: number;
}

export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  if (typeof options !== 'object' || options === null) throw invalidArgument('export options', 'an object with model and out', typeof options);
  requirePath(options.model, 'model');
  requirePath(options.out, 'out');
  const opset = checkOpset(options.opset ?? DEFAULT_OPSET);
  const isFile = options.out.endsWith('.onnx');
  const buckets = (options.maxPatches ?? (isFile ? [] : DEFAULT_BUCKETS)).map((n) => bucket(n, options.maxItems));
  if (isFile) checkFileVariant(options, buckets);
  if (!options.overwrite) await refuseExisting(options.out, isFile);
  if (options.dtype === 'bfloat16') {
    throw unsupported(
      '--dtype bfloat16: ONNX Runtime has no bfloat16 kernels for Gelu-20 or com.microsoft.MultiHeadAttention (CUDA or CPU)',
      'Use --dtype float16 for reduced precision (same memory, fp32 statistics), or float32',
    );
  }
  const model = await openModelDirectory(options.model);
  const plan: Plan = { model, dtype: options.dtype ?? 'float32', opset };
  return isFile ? exportFile(plan, options, buckets[0]) : exportPackage(plan, options, buckets);
}

function checkFileVariant(options: ExportOptions, buckets: readonly Bucket[]): void {
  const variant = options.variant ?? 'dynamic';
  if (variant === 'padded' && buckets.length !== 1) {
    throw invalidArgument('--max-patches', 'exactly one bucket size for a padded .onnx file', buckets.length ? buckets.map((b) => b.maxPatches).join(',') : 'none', 'Give one size, or export a package directory (--out <dir>) for several');
  }
  if (variant === 'dynamic' && buckets.length) {
    throw invalidArgument('--max-patches', 'no bucket sizes for a dynamic .onnx file', buckets.map((b) => b.maxPatches).join(','), 'Add --variant padded, or export a package directory');
  }
}

async function exportFile(plan: Plan, options: ExportOptions, padded: Bucket | undefined): Promise<ExportResult> {
  const { graph, finish } = build(plan, padded, options.attention);
  finish();
  const saved = await save(graph, options.out, plan, padded, {
    ...(options.externalData ? { externalData: options.externalData } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { files: [saved.path, ...(saved.externalDataPath ? [saved.externalDataPath] : [])], graphs: 1, parameters: countParameters(graph) };
}

async function exportPackage(plan: Plan, options: ExportOptions, buckets: readonly Bucket[]): Promise<ExportResult> {
  const dir = options.out;
  await mkdir(dir, { recursive: true });
  const weights = await ExternalDataFile.create(join(dir, 'weights.data'));
  const variants: (Bucket | undefined)[] = [undefined, ...buckets];
  const entries: { file: string; variant: Bucket | undefined }[] = [];
  let parameters = 0;
  try {
    for (const variant of variants) {
      const file = variant ? `padded-${variant.maxPatches}.onnx` : 'dynamic.onnx';
      const { graph, finish } = build(plan, variant, options.attention);
      finish();
      parameters = countParameters(graph);
      // Only the first graph writes weights; the others reference the same bytes.
      const first = entries.length === 0;
      await save(graph, join(dir, file), plan, variant, { externalData: weights, ...(first && options.onProgress ? { onProgress: options.onProgress } : {}) });
      entries.push({ file, variant });
    }
    await weights.close();
  } catch (error) {
    await weights.discard();
    throw error;
  }
  const graphs: GraphEntry[] = [];
  for (const { file, variant } of entries) {
    const entry = await fileEntry(dir, file);
    graphs.push(variant ? { ...entry, variant: 'padded', ...variant } : { ...entry, variant: 'dynamic' });
  }
  const manifest: Manifest = {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    vitgraph: VITGRAPH_VERSION,
    model: 'qwen3-vl-vision',
    dtype: plan.dtype,
    opset: plan.opset,
    config: configToJson(plan.model.config),
    weights: await fileEntry(dir, 'weights.data'),
    graphs,
  };
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return { files: [join(dir, MANIFEST), ...graphs.map((g) => join(dir, g.file)), join(dir, 'weights.data')], graphs: graphs.length, parameters };
}

function build(plan: Plan, padded: Bucket | undefined, attention: AttentionKind | undefined): { graph: GraphBuilder; finish: () => void } {
  const params = checkpointParameters(plan.model.checkpoint, plan.dtype);
  const graph = padded
    ? buildPaddedGraph(plan.model.config, params, padded, { dtype: plan.dtype })
    : buildDynamicGraph(plan.model.config, params, { dtype: plan.dtype, ...(attention ? { attention } : {}) });
  return { graph, finish: () => params.finish() };
}

/** Writes a built graph with vitgraph's metadata_props. */
function save(graph: GraphBuilder, out: string, plan: Plan, padded: Bucket | undefined, options: Pick<Parameters<typeof saveModel>[2], 'externalData' | 'onProgress'>): Promise<SavedModel> {
  return saveModel(graph, out, {
    opset: plan.opset,
    producerVersion: VITGRAPH_VERSION,
    docString: 'Qwen3-VL vision encoder (Qwen3VLVisionModel.forward) built by vitgraph',
    metadata: {
      'vitgraph.version': VITGRAPH_VERSION,
      'vitgraph.model': 'qwen3-vl-vision',
      'vitgraph.variant': padded ? 'padded' : 'dynamic',
      ...(padded ? { 'vitgraph.max_patches': String(padded.maxPatches), 'vitgraph.max_items': String(padded.maxItems) } : {}),
      'vitgraph.dtype': plan.dtype,
      'vitgraph.vision_config': JSON.stringify(configToJson(plan.model.config)),
      'vitgraph.source_config': JSON.stringify(plan.model.rawConfig),
    },
    ...options,
  });
}

export function checkOpset(opset: number): number {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw invalidArgument('--opset', `an integer in ${MIN_OPSET}..${MAX_OPSET} (Gelu needs opset 20)`, opset);
  }
  return opset;
}

async function refuseExisting(path: string, isFile: boolean): Promise<void> {
  const exists = isFile
    ? await access(path).then(
        () => true,
        () => false,
      )
    : await readdir(path).then(
        (entries) => entries.length > 0,
        () => false,
      );
  if (exists) throw invalidArgument('--out', isFile ? 'a file that does not exist yet' : 'a new or empty directory', path, 'Choose another path or pass --force to replace it');
}

const countParameters = (graph: GraphBuilder): number => graph.initializers.filter((i) => i.kind === 'param').reduce((sum, i) => sum + i.shape.reduce((a, b) => a * b, 1), 0);

