// `vitgraph export`: a Hugging Face checkpoint → ONNX: one .onnx file (dynamic or a single
// padded bucket), or a package directory with the dynamic graph, every bucket graph and one
// shared weights file. The tower comes from the registry, detected from config.json.
//
// Writes never leave a half-written output at the destination: a .onnx file (and its external
// data) is written to temporaries renamed into place; a package is written whole into a sibling
// temporary directory and swapped in (see `swapInto`). Temporaries of killed exports are removed
// by the next export to the same place.

import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { invalidArgument, unsupported } from '../errors.js';
import { requirePath } from '../fs/confined.js';
import { invalidConfig } from '../errors.js';
import { loadProcessor, type ProcessorParams } from '../image/processor.js';
import type { Bucket, ExportDType, ModelDescriptor, ModelRegistry, TowerConfig } from '../model.js';
import { ExternalDataFile, saveModel, type GraphBuilder, type SavedModel } from '../onnx/index.js';
import { describeLinearScheme, FLOAT_LINEAR, LINEAR_SCHEME_KEY, type LayerScheme, type LinearScheme } from '../onnx/linear-scheme.js';
import { VITGRAPH_VERSION } from '../version.js';
import { bucket } from './buckets.js';
import { checkpointParameters, openModelDirectory, type ModelDirectory } from './checkpoint.js';
import { encoderIO, type EncoderIO } from './io.js';
import { fileEntry, FORMAT, FORMAT_VERSION, MANIFEST, type GraphEntry, type Manifest } from './package.js';

export const DEFAULT_OPSET = 21;
export const MIN_OPSET = 20; // Gelu-20
export const MAX_OPSET = 24;
/** Buckets of a package when none are given: 256², 512², 1024² px images (at 16-px patches). */
export const DEFAULT_BUCKETS: readonly number[] = [256, 1024, 4096];

/**
 * int8, chosen by measurement on the 2B-shaped tower (bench/quant-kernels.md for the kernels,
 * bench/quant-sensitivity.md for where the error comes from): int8 weights per output channel with
 * activations quantized per row (per token) at run time through MatMulIntegerToFloat — symmetric
 * rows for normed inputs (qkv, proj, fc1: as accurate, one rescale fewer), asymmetric for GELU
 * outputs (fc2); the patch mergers, whose error reaches the output directly, with two passes
 * (≈16-bit activations); and the first two transformer blocks, the most sensitive (each alone
 * carries 3–5× a late block's error), float32. Every registered tower names its blocks `blocks.<i>`.
 */
function int8Linear(): LinearScheme {
  const rows = (activations: 'symmetric' | 'asymmetric', passes: 1 | 2 = 1): LayerScheme => ({ kind: 'row-int8', activations, kernel: 'matmul-integer-to-float', ...(passes === 2 ? { passes } : {}) });
  const roles = {
    'attention.qkv': rows('symmetric'),
    'attention.out': rows('symmetric'),
    'mlp.in': rows('symmetric'),
    'mlp.out': rows('asymmetric'),
    'merger.in': rows('asymmetric', 2),
    'merger.out': rows('asymmetric', 2),
  };
  return { kind: 'by-role', roles, sensitive: { prefixes: ['blocks.0.', 'blocks.1.'], scheme: FLOAT_LINEAR } };
}

/** int4: 4-bit blocks for the transformer blocks' Linears, float patch mergers. */
function int4Linear(): LinearScheme {
  const blocks: LayerScheme = { kind: 'nbits', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 4 };
  return { kind: 'by-role', roles: { 'attention.qkv': blocks, 'attention.out': blocks, 'mlp.in': blocks, 'mlp.out': blocks, 'merger.in': FLOAT_LINEAR, 'merger.out': FLOAT_LINEAR } };
}

/**
 * What each export dtype stores. int8: see `int8Linear`. int4: 4-bit blocks of 32 with zero points
 * via MatMulNBits (accuracy_level 4 = int8 compute) in the blocks, float mergers: less accurate and
 * no faster than int8 (bench/quant-results.md). Patch embedding, positions, norms, rotary, softmax
 * and attention stay float32.
 */
export const PRECISION: Readonly<Record<ExportDType, { readonly float: 'float32' | 'float16'; readonly linear: LinearScheme }>> = {
  float32: { float: 'float32', linear: FLOAT_LINEAR },
  float16: { float: 'float16', linear: FLOAT_LINEAR },
  int8: { float: 'float32', linear: int8Linear() },
  int4: { float: 'float32', linear: int4Linear() },
};

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
  /** 'bfloat16' is refused with the reason (no bf16 kernels for Gelu / MultiHeadAttention in ORT). */
  dtype?: ExportDType | 'bfloat16' | undefined;
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
  readonly dtype: ExportDType;
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
  if (options.dtype === 'bfloat16') {
    throw unsupported(
      'dtype bfloat16: ONNX Runtime has no bfloat16 kernels for Gelu-20 or com.microsoft.MultiHeadAttention (CUDA or CPU)',
      'Use float16 for reduced precision (same memory, fp32 statistics), or float32',
    );
  }
  const dtype = options.dtype ?? 'float32';
  if (!Object.hasOwn(PRECISION, dtype)) throw invalidArgument('dtype', Object.keys(PRECISION).join(', '), dtype);
  await removeStaleTemporaries(options.out);
  if (!options.overwrite) await refuseExisting(options.out, isFile);
  const source = await openModelDirectory(models, options.model);
  const buckets = (options.maxPatches ?? (isFile ? [] : DEFAULT_BUCKETS)).map((n) => bucket(n, options.maxItems, source.config.mergeUnit));
  if (isFile) checkFileVariant(options, buckets);
  if (options.linear && dtype !== 'int8' && dtype !== 'int4') throw invalidArgument('linear', 'a Linear scheme only with dtype int8 or int4', dtype);
  const linear = options.linear ?? PRECISION[dtype].linear;
  const io = encoderIO(source.config, source.model.outputs(source.config), await processorOf(source), linear === FLOAT_LINEAR ? undefined : describeLinearScheme(linear));
  const plan: Plan = { source, dtype, linear, opset, io };
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
    throw invalidArgument('maxPatches', 'exactly one bucket size for a padded .onnx file', buckets.length ? buckets.map((b) => b.maxPatches).join(',') : 'none', 'Give one size, or export a package directory for several');
  }
  if (variant === 'dynamic' && buckets.length) {
    throw invalidArgument('maxPatches', 'no bucket sizes for a dynamic .onnx file', buckets.map((b) => b.maxPatches).join(','), { fixes: [{ option: 'variant', action: 'pass', value: 'padded' }], otherwise: 'export a package directory' });
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
  const staging = temporarySibling(out);
  await mkdir(dirname(out), { recursive: true });
  await mkdir(staging);
  try {
    const { manifest, parameters } = await writePackage(staging, plan, options, buckets);
    await swapInto(staging, out);
    const files = [MANIFEST, ...manifest.graphs.map((g) => g.file), ...(manifest.weights ? [manifest.weights.file] : [])].map((f) => join(out, f));
    return { files, graphs: manifest.graphs.length, parameters, model: plan.source.model.id };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
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
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, parameters };
}

const TEMP_MARK = '.vitgraph-tmp-';
const OLD_MARK = '.vitgraph-old-';

/** `<dir>/.<name>.vitgraph-tmp-<pid>-<uuid>`: beside the destination, so renames stay on one file system. */
function temporarySibling(path: string, mark = TEMP_MARK): string {
  return join(dirname(path), `.${basename(path)}${mark}${process.pid}-${randomUUID().slice(0, 8)}`);
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
  const aside = temporarySibling(out, OLD_MARK);
  await rename(out, aside);
  try {
    await rename(staging, out);
  } catch (error) {
    await rename(aside, out).catch(() => undefined); // put the old package back
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Removes temporaries that killed exports to `out` left behind (their process is gone). */
export async function removeStaleTemporaries(out: string): Promise<string[]> {
  const dir = dirname(out);
  const name = basename(out);
  const entries = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const entry of entries) {
    const pid = staleOwner(entry, name);
    if (pid === undefined || processAlive(pid)) continue;
    // A swap killed between its renames left the old package aside and nothing at `out`: put it back.
    if (entry.startsWith(`.${name}${OLD_MARK}`) && !(await lstat(out).catch(() => undefined))) {
      await rename(join(dir, entry), out);
      continue;
    }
    await rm(join(dir, entry), { recursive: true, force: true });
    removed.push(join(dir, entry));
  }
  return removed;
}

/** The pid that wrote `entry` if it is a temporary of `name`, else undefined. */
function staleOwner(entry: string, name: string): number | undefined {
  for (const mark of [TEMP_MARK, OLD_MARK]) {
    const prefix = `.${name}${mark}`;
    if (entry.startsWith(prefix)) return Number.parseInt(entry.slice(prefix.length), 10);
  }
  // saveModel's and ExternalDataFile's `<file>.<pid>.tmp` (a .onnx and its external data).
  const match = /^(.*)\.(\d+)\.tmp$/.exec(entry);
  if (match && (match[1] === name || match[1]!.startsWith(`${name}.`) || match[1]!.startsWith(`${name.replace(/\.onnx$/, '')}.`))) return Number(match[2]);
  return undefined;
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function build(plan: Plan, padded: Bucket | undefined, attention: 'looped' | 'dense' | undefined): { graph: GraphBuilder; finish: () => void } {
  const { model, config, checkpoint } = plan.source;
  const { float } = PRECISION[plan.dtype];
  const { linear } = plan;
  const params = checkpointParameters(checkpoint, float);
  const options = { dtype: float, linear, ...(attention ? { attention } : {}) };
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

async function refuseExisting(path: string, isFile: boolean): Promise<void> {
  const exists = isFile
    ? await lstat(path).then(
        () => true,
        () => false,
      )
    : await readdir(path).then(
        (entries) => entries.length > 0,
        () => false,
      );
  if (exists) throw invalidArgument('out', isFile ? 'a file that does not exist yet' : 'a new or empty directory', path, { fixes: [{ option: 'overwrite', action: 'pass' }], then: 'to replace it', otherwise: 'choose another path' });
}

const countParameters = (graph: GraphBuilder): number => graph.initializers.filter((i) => i.kind === 'param').reduce((sum, i) => sum + i.shape.reduce((a, b) => a * b, 1), 0);
