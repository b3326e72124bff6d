// `VisionEncoder`: images (or frame lists, or raw pixel_values) in, Qwen3-VL visual tokens out.
// Loads a .onnx file, an exported package, or a Hugging Face checkpoint (exported once into a
// cache directory); with no model it uses the tiny tower that ships with vitgraph.

import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidArgument, notFound } from '../../src/errors.js';
import { readRegularFile, requirePath } from '../../src/fs/confined.js';
import { preprocess, type PreprocessOptions, type VisualItem } from '../../src/image/index.js';
import { resolveBackend, type BackendOptions } from '../../src/runtime/backend.js';
import type { Runner } from '../../src/runtime/runner.js';
import { hostTensor, type HostTensor } from '../../src/tensor.js';
import { VITGRAPH_VERSION } from '../../src/version.js';
import { DEFAULT_BUCKETS, exportModel } from './export.js';
import { MANIFEST } from './package.js';
import { EncoderRuntime, type EncoderOutputs } from './runtime.js';

/** The tiny random-weight tower shipped with vitgraph: shows the pipeline, means nothing. */
export const EMBEDDED_MODEL = fileURLToPath(new URL('../../../fixtures/encoder/tiny', import.meta.url));

export interface VisionEncoderOptions extends PreprocessOptions, BackendOptions {
  /** For a package: the dynamic graph (CPU default) or the padded buckets (the native backend's). */
  graphs?: 'dynamic' | 'buckets';
  /** Bucket sizes (patches) when a checkpoint is exported on first use for buckets (default 256, 1024, 4096). */
  buckets?: number[];
  /** Open every bucket at load and run it 3 times (on CUDA: capture its graph) so the first request is fast. */
  warmup?: boolean;
  /** Where checkpoints are exported on first use (default $VITGRAPH_CACHE or ~/.cache/vitgraph). */
  cacheDir?: string;
  /** Creates the runner for each graph file (the native backend plugs in here). */
  createRunner?: (path: string) => Promise<Runner>;
  /** Progress while a checkpoint is exported on first load. */
  onExportProgress?: (done: number, total: number) => void;
}

/** Already-preprocessed input: several items at once, one grid row each. */
export interface RawPixels {
  pixelValues: Float32Array | HostTensor; // [N, 1536]
  gridThw: BigInt64Array | readonly (readonly [number, number, number])[] | HostTensor; // [I, 3]
}

export type EncodeInput = VisualItem | RawPixels;

export interface EncodedItem {
  readonly kind: 'image' | 'video' | 'pixels';
  readonly gridThw: [number, number, number];
  /** Visual tokens: t·h·w/4. */
  readonly tokens: number;
  /** [tokens, out_hidden_size] */
  readonly embeds: Float32Array;
  /** One [tokens, out_hidden_size] per deepstack merger. */
  readonly deepstack: Float32Array[];
}

export interface EncodeResult {
  readonly items: EncodedItem[];
  /** All items' tokens concatenated: [T, O]. */
  readonly imageEmbeds: HostTensor<'float32'>;
  /** [K, T, O]. */
  readonly deepstackEmbeds: HostTensor<'float32'>;
  /** [I, 3]. */
  readonly gridThw: HostTensor<'int64'>;
  readonly ms: { preprocess: number; encode: number };
}

export class VisionEncoder {
  private constructor(
    private readonly runtime: EncoderRuntime,
    readonly modelPath: string,
    private readonly options: VisionEncoderOptions,
  ) {}

  /**
   * `model`: a .onnx file, a package directory (vitgraph.json), or a Hugging Face checkpoint
   * directory (config.json + safetensors, exported on first use and cached). Omitted: the
   * embedded tiny tower.
   */
  static async load(model: string = EMBEDDED_MODEL, options: VisionEncoderOptions = {}): Promise<VisionEncoder> {
    const path = await resolveModel(requirePath(model, 'model'), options);
    const runtime = await EncoderRuntime.open(path, options);
    try {
      if (options.warmup) await runtime.warmup();
    } catch (error) {
      await runtime.close();
      throw error;
    }
    return new VisionEncoder(runtime, path, options);
  }

  /** Preprocesses `inputs` (in order) and encodes them in one request. Safe to call concurrently. */
  async encode(inputs: readonly EncodeInput[], options: PreprocessOptions = {}): Promise<EncodeResult> {
    if (!Array.isArray(inputs)) throw invalidArgument('inputs', 'an array of images, videos or pixel sets', typeof inputs);
    if (inputs.length === 0) throw invalidArgument('inputs', 'at least one image, video or pixel set', 'an empty list');
    const start = performance.now();
    const { pixelValues, grid, kinds } = await this.prepare(inputs, { ...this.options, ...options });
    const rows = pixelValues.length / this.runtime.patchDim;
    const gridThw = hostTensor('int64', [grid.length, 3], BigInt64Array.from(grid.flat().map(BigInt)));
    const encodeStart = performance.now();
    const out = await this.runtime.run(hostTensor('float32', [rows, this.runtime.patchDim], pixelValues), gridThw);
    const done = performance.now();
    return { items: splitItems(out, grid, kinds, this.runtime.mergeUnit), ...out, gridThw, ms: { preprocess: encodeStart - start, encode: done - encodeStart } };
  }

  /** All inputs' pixel rows in order, with one grid row (and kind) per item. */
  private async prepare(inputs: readonly EncodeInput[], options: PreprocessOptions): Promise<{ pixelValues: Float32Array; grid: [number, number, number][]; kinds: EncodedItem['kind'][] }> {
    const visual = inputs.filter((i): i is VisualItem => !isRawPixels(i));
    const pre = visual.length ? await preprocess(visual, options) : undefined;
    if (pre && visual.length === inputs.length) {
      // Images and videos only: preprocess already laid out every row in order; no copy.
      return { pixelValues: pre.pixelValues, grid: pre.items.map((i) => i.gridThw), kinds: pre.items.map((i) => i.kind) };
    }
    let row = 0;
    let next = 0;
    const pieces = inputs.map((input): { pixels: Float32Array; grid: [number, number, number][]; kind: EncodedItem['kind'] } => {
      if (isRawPixels(input)) return { ...rawPieces(input, this.runtime.patchDim), kind: 'pixels' };
      const item = pre!.items[next++]!;
      const pixels = pre!.pixelValues.subarray(row * this.runtime.patchDim, (row + item.rows) * this.runtime.patchDim);
      row += item.rows;
      return { pixels, grid: [item.gridThw], kind: item.kind };
    });
    const pixelValues = new Float32Array(pieces.reduce((n, p) => n + p.pixels.length, 0));
    let at = 0;
    for (const p of pieces) {
      pixelValues.set(p.pixels, at);
      at += p.pixels.length;
    }
    return { pixelValues, grid: pieces.flatMap((p) => p.grid), kinds: pieces.flatMap((p) => p.grid.map(() => p.kind)) };
  }

  async close(): Promise<void> {
    await this.runtime.close();
  }
}

function isRawPixels(input: EncodeInput): input is RawPixels {
  return typeof input === 'object' && input !== null && 'pixelValues' in input && 'gridThw' in input;
}

function rawPieces(input: RawPixels, patchDim: number): { pixels: Float32Array; grid: [number, number, number][] } {
  const pixels = input.pixelValues instanceof Float32Array ? input.pixelValues : input.pixelValues.data;
  if (!(pixels instanceof Float32Array) || pixels.length % patchDim !== 0) {
    throw invalidArgument('pixelValues', `a Float32Array of [N, ${patchDim}]`, pixels instanceof Float32Array ? `${pixels.length} values` : 'another type');
  }
  const flat = input.gridThw instanceof BigInt64Array ? Array.from(input.gridThw, Number) : 'data' in input.gridThw ? Array.from(input.gridThw.data as BigInt64Array, Number) : input.gridThw.flat();
  if (flat.length % 3 !== 0 || flat.length === 0) throw invalidArgument('gridThw', 'rows of (t, h, w)', `${flat.length} values`);
  return { pixels, grid: Array.from({ length: flat.length / 3 }, (_, i) => flat.slice(3 * i, 3 * i + 3) as [number, number, number]) };
}

function splitItems(out: EncoderOutputs, grid: readonly [number, number, number][], kinds: readonly EncodedItem['kind'][], mergeUnit: number): EncodedItem[] {
  const [total, width] = out.imageEmbeds.shape as [number, number];
  const k = out.deepstackEmbeds.shape[0]!;
  let at = 0;
  return grid.map((g, i) => {
    const tokens = (g[0] * g[1] * g[2]) / mergeUnit;
    const rows = (t: Float32Array, offset: number): Float32Array => t.slice((offset + at) * width, (offset + at + tokens) * width);
    const item: EncodedItem = {
      kind: kinds[i]!,
      gridThw: [...g],
      tokens,
      embeds: rows(out.imageEmbeds.data, 0),
      deepstack: Array.from({ length: k }, (_, j) => rows(out.deepstackEmbeds.data, j * total)),
    };
    at += tokens;
    return item;
  });
}

// ---- model resolution ------------------------------------------------------------------------

async function resolveModel(model: string, options: VisionEncoderOptions): Promise<string> {
  const info = await stat(model).catch(() => undefined);
  if (!info) throw notFound('model', model, 'Pass a .onnx file, an exported package directory, or a Hugging Face checkpoint directory');
  if (!info.isDirectory()) return model;
  const entries = await readdir(model);
  if (entries.includes(MANIFEST)) return model;
  if (!entries.includes('config.json')) {
    throw invalidArgument('model directory', `a package (${MANIFEST}) or a Hugging Face checkpoint (config.json + *.safetensors)`, model);
  }
  return exportCached(model, options);
}

const wantsBuckets = (options: VisionEncoderOptions): boolean => options.graphs === 'buckets' || resolveBackend(options).backend === 'native';

/** Exports a checkpoint into the cache once; later loads reuse it while the checkpoint is unchanged. */
async function exportCached(checkpointDir: string, options: VisionEncoderOptions): Promise<string> {
  const cacheRoot = options.cacheDir ?? process.env.VITGRAPH_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vitgraph');
  const variant = wantsBuckets(options) ? `buckets-${(options.buckets ?? DEFAULT_BUCKETS).join('-')}` : 'dynamic';
  const dir = join(cacheRoot, `${await checkpointKey(checkpointDir)}-${variant}`);
  if (await stat(join(dir, MANIFEST)).catch(() => undefined)) return dir;
  await mkdir(cacheRoot, { recursive: true });
  const tmp = `${dir}.${randomUUID()}.tmp`; // unique even for concurrent loads in one process
  try {
    await exportModel({
      model: checkpointDir,
      out: tmp,
      maxPatches: wantsBuckets(options) ? options.buckets : [],
      ...(options.onExportProgress ? { onProgress: options.onExportProgress } : {}),
    });
    await rename(tmp, dir).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error; // another process won the race
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  return dir;
}

/** Identifies a checkpoint by its config and its weight files' names, sizes and headers. */
async function checkpointKey(dir: string): Promise<string> {
  const hash = createHash('sha256').update(VITGRAPH_VERSION).update(await readRegularFile(join(dir, 'config.json'), 'config.json'));
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.safetensors') || n.endsWith('.index.json')).sort()) {
    const path = join(dir, name);
    const { size, mtimeMs } = await stat(path);
    hash.update(`${name}:${size}:${mtimeMs}`);
  }
  return `${hash.update(resolve(dir)).digest('hex').slice(0, 16)}`;
}
