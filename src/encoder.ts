// `VisionEncoder`: images (or frame lists, or raw pixel_values) in, visual tokens out, for any tower
// of the registry. Loads a .onnx file, an exported package, or a Hugging Face checkpoint (exported
// once into the cache); with no model it uses the tiny Qwen3-VL tower that ships with vitgraph.

import { readdir, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkModelOptions } from './encoder-options.js';
import { closedError, invalidArgument, notFound } from './errors.js';
import { requirePath } from './fs/confined.js';
import { resolveHubModel } from './fs/hub.js';
import { fileSystemError } from './fs/system-errors.js';
import { preprocess, type PreprocessOptions, type ProcessorParams, type VisualItem } from './image/index.js';
import type { Precision } from './contract.js';
import type { ModelRegistry, OutputSpec } from './model.js';
import { resolveBackend, useBuckets, type BackendOptions } from './runtime/backend.js';
import { checkCudaUsable } from './runtime/cuda-check.js';
import { splitTokens, type EncoderOutputs } from './runtime/buckets.js';
import { cachedExport } from './export/cache.js';
import { EncoderRuntime } from './runtime/encoder-runtime.js';
import type { EncoderIO } from './contract.js';
import { DEFAULT_BUCKETS } from './export/export.js';
import { MANIFEST } from './runtime/package.js';
import type { Runner } from './runtime/runner.js';
import { hostTensor, type HostTensor } from './tensor.js';

/** The tiny random-weight tower shipped with vitgraph: shows the pipeline, means nothing. */
export const EMBEDDED_MODEL = fileURLToPath(new URL('../../fixtures/encoder/tiny', import.meta.url));

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
  /** Progress while a checkpoint's weights are hashed for its cache key (once per file version; bytes done, in all). */
  onHashProgress?: (done: number, total: number) => void;
  /** For a checkpoint exported on first use: weight precision, float32 (default), float16, int8 or int4 (cached per dtype). */
  dtype?: Precision;
  /** The towers a checkpoint directory can be exported with ('vitgraph' passes its registry). */
  models?: ModelRegistry;
}

/** Already-preprocessed input: several items at once, one grid row each. */
export interface RawPixels {
  pixelValues: Float32Array | HostTensor; // [N, patchDim]
  gridThw: BigInt64Array | readonly (readonly [number, number, number])[] | HostTensor; // [I, 3]
}

export type EncodeInput = VisualItem | RawPixels;

export interface EncodedItem {
  readonly kind: 'image' | 'video' | 'pixels';
  readonly gridThw: [number, number, number];
  /** Visual tokens: t·h·w / merge unit. */
  readonly tokens: number;
  /** This item's tokens of every graph output, e.g. image_embeds [tokens, O] (Qwen3-VL adds deepstack_embeds [K, tokens, O]). */
  readonly outputs: EncoderOutputs;
}

export interface EncodeResult {
  readonly items: EncodedItem[];
  /** Every graph output with all items' tokens concatenated along its token axis. */
  readonly outputs: EncoderOutputs;
  /** [I, 3]. */
  readonly gridThw: HostTensor<'int64'>;
  readonly ms: { preprocess: number; encode: number };
}

export class VisionEncoder {
  private closed = false;

  protected constructor(
    private readonly runtime: EncoderRuntime,
    readonly modelPath: string,
    private readonly options: VisionEncoderOptions,
    /**
     * What to record as the model in outputs and logs: the path as the caller gave it, or, for a
     * checkpoint exported through the cache, `vitgraph-cache:<content key>-<dtype>`. Never the cache's
     * absolute path, which would put the user's home directory into every file written.
     */
    readonly modelId: string = modelPath,
  ) {}

  /** The graph outputs every result carries, with their token axes. */
  get outputs(): readonly OutputSpec[] {
    return this.runtime.outputs;
  }

  /** The graphs' recorded I/O contract (pixel row width, merge unit, processor). */
  get io(): EncoderIO {
    return this.runtime.io;
  }

  /** How images are preprocessed for this model: recorded at export; a foreign graph gets the registered family whose pixel rows fit. */
  get processor(): ProcessorParams {
    const processor = this.runtime.io.processor ?? this.options.models?.processorFor(this.runtime.patchDim);
    if (!processor) {
      const widths = this.options.models ? ` or pixel rows of ${this.options.models.rowWidths()} columns` : " (or VisionEncoder from 'vitgraph', which knows every family's processor)";
      throw invalidArgument('model processor', `a graph exported by vitgraph${widths}`, `${this.runtime.patchDim} columns`, 'Pass preprocessed { pixelValues, gridThw } instead of images');
    }
    return processor;
  }

  /**
   * `model`: a .onnx file, a package directory (vitgraph.json), or a Hugging Face checkpoint
   * directory (config.json + safetensors, exported on first use and cached). Omitted: the
   * embedded tiny tower.
   */
  static async load(model: string = EMBEDDED_MODEL, options: VisionEncoderOptions = {}): Promise<VisionEncoder> {
    await checkCudaUsable(options); // before a first-use export, which can take minutes
    const path = await resolveModel(requirePath(model, 'model'), options);
    const runtime = await EncoderRuntime.open(path, options);
    try {
      if (options.warmup) await runtime.warmup();
    } catch (error) {
      await runtime.close();
      throw error;
    }
    return new VisionEncoder(runtime, path, options, path === model ? model : `vitgraph-cache:${basename(path)}`);
  }

  /** Preprocesses `inputs` (in order) and encodes them in one request. Safe to call concurrently. */
  async encode(inputs: readonly EncodeInput[], options: PreprocessOptions = {}): Promise<EncodeResult> {
    if (this.closed) throw closedError('encoder');
    if (!Array.isArray(inputs)) throw invalidArgument('inputs', 'an array of images, videos or pixel sets', typeof inputs);
    if (inputs.length === 0) throw invalidArgument('inputs', 'at least one image, video or pixel set', 'an empty list');
    const start = performance.now();
    const { pixelValues, grid, kinds } = await this.prepare(inputs, { processor: this.processor, ...this.options, ...options });
    const rows = pixelValues.length / this.runtime.patchDim;
    const gridThw = hostTensor('int64', [grid.length, 3], BigInt64Array.from(grid.flat().map(BigInt)));
    const encodeStart = performance.now();
    const out = await this.runtime.run(hostTensor('float32', [rows, this.runtime.patchDim], pixelValues), gridThw);
    const done = performance.now();
    const tokens = grid.map(([t, h, w]) => (t * h * w) / this.runtime.mergeUnit);
    const items = splitTokens(out, this.runtime.outputs, tokens).map((outputs, i): EncodedItem => ({ kind: kinds[i]!, gridThw: [...grid[i]!], tokens: tokens[i]!, outputs }));
    return { items, outputs: out, gridThw, ms: { preprocess: encodeStart - start, encode: done - encodeStart } };
  }

  /** All inputs' pixel rows in order, with one grid row (and kind) per item. */
  private async prepare(
    inputs: readonly EncodeInput[],
    options: PreprocessOptions & { processor: ProcessorParams },
  ): Promise<{ pixelValues: Float32Array; grid: [number, number, number][]; kinds: EncodedItem['kind'][] }> {
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

  /** Closes the graphs' sessions: calls in progress finish or reject, later calls reject with code 'closed'. */
  async close(): Promise<void> {
    this.closed = true;
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

// ---- model resolution ------------------------------------------------------------------------

async function resolveModel(model: string, options: VisionEncoderOptions): Promise<string> {
  if (typeof model !== 'string' || model === '') throw invalidArgument('model', 'a .onnx file, package directory or checkpoint directory path', model);
  model = await resolveHubModel(model); // a hub repository folder (or repo@revision) → its snapshot
  const info = await stat(model).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fileSystemError(error, model, 'read'); // ELOOP, EACCES
  });
  if (!info) throw notFound('model', model, 'Pass a .onnx file, an exported package directory, or a Hugging Face checkpoint directory (or hub repository folder)');
  if (!info.isDirectory()) {
    checkModelOptions('onnx', options);
    return model;
  }
  const entries = await readdir(model);
  if (entries.includes(MANIFEST)) {
    checkModelOptions('package', options);
    return model;
  }
  if (!entries.includes('config.json')) {
    throw invalidArgument('model directory', `a package (${MANIFEST}) or a Hugging Face checkpoint (config.json + *.safetensors)`, model);
  }
  if (!options.models)
    throw invalidArgument('models', 'a model registry to export a checkpoint with', undefined, "Import VisionEncoder from 'vitgraph' (it carries the registry), or pass an exported package");
  const buckets = useBuckets(options) ? (options.buckets ?? DEFAULT_BUCKETS) : [];
  const device = resolveBackend(options).device;
  return cachedExport(options.models, model, { cacheDir: options.cacheDir, dtype: options.dtype, device, buckets, onProgress: options.onExportProgress, onHashProgress: options.onHashProgress });
}
