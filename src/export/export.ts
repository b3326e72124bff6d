// `vitgraph export`: a Hugging Face checkpoint → ONNX: one .onnx file (dynamic or a single
// padded bucket), or a package directory with the dynamic graph, every bucket graph and one
// shared weights file. The tower comes from the registry, detected from config.json.
//
// Writes never leave a half-written output at the destination: a .onnx file (and its external
// data) is written to temporaries renamed into place; a package is written whole into a sibling
// temporary directory and swapped in (see `swapInto`). Temporaries of killed exports are removed
// by the next export to the same place.

import { lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VitgraphError, invalidArgument, unsupported } from '../errors.js';
import { requirePath } from '../fs/confined.js';
import { asFileSystemError, fileSystemError, onFileSystem } from '../fs/system-errors.js';
import { parseTemporary, processAlive, temporaryPath } from '../fs/temporary.js';
import { checkExportOutput } from '../fs/vitgraph-files.js';
import { invalidConfig } from '../errors.js';
import { loadProcessor } from '../image/processor-file.js';
import type { ProcessorParams } from '../image/processor.js';
import { encoderIO, isPrecision, PRECISION, PRECISIONS, quantizationOf, slotPatches, type Device, type EncoderIO, type Precision } from '../contract.js';
import type { Bucket, ModelDescriptor, ModelRegistry, TowerConfig } from '../model.js';
import { ExternalDataFile, saveModel, type GraphBuilder, type SavedModel } from '../onnx/index.js';
import { describeLinearScheme, LINEAR_SCHEME_KEY, type LinearScheme } from '../onnx/linear-scheme.js';
import { VITGRAPH_VERSION } from '../version.js';
import { bucket } from '../runtime/buckets.js';
import { checkpointParameters, openModelDirectory, type ModelDirectory } from './model-directory.js';
import { fileEntry, FORMAT, FORMAT_VERSION, MANIFEST, type GraphEntry, type Manifest } from '../runtime/package.js';

export const DEFAULT_OPSET = 21;
export const MIN_OPSET = 20; // Gelu-20
export const MAX_OPSET = 24;
/** Buckets of a package when none are given: 256², 512², 1024² px images (at 16-px patches). */
export const DEFAULT_BUCKETS: readonly number[] = [256, 1024, 4096];

export interface ExportOptions {
  /** Hugging Face model directory: config.json + model.safetensors (or a sharded index). */
  model: string;
  /** A `.onnx` file, or a package directory. */
  out: string;
  /** For a .onnx output: 'dynamic' (default) or 'padded' (needs exactly one bucket size). */
  variant?: 'dynamic' | 'padded' | undefined;
  /** Padded bucket sizes in patches (multiples of the merge unit). */
  maxPatches?: readonly number[] | undefined;
  /** grid_thw rows per bucket (default: maxPatches / 64). */
  maxItems?: number | undefined;
  /** 'bfloat16' needs device 'cuda' (ONNX Runtime's CPU provider has almost no bf16 kernels). */
  dtype?: Precision | undefined;
  /**
   * The device the graphs are for (default 'cpu', runs anywhere). 'cuda' allows bfloat16 and keeps
   * float32 one-item buckets on the bias form ORT's CUDA provider runs memory-efficiently;
   * recorded in the I/O contract, and refused on other devices when loaded.
   */
  device?: Device | undefined;
  /** Replaces the dtype's Linear scheme (int8 / int4 only): for studies such as bench/quant-sensitivity.ts. */
  linear?: LinearScheme | undefined;
  opset?: number | undefined;
  attention?: 'looped' | 'dense' | undefined;
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
  /** The tower's descriptor id. */
  readonly model: string;
}

interface Plan {
  readonly source: ModelDirectory;
  readonly dtype: Precision;
  readonly device: Device;
  readonly linear: LinearScheme;
  readonly opset: number;
  readonly io: EncoderIO;
}

export async function exportModel(models: ModelRegistry, options: ExportOptions): Promise<ExportResult> {
  if (typeof options !== 'object' || options === null) throw invalidArgument('export options', 'an object with model and out', typeof options);
  requirePath(options.model, 'model');
  requirePath(options.out, 'out');
  const opset = checkOpset(options.opset ?? DEFAULT_OPSET);
  const isFile = options.out.endsWith('.onnx');
  const dtype = options.dtype ?? 'float32';
  if (!isPrecision(dtype)) throw invalidArgument('dtype', PRECISIONS.join(', '), dtype);
  const device = options.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw invalidArgument('device', '"cpu" or "cuda"', device);
  if (dtype === 'bfloat16' && device !== 'cuda') {
    throw unsupported("dtype bfloat16 for device cpu: ONNX Runtime's CPU provider has no bfloat16 kernels for most of the tower", {
      fixes: [{ option: 'device', action: 'pass', value: 'cuda' }],
      otherwise: 'use float16 or float32 on CPU',
    });
  }
  if (device === 'cuda' && quantizationOf(dtype) !== undefined) {
    throw unsupported(`dtype ${dtype} for device cuda: the quantized Linear kernels are CPU ones`, {
      fixes: [{ option: 'dtype', action: 'pass', value: 'float16' }],
      otherwise: 'or bfloat16 / float32 on CUDA',
    });
  }
  await removeStaleTemporaries(options.out);
  // Before any work: an output vitgraph did not write is never replaced, --force or not.
  await checkExportOutput(options.out, isFile, options.overwrite === true);
  const source = await openModelDirectory(models, options.model);
  // On CUDA a bucket holds one item unless asked for more (then slotted: src/contract.ts slotPatches).
  const maxItems = options.maxItems ?? (device === 'cuda' ? 1 : undefined);
  const buckets = (options.maxPatches ?? (isFile ? [] : DEFAULT_BUCKETS)).map((n) => bucket(n, maxItems, source.config.mergeUnit));
  for (const b of buckets) {
    const slot = slotPatches(b, device);
    if (slot !== undefined && (!Number.isInteger(slot) || slot % source.config.mergeUnit !== 0)) {
      throw invalidArgument(
        'maxPatches',
        `for a CUDA bucket of ${b.maxItems} items, a multiple of ${b.maxItems} × ${source.config.mergeUnit} (one slot of whole merge units per item)`,
        b.maxPatches,
        `e.g. ${b.maxItems * source.config.mergeUnit * Math.max(1, Math.round(b.maxPatches / (b.maxItems * source.config.mergeUnit)))}`,
      );
    }
  }
  if (isFile) checkFileVariant(options, buckets);
  if (options.linear && dtype !== 'int8' && dtype !== 'int4') throw invalidArgument('linear', 'a Linear scheme only with dtype int8 or int4', dtype);
  const linear = options.linear ?? PRECISION[dtype].linear;
  const io = encoderIO(source.config, source.model.outputs(source.config), dtype, await processorOf(source), device);
  const plan: Plan = { source, dtype, device, linear, opset, io };
  return isFile ? exportFile(plan, options, buckets[0]) : exportPackage(plan, options, buckets);
}

/** The family's processor defaults overridden by the checkpoint's preprocessor_config.json, checked against the tower. */
async function processorOf(source: ModelDirectory): Promise<ProcessorParams> {
  const processor = await loadProcessor(source.dir, source.model.processorDefaults(source.config));
  const { patchSize, temporalPatchSize, spatialMergeSize } = source.config;
  for (const [field, value, tower] of [
    ['patch_size', processor.patchSize, patchSize],
    ['temporal_patch_size', processor.temporalPatchSize, temporalPatchSize],
    ['merge_size', processor.mergeSize, spatialMergeSize],
  ] as const) {
    if (value !== tower) throw invalidConfig(`preprocessor_config.json ${field}`, `expected ${tower} as in config.json, got ${value}`, 'The two files describe different models');
  }
  return processor;
}

function checkFileVariant(options: ExportOptions, buckets: readonly Bucket[]): void {
  const variant = options.variant ?? 'dynamic';
  if (variant === 'padded' && buckets.length !== 1) {
    throw invalidArgument(
      'maxPatches',
      'exactly one bucket size for a padded .onnx file',
      buckets.length ? buckets.map((b) => b.maxPatches).join(',') : 'none',
      'Give one size, or export a package directory for several',
    );
  }
  if (variant === 'dynamic' && buckets.length) {
    throw invalidArgument('maxPatches', 'no bucket sizes for a dynamic .onnx file', buckets.map((b) => b.maxPatches).join(','), {
      fixes: [{ option: 'variant', action: 'pass', value: 'padded' }],
      otherwise: 'export a package directory',
    });
  }
}

async function exportFile(plan: Plan, options: ExportOptions, padded: Bucket | undefined): Promise<ExportResult> {
  const { graph, finish } = build(plan, padded, options.attention);
  finish();
  const saved = await save(graph, options.out, plan, padded, {
    ...(options.externalData ? { externalData: options.externalData } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { files: [saved.path, ...(saved.externalDataPath ? [saved.externalDataPath] : [])], graphs: 1, parameters: countParameters(graph), model: plan.source.model.id };
}

async function exportPackage(plan: Plan, options: ExportOptions, buckets: readonly Bucket[]): Promise<ExportResult> {
  const out = options.out;
  const staging = temporaryPath(out);
  await onFileSystem(out, 'write', async () => {
    await mkdir(dirname(out), { recursive: true });
    await mkdir(staging);
  });
  try {
    const { manifest, parameters } = await writePackage(staging, plan, options, buckets);
    await swapInto(staging, out);
    const files = [MANIFEST, ...manifest.graphs.map((g) => g.file), ...(manifest.weights ? [manifest.weights.file] : [])].map((f) => join(out, f));
    return { files, graphs: manifest.graphs.length, parameters, model: plan.source.model.id };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    // Name the user's path, not the staging directory (ENOSPC, EACCES, ...).
    throw error instanceof VitgraphError && error.code === 'file_system' ? fileSystemError(error.cause, out, 'write') : asFileSystemError(error, out, 'write');
  }
}

/** Writes every graph, the shared weights and, last, the manifest into `dir`. */
async function writePackage(dir: string, plan: Plan, options: ExportOptions, buckets: readonly Bucket[]): Promise<{ manifest: Manifest; parameters: number }> {
  const weights = await ExternalDataFile.create(join(dir, 'weights.data'));
  const entries: { file: string; variant: Bucket | undefined }[] = [];
  let parameters = 0;
  try {
    for (const variant of [undefined, ...buckets]) {
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
    model: plan.source.model.id,
    dtype: plan.dtype,
    opset: plan.opset,
    config: plan.source.model.configToJson(plan.source.config),
    io: plan.io,
    weights: await fileEntry(dir, 'weights.data'),
    graphs,
  };
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`); // inside the staging directory: the swap makes it atomic
  return { manifest, parameters };
}

/**
 * Moves the finished package `staging` to `out`. A new path is one atomic rename. An existing
 * package is first renamed aside, then replaced, then removed: at every instant `out` is the
 * complete old package, absent (between the two renames), or the complete new one — never a mix
 * of the two. A kill between the renames leaves the old package beside `out`; the next export
 * puts it back before it starts.
 */
async function swapInto(staging: string, out: string): Promise<void> {
  const existing = await lstat(out).catch(() => undefined);
  if (!existing) return rename(staging, out);
  const aside = temporaryPath(out, 'old');
  await rename(out, aside);
  try {
    await rename(staging, out);
  } catch (error) {
    await rename(aside, out).catch(() => undefined); // put the old package back
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Removes temporaries that killed exports to `out` (and its external data) left behind: vitgraph's own names only, and only when their process is gone. */
export async function removeStaleTemporaries(out: string): Promise<string[]> {
  const dir = dirname(out);
  const names = new Set([basename(out), `${basename(out)}.data`]);
  const entries = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const entry of entries) {
    const temporary = parseTemporary(entry);
    if (!temporary || !names.has(temporary.name) || processAlive(temporary.pid)) continue;
    // A swap killed between its renames left the old package aside and nothing at `out`: put it back.
    if (temporary.kind === 'old' && temporary.name === basename(out) && !(await lstat(out).catch(() => undefined))) {
      await rename(join(dir, entry), out);
      continue;
    }
    await rm(join(dir, entry), { recursive: true, force: true });
    removed.push(join(dir, entry));
  }
  return removed;
}

function build(plan: Plan, padded: Bucket | undefined, attention: 'looped' | 'dense' | undefined): { graph: GraphBuilder; finish: () => void } {
  const { model, config, checkpoint } = plan.source;
  const { float } = PRECISION[plan.dtype];
  const { linear } = plan;
  const params = checkpointParameters(checkpoint, float);
  const options = { dtype: float, linear, device: plan.device, ...(attention ? { attention } : {}) };
  const graph = padded ? model.buildPadded(config, params, padded, options) : model.buildDynamic(config, params, options);
  return { graph, finish: () => params.finish() };
}

/** Writes a built graph with vitgraph's metadata_props. */
function save(graph: GraphBuilder, out: string, plan: Plan, padded: Bucket | undefined, options: Pick<Parameters<typeof saveModel>[2], 'externalData' | 'onProgress'>): Promise<SavedModel> {
  const { model, config, rawConfig } = plan.source;
  return saveModel(graph, out, {
    opset: plan.opset,
    producerVersion: VITGRAPH_VERSION,
    docString: `${model.title} built by vitgraph`,
    metadata: {
      'vitgraph.version': VITGRAPH_VERSION,
      'vitgraph.model': model.id,
      'vitgraph.variant': padded ? 'padded' : 'dynamic',
      ...(padded ? { 'vitgraph.max_patches': String(padded.maxPatches), 'vitgraph.max_items': String(padded.maxItems) } : {}),
      'vitgraph.dtype': plan.dtype,
      'vitgraph.device': plan.device,
      [LINEAR_SCHEME_KEY]: describeLinearScheme(plan.linear),
      'vitgraph.io': JSON.stringify(plan.io),
      'vitgraph.vision_config': JSON.stringify((model as ModelDescriptor<TowerConfig>).configToJson(config)),
      'vitgraph.source_config': JSON.stringify(rawConfig),
    },
    ...options,
  });
}

export function checkOpset(opset: number): number {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw invalidArgument('opset', `an integer in ${MIN_OPSET}..${MAX_OPSET} (Gelu needs opset 20)`, opset);
  }
  return opset;
}

const countParameters = (graph: GraphBuilder): number => graph.initializers.filter((i) => i.kind === 'param').reduce((sum, i) => sum + i.shape.reduce((a, b) => a * b, 1), 0);
