// Images and videos → `pixel_values` [N, 3·Tp·P²] + `grid_thw` [I, 3], the encoder's inputs, for the
// processor a `ProcessorParams` describes (the model's: see modelProcessor). Mirrors transformers
// `Qwen2VLImageProcessor._preprocess` (images), `Qwen3VLVideoProcessor._preprocess` (videos, per-clip
// budget) and `Qwen2VLVideoProcessor` (videos, per-frame budget). Frames are resized as the PIL
// backend does (Pillow bicubic, bit-exact; see resample.ts) for images and videos alike; the
// torchvision backend differs from it by about 0.2 levels on average.
//
// Work is planned from headers first (sizes, grids, rows), the output allocated once, then each
// item decoded, resized and patched straight into its rows: one image, or one temporal group of Tp
// frames of a frame list, is decoded at a time. Exceptions: an animated GIF / WebP is decoded whole,
// and a sharp instance is decoded while planning (only its output shows its size).

import { VitgraphError, invalidArgument } from '../errors.js';
import { decodeFrames, decodePixels, readImageHeader, toRgb, type DecodedFrames, type DecodeOptions, type ImageHeader, type ImageSource, type Pixels } from './decode.js';
import { patchGroup } from './patchify.js';
import { checkProcessor, patchDim, sizeFactor, type ProcessorParams } from './processor.js';
import { resizeBicubic } from './resample.js';
import { checkVideoFrames, smartResize, smartResizeVideo, type Size } from './smart-resize.js';
import { DEFAULT_TARGET_FPS, fpsFromTimestamps, sampleFrameIndices, timestampsFromDelays } from './video.js';

/** A video given as its frames (all the same size), with optional timing for fps sampling. */
export interface VideoFrames {
  frames: ImageSource[];
  /** Seconds at which each frame was taken; gives the source fps when `fps` is absent. */
  timestamps?: number[];
  /** The frames' rate; with it (or timestamps) the clip is sampled down to `targetFps`. */
  fps?: number;
}

/** An image, or a video. An animated GIF / WebP given as an image source is read as a video. */
export type VisualItem = ImageSource | VideoFrames;

export interface PreprocessOptions {
  /** Patch/merge/temporal sizes, budgets, mean/std and arithmetic: the model's (preprocess requires it). */
  processor?: ProcessorParams;
  /** Image pixel budget; overrides the processor's (Qwen3-VL: 65 536 … 16 777 216). */
  minPixels?: number;
  maxPixels?: number;
  /**
   * Video pixel budget; overrides the processor's (Qwen3-VL: 4 096 … 25 165 824 on frames × height ×
   * width; Qwen2-VL: 100 352 … 602 112 per frame).
   */
  videoMinPixels?: number;
  videoMaxPixels?: number;
  /** Decompression-bomb guard: most pixels an input may have (default 268 402 689; Infinity lifts it). */
  maxInputPixels?: number;
  /** Frames per second kept when a video's rate is known (default 2). */
  targetFps?: number;
  /** Render self-contained SVG (refused by default), with no file or network access: see DecodeOptions.allowSvg. */
  allowSvg?: boolean;
}

export interface PreprocessedItem {
  kind: 'image' | 'video';
  /** [t, gh, gw]: temporal groups, patch rows, patch columns. */
  gridThw: [number, number, number];
  /** Rows of `pixelValues` this item owns: t·gh·gw. */
  rows: number;
  /** The size every frame was resized to. */
  resized: { height: number; width: number };
  /** Videos: the input frames kept, in order (before padding to a multiple of Tp). */
  frameIndices?: number[];
}

export interface Preprocessed {
  /** [N, patchDim] row-major, items concatenated in order. */
  pixelValues: Float32Array;
  /** Values per row of `pixelValues`: 3·Tp·P² (1536 for Qwen3-VL, 1176 for Qwen2-VL). */
  patchDim: number;
  /** [I, 3] one (t, gh, gw) per item. */
  gridThw: BigInt64Array;
  items: PreprocessedItem[];
}

interface Plan extends PreprocessedItem {
  /** Decodes, resizes and patches the item into `out` from row `rowOffset`. */
  write: (out: Float32Array, rowOffset: number) => Promise<void>;
}

/** The options with the processor resolved (per-call budgets still override its own). */
interface Settings extends PreprocessOptions {
  processor: ProcessorParams;
}

/**
 * Preprocesses images and videos for the vision encoder (spec §4), as `options.processor` says
 * (P = patch, m = merge, Tp = temporal patch size).
 *
 * Images: smart_resize (factor P·m, the image budget), Pillow bicubic, normalized with the
 * processor's mean/std and arithmetic, repeated to Tp frames, t = 1. Videos: sampled to `targetFps`
 * when their rate is known (otherwise every frame is kept), all frames resized to one size, padded
 * to a multiple of Tp frames by repeating the last.
 *
 * The video budget: `'per-clip'` (Qwen3-VL) is HF's default `cap_pixels_per_frame=False`,
 * t̄·h·w ≤ 25 165 824 over the whole clip, so a short clip keeps near-native resolution (qwen-vl-utils
 * instead caps each frame at 768·32² px; HF plans to switch to that in v5.22). `'per-frame'`
 * (Qwen2-VL) bounds each frame's h·w with the image smart_resize.
 */
export async function preprocess(items: VisualItem[], options: PreprocessOptions & { processor: ProcessorParams }): Promise<Preprocessed> {
  if (!Array.isArray(items)) throw invalidArgument('preprocess items', 'an array of images and videos', typeof items);
  if (options?.processor === undefined) {
    throw invalidArgument('processor', "the model's ProcessorParams (modelProcessor(model), encoder.processor, or a family's, e.g. QWEN3_VL_PROCESSOR from 'vitgraph')", undefined);
  }
  const targetFps = options.targetFps ?? DEFAULT_TARGET_FPS;
  if (!(targetFps > 0) || !Number.isFinite(targetFps)) throw invalidArgument('targetFps', 'a positive finite number', targetFps);
  const settings: Settings = { ...options, processor: checkProcessor(options.processor) };

  const plans: Plan[] = [];
  for (const [index, item] of items.entries()) {
    plans.push(isVideoFrames(item) ? await planFrameList(item, index, settings) : await planSource(item, index, settings));
  }
  const totalRows = plans.reduce((sum, plan) => sum + plan.rows, 0);
  const dim = patchDim(settings.processor);
  const pixelValues = allocateRows(totalRows, dim);
  const gridThw = new BigInt64Array(plans.length * 3);
  let rowOffset = 0;
  for (const [i, plan] of plans.entries()) {
    await plan.write(pixelValues, rowOffset);
    rowOffset += plan.rows;
    plan.gridThw.forEach((v, j) => (gridThw[i * 3 + j] = BigInt(v)));
  }
  return { pixelValues, patchDim: dim, gridThw, items: plans.map(({ write: _write, ...item }) => item) };
}

function isVideoFrames(item: VisualItem): item is VideoFrames {
  return typeof item === 'object' && item !== null && !(item instanceof Uint8Array) && Array.isArray((item as VideoFrames).frames);
}

/** An image source: a still image, or an animated GIF / WebP read as a video. */
async function planSource(source: ImageSource, index: number, settings: Settings): Promise<Plan> {
  const { header, load } = await inspect(source, decodeOptions(settings, `items[${index}]`), true);
  if (header.frames > 1) return planAnimation(header, load, settings);

  const { processor } = settings;
  const size = smartResize(header.height, header.width, {
    factor: sizeFactor(processor),
    minPixels: settings.minPixels ?? processor.minPixels,
    maxPixels: settings.maxPixels ?? processor.maxPixels,
  });
  const gridThw: [number, number, number] = [1, size.height / processor.patchSize, size.width / processor.patchSize];
  return {
    kind: 'image',
    gridThw,
    rows: gridThw[1] * gridThw[2],
    resized: size,
    write: async (out, rowOffset) => {
      const frame = resizeTo((await load()).frames[0]!, size);
      const group = new Array<Uint8Array>(processor.temporalPatchSize).fill(frame.data);
      patchGroup(out, rowOffset, group, size.height, size.width, frame.channels, processor);
    },
  };
}

/** An animated GIF / WebP: all frames decoded at once, sampled by their recorded delays when known. */
function planAnimation(header: ImageHeader, load: () => Promise<DecodedFrames>, settings: Settings): Plan {
  const fps = header.delaysMs ? fpsFromTimestamps(timestampsFromDelays(header.delaysMs)) : undefined;
  const indices = chooseFrames(header.frames, fps, settings);
  const size = videoSize(indices.length, header, settings);
  return videoPlan(indices, size, settings.processor, async () => {
    const { frames } = await load();
    return (i) => Promise.resolve(frames[i]!);
  });
}

/** A video given frame by frame: only the kept frames are read, one temporal group at a time. */
async function planFrameList(video: VideoFrames, index: number, settings: Settings): Promise<Plan> {
  const { frames, timestamps } = video;
  if (frames.length === 0) throw invalidArgument(`items[${index}].frames`, 'at least 2 frames', 0, 'Pass a single frame as an image instead');
  if (timestamps !== undefined && timestamps.length !== frames.length) {
    throw invalidArgument(`items[${index}].timestamps length`, `one per frame (${frames.length})`, timestamps.length);
  }
  if (video.fps !== undefined && (!(video.fps > 0) || !Number.isFinite(video.fps))) {
    throw invalidArgument(`items[${index}].fps`, 'a positive finite number', video.fps);
  }
  const fps = video.fps ?? (timestamps ? fpsFromTimestamps(timestamps) : undefined);
  const indices = chooseFrames(frames.length, fps, settings);

  const loaders = new Map<number, () => Promise<DecodedFrames>>();
  let frameSize: Size | undefined;
  for (const i of indices) {
    const { header, load } = await inspect(frames[i]!, decodeOptions(settings, `items[${index}].frames[${i}]`), false);
    loaders.set(i, load);
    frameSize ??= { height: header.height, width: header.width };
    if (header.height !== frameSize.height || header.width !== frameSize.width) {
      throw new VitgraphError(
        'invalid_argument',
        `items[${index}].frames[${i}] size: expected ${frameSize.width}×${frameSize.height} like frame ${indices[0]}, ` +
          `got ${header.width}×${header.height}. All frames of a video must have one size; resize them first`,
        { item: index, frame: i, expected: frameSize, got: { height: header.height, width: header.width } },
      );
    }
  }
  const size = videoSize(indices.length, frameSize!, settings);
  return videoPlan(indices, size, settings.processor, async () => async (i) => (await loaders.get(i)!()).frames[0]!);
}

/**
 * A source's header and a loader for its pixels. Paths and bytes are only read for their header
 * here and decoded when loaded. A sharp instance is decoded here, since operations queued on it may
 * change the size its header shows; its pixels are held until loaded once.
 */
async function inspect(source: ImageSource, decode: DecodeOptions, allFrames: boolean): Promise<{ header: ImageHeader; load: () => Promise<DecodedFrames> }> {
  const decodeNow = (): Promise<DecodedFrames> => (allFrames ? decodeFrames(source, decode) : decodePixels(source, decode).then((pixels) => ({ frames: [pixels] })));
  if (typeof source === 'string' || source instanceof Uint8Array) {
    return { header: await readImageHeader(source, decode, allFrames), load: decodeNow };
  }
  let decoded: DecodedFrames | undefined = await decodeNow();
  const first = decoded.frames[0]!;
  const header: ImageHeader = {
    width: first.width,
    height: first.height,
    frames: decoded.frames.length,
    ...(decoded.delaysMs ? { delaysMs: decoded.delaysMs } : {}),
  };
  return {
    header,
    load: async () => {
      const pixels = decoded ?? (await decodeNow());
      decoded = undefined;
      return pixels;
    },
  };
}

/** Every frame, or the fps-sampled ones when the source rate is known (HF `sample_frames`). */
function chooseFrames(total: number, fps: number | undefined, options: PreprocessOptions): number[] {
  if (fps === undefined) return Array.from({ length: total }, (_, i) => i);
  return sampleFrameIndices(total, fps, options.targetFps ?? DEFAULT_TARGET_FPS);
}

/** The one size all `frames` kept frames are resized to, under the processor's video budget. */
function videoSize(frames: number, frameSize: Size, settings: Settings): Size {
  const { processor } = settings;
  const bounds = {
    factor: sizeFactor(processor),
    minPixels: settings.videoMinPixels ?? processor.videoMinPixels,
    maxPixels: settings.videoMaxPixels ?? processor.videoMaxPixels,
  };
  if (processor.videoPixelBudget === 'per-clip') {
    return smartResizeVideo(frames, frameSize.height, frameSize.width, { ...bounds, temporalPatchSize: processor.temporalPatchSize });
  }
  checkVideoFrames(frames, processor.temporalPatchSize);
  return smartResize(frameSize.height, frameSize.width, bounds);
}

/**
 * Frames `indices` (padded to a multiple of Tp by repeating the last) resized to `size` and patched
 * group by group; `open` yields a reader of input frames by index.
 */
function videoPlan(indices: number[], size: Size, processor: ProcessorParams, open: () => Promise<(i: number) => Promise<Pixels>>): Plan {
  const tp = processor.temporalPatchSize;
  const groups = Math.ceil(indices.length / tp);
  const gridThw: [number, number, number] = [groups, size.height / processor.patchSize, size.width / processor.patchSize];
  const rowsPerGroup = gridThw[1] * gridThw[2];
  return {
    kind: 'video',
    gridThw,
    rows: groups * rowsPerGroup,
    resized: size,
    frameIndices: indices,
    write: async (out, rowOffset) => {
      const read = await open();
      for (let g = 0; g < groups; g++) {
        const group: Pixels[] = [];
        for (let k = 0; k < tp; k++) {
          const index = indices[g * tp + k];
          group.push(index === undefined ? group[k - 1]! : resizeTo(await read(index), size));
        }
        const channels = group.every((frame) => frame.channels === group[0]!.channels) ? group[0]!.channels : 3;
        const data = group.map((frame) => (frame.channels === channels ? frame : toRgb(frame)).data);
        patchGroup(out, rowOffset + g * rowsPerGroup, data, size.height, size.width, channels, processor);
      }
    },
  };
}

/** Pillow-exact bicubic resize to `size`; a frame already that size is used as is. */
function resizeTo(pixels: Pixels, size: Size): Pixels {
  if (pixels.height === size.height && pixels.width === size.width) return pixels;
  const data = resizeBicubic(pixels.data, pixels.width, pixels.height, pixels.channels, size.width, size.height);
  return { data, width: size.width, height: size.height, channels: pixels.channels };
}

function decodeOptions(options: PreprocessOptions, label: string): DecodeOptions {
  return { label, ...(options.maxInputPixels === undefined ? {} : { maxInputPixels: options.maxInputPixels }), ...(options.allowSvg ? { allowSvg: true } : {}) };
}

/** [rows, dim] float32, or a clear error when the request cannot fit in one typed array. */
function allocateRows(rows: number, dim: number): Float32Array {
  try {
    return new Float32Array(rows * dim);
  } catch (cause) {
    const error = invalidArgument('pixel_values size', `at most ${Math.floor(2 ** 32 / dim)} rows`, `${rows} rows (${rows * dim} floats)`, {
      fixes: [
        { option: 'maxPixels', action: 'lower' },
        { option: 'videoMaxPixels', action: 'lower' },
      ],
      otherwise: 'pass fewer items per call',
    });
    throw new VitgraphError(error.code, error.message, { ...error.details, rows }, { cause });
  }
}
