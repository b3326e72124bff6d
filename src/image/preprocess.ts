// Images and videos → `pixel_values` [N, 1536] + `grid_thw` [I, 3], the encoder's inputs.
// Mirrors transformers `Qwen2VLImageProcessor._preprocess` (images) and
// `Qwen3VLVideoProcessor._preprocess` (videos) with the shipped Qwen3-VL configs. Frames are resized
// as the PIL backend does (Pillow bicubic, bit-exact; see resample.ts) for images and videos alike;
// the torchvision backend differs from it by about 0.2 levels on average.
//
// Work is planned from headers first (sizes, grids, rows), the output allocated once, then each
// item decoded, resized and patched straight into its rows: one image, or one temporal group of two
// frames of a frame list, is decoded at a time. Exceptions: an animated GIF / WebP is decoded whole,
// and a sharp instance is decoded while planning (only its output shows its size).

import { VitgraphError, invalidArgument } from '../errors.js';
import {
  decodeFrames,
  decodePixels,
  readImageHeader,
  toRgb,
  type DecodedFrames,
  type DecodeOptions,
  type ImageHeader,
  type ImageSource,
  type Pixels,
} from './decode.js';
import { PATCH_DIM, PATCH_SIZE, patchGroup } from './patchify.js';
import { resizeBicubic } from './resample.js';
import { smartResize, smartResizeVideo, type Size } from './smart-resize.js';
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
  /** Image pixel budget (default 65 536 … 16 777 216, the shipped preprocessor_config.json). */
  minPixels?: number;
  maxPixels?: number;
  /** Video budget on frames × height × width (default 4 096 … 25 165 824, video_preprocessor_config.json). */
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
  /** Videos: the input frames kept, in order (before padding to an even count). */
  frameIndices?: number[];
}

export interface Preprocessed {
  /** [N, 1536] row-major, items concatenated in order. */
  pixelValues: Float32Array;
  /** [I, 3] one (t, gh, gw) per item. */
  gridThw: BigInt64Array;
  items: PreprocessedItem[];
}

interface Plan extends PreprocessedItem {
  /** Decodes, resizes and patches the item into `out` from row `rowOffset`. */
  write: (out: Float32Array, rowOffset: number) => Promise<void>;
}

/**
 * Preprocesses images and videos for the vision encoder (spec §4).
 *
 * Images: smart_resize (factor 32, 65 536 … 16 777 216 px), Pillow bicubic, p/127.5 − 1, duplicated
 * to 2 frames, t = 1. Videos: sampled to `targetFps` when their rate is known (otherwise every frame
 * is kept), all frames resized to one size from the video smart_resize, padded to an even count.
 *
 * The video budget is HF's default `cap_pixels_per_frame=False`: t̄·h·w ≤ 25 165 824 over the whole
 * clip, so a short clip keeps near-native resolution (qwen-vl-utils instead caps each frame at
 * 768·32² px; HF plans to switch to that in v5.22).
 */
export async function preprocess(items: VisualItem[], options: PreprocessOptions = {}): Promise<Preprocessed> {
  if (!Array.isArray(items)) throw invalidArgument('preprocess items', 'an array of images and videos', typeof items);
  const targetFps = options.targetFps ?? DEFAULT_TARGET_FPS;
  if (!(targetFps > 0) || !Number.isFinite(targetFps)) throw invalidArgument('targetFps', 'a positive finite number', targetFps);

  const plans: Plan[] = [];
  for (const [index, item] of items.entries()) {
    plans.push(isVideoFrames(item) ? await planFrameList(item, index, options) : await planSource(item, index, options));
  }
  const totalRows = plans.reduce((sum, plan) => sum + plan.rows, 0);
  const pixelValues = allocateRows(totalRows);
  const gridThw = new BigInt64Array(plans.length * 3);
  let rowOffset = 0;
  for (const [i, plan] of plans.entries()) {
    await plan.write(pixelValues, rowOffset);
    rowOffset += plan.rows;
    plan.gridThw.forEach((v, j) => (gridThw[i * 3 + j] = BigInt(v)));
  }
  return { pixelValues, gridThw, items: plans.map(({ write: _write, ...item }) => item) };
}

function isVideoFrames(item: VisualItem): item is VideoFrames {
  return typeof item === 'object' && item !== null && !(item instanceof Uint8Array) && Array.isArray((item as VideoFrames).frames);
}

/** An image source: a still image, or an animated GIF / WebP read as a video. */
async function planSource(source: ImageSource, index: number, options: PreprocessOptions): Promise<Plan> {
  const { header, load } = await inspect(source, decodeOptions(options, `items[${index}]`), true);
  if (header.frames > 1) return planAnimation(header, load, options);

  const size = smartResize(header.height, header.width, { minPixels: options.minPixels, maxPixels: options.maxPixels });
  const gridThw: [number, number, number] = [1, size.height / PATCH_SIZE, size.width / PATCH_SIZE];
  return {
    kind: 'image',
    gridThw,
    rows: gridThw[1] * gridThw[2],
    resized: size,
    write: async (out, rowOffset) => {
      const frame = resizeTo((await load()).frames[0]!, size);
      patchGroup(out, rowOffset, frame.data, frame.data, size.height, size.width, frame.channels);
    },
  };
}

/** An animated GIF / WebP: all frames decoded at once, sampled by their recorded delays when known. */
function planAnimation(header: ImageHeader, load: () => Promise<DecodedFrames>, options: PreprocessOptions): Plan {
  const fps = header.delaysMs ? fpsFromTimestamps(timestampsFromDelays(header.delaysMs)) : undefined;
  const indices = chooseFrames(header.frames, fps, options);
  const size = videoSize(indices.length, header, options);
  return videoPlan(indices, size, async () => {
    const { frames } = await load();
    return (i) => Promise.resolve(frames[i]!);
  });
}

/** A video given frame by frame: only the kept frames are read, two at a time. */
async function planFrameList(video: VideoFrames, index: number, options: PreprocessOptions): Promise<Plan> {
  const { frames, timestamps } = video;
  if (frames.length === 0) throw invalidArgument(`items[${index}].frames`, 'at least 2 frames', 0, 'Pass a single frame as an image instead');
  if (timestamps !== undefined && timestamps.length !== frames.length) {
    throw invalidArgument(`items[${index}].timestamps length`, `one per frame (${frames.length})`, timestamps.length);
  }
  if (video.fps !== undefined && (!(video.fps > 0) || !Number.isFinite(video.fps))) {
    throw invalidArgument(`items[${index}].fps`, 'a positive finite number', video.fps);
  }
  const fps = video.fps ?? (timestamps ? fpsFromTimestamps(timestamps) : undefined);
  const indices = chooseFrames(frames.length, fps, options);

  const loaders = new Map<number, () => Promise<DecodedFrames>>();
  let frameSize: Size | undefined;
  for (const i of indices) {
    const { header, load } = await inspect(frames[i]!, decodeOptions(options, `items[${index}].frames[${i}]`), false);
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
  const size = videoSize(indices.length, frameSize!, options);
  return videoPlan(indices, size, async () => async (i) => (await loaders.get(i)!()).frames[0]!);
}

/**
 * A source's header and a loader for its pixels. Paths and bytes are only read for their header
 * here and decoded when loaded. A sharp instance is decoded here, since operations queued on it may
 * change the size its header shows; its pixels are held until loaded once.
 */
async function inspect(
  source: ImageSource,
  decode: DecodeOptions,
  allFrames: boolean,
): Promise<{ header: ImageHeader; load: () => Promise<DecodedFrames> }> {
  const decodeNow = (): Promise<DecodedFrames> =>
    allFrames ? decodeFrames(source, decode) : decodePixels(source, decode).then((pixels) => ({ frames: [pixels] }));
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

function videoSize(frames: number, frameSize: Size, options: PreprocessOptions): Size {
  return smartResizeVideo(frames, frameSize.height, frameSize.width, {
    minPixels: options.videoMinPixels,
    maxPixels: options.videoMaxPixels,
  });
}

/**
 * Frames `indices` (padded to an even count by repeating the last) resized to `size` and patched
 * group by group; `open` yields a reader of input frames by index.
 */
function videoPlan(indices: number[], size: Size, open: () => Promise<(i: number) => Promise<Pixels>>): Plan {
  const groups = Math.ceil(indices.length / 2);
  const gridThw: [number, number, number] = [groups, size.height / PATCH_SIZE, size.width / PATCH_SIZE];
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
        const first = resizeTo(await read(indices[2 * g]!), size);
        const next = indices[2 * g + 1];
        const second = next === undefined ? first : resizeTo(await read(next), size);
        const [a, b] = first.channels === second.channels ? [first, second] : [toRgb(first), toRgb(second)];
        patchGroup(out, rowOffset + g * rowsPerGroup, a.data, b.data, size.height, size.width, a.channels);
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

/** [rows, 1536] float32, or a clear error when the request cannot fit in one typed array. */
function allocateRows(rows: number): Float32Array {
  try {
    return new Float32Array(rows * PATCH_DIM);
  } catch (cause) {
    throw new VitgraphError(
      'invalid_argument',
      `pixel_values size: expected at most ${Math.floor(2 ** 32 / PATCH_DIM)} rows, got ${rows} rows (${rows * PATCH_DIM} floats). ` +
        'Lower maxPixels / videoMaxPixels or pass fewer items per call',
      { rows },
      { cause },
    );
  }
}
