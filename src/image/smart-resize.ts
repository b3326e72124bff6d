// Target sizes for images and videos: multiples of 32 (patch 16 × merge 2) whose area lands inside a
// pixel budget, keeping the aspect ratio as close as the grid allows (spec §4.1.2 and §4.2.2).

import { VitgraphError, invalidArgument } from '../errors.js';

/** Patch size × merge size: both sides of a resized image are multiples of this. */
export const SIZE_FACTOR = 32;
/** Frames per temporal patch: a video's frame count is padded to a multiple of this. */
export const TEMPORAL_FACTOR = 2;
/** Widest side over narrowest side above which an image is refused (upstream's limit). */
export const MAX_ASPECT_RATIO = 200;

/** The shipped `preprocessor_config.json`: `size.shortest_edge` / `size.longest_edge` (pixels, not edges). */
export const IMAGE_MIN_PIXELS = 65_536;
export const IMAGE_MAX_PIXELS = 16_777_216;
/** The shipped `video_preprocessor_config.json`; these bound frames × height × width. */
export const VIDEO_MIN_PIXELS = 4_096;
export const VIDEO_MAX_PIXELS = 25_165_824;

export interface SmartResizeOptions {
  /** Both output sides are multiples of this (default 32). */
  factor?: number;
  /** Lower bound on the pixel budget (default 65 536 for images, 4 096 for videos). */
  minPixels?: number;
  /** Upper bound on the pixel budget (default 16 777 216 for images, 25 165 824 for videos). */
  maxPixels?: number;
}

export interface Size {
  height: number;
  width: number;
}

/**
 * Python's `round()` for one float: ties go to the even neighbour (`round(22.5) == 22`), where
 * `Math.round` would go up. numpy's `np.round` on floats does the same.
 */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction < 0.5) return floor;
  if (fraction > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * The size an image of `height × width` is resized to before patching.
 * Mirrors transformers `qwen2_vl.image_processing_qwen2_vl.smart_resize` (current form: aspect check,
 * then round each side to the factor, then scale into [minPixels, maxPixels] with `max(factor, …)`
 * guards on the shrinking branch).
 *
 * 720×1280 → 704×1280 (22.5 rounds to 22), 4000×6000 → 3328×4992, 48×1000 → 64×1184.
 */
export function smartResize(height: number, width: number, opts: SmartResizeOptions = {}): Size {
  const { factor, minPixels, maxPixels } = resolveOptions(opts, IMAGE_MIN_PIXELS, IMAGE_MAX_PIXELS);
  checkSide('image height', height);
  checkSide('image width', width);
  checkAspect(height, width);
  const h = roundHalfEven(height / factor) * factor;
  const w = roundHalfEven(width / factor) * factor;
  if (h * w > maxPixels) return shrink(height, width, Math.sqrt((height * width) / maxPixels), factor);
  if (h * w < minPixels) return grow(height, width, Math.sqrt(minPixels / (height * width)), factor);
  return { height: h, width: w };
}

/**
 * The one size every frame of a `frames`-frame video of `height × width` is resized to.
 * Mirrors transformers `qwen3_vl.video_processing_qwen3_vl.smart_resize` with
 * `cap_pixels_per_frame=False` (the budget bounds t̄·h·w over the whole clip, and β uses the raw
 * frame count, not t̄). Sides under the factor are first scaled up, truncating to integers.
 */
export function smartResizeVideo(frames: number, height: number, width: number, opts: SmartResizeOptions = {}): Size {
  const { factor, minPixels, maxPixels } = resolveOptions(opts, VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS);
  if (!Number.isInteger(frames) || frames < TEMPORAL_FACTOR) {
    throw invalidArgument('video frame count', `an integer ≥ ${TEMPORAL_FACTOR}`, frames, 'Pass a single frame as an image instead');
  }
  checkSide('video height', height);
  checkSide('video width', width);
  if (height < factor || width < factor) {
    const scale = Math.max(factor / height, factor / width);
    height = Math.trunc(height * scale);
    width = Math.trunc(width * scale);
  }
  checkAspect(height, width);
  const h = roundHalfEven(height / factor) * factor;
  const w = roundHalfEven(width / factor) * factor;
  const t = roundHalfEven(frames / TEMPORAL_FACTOR) * TEMPORAL_FACTOR;
  if (t * h * w > maxPixels) return shrink(height, width, Math.sqrt((frames * height * width) / maxPixels), factor);
  if (t * h * w < minPixels) return grow(height, width, Math.sqrt(minPixels / (frames * height * width)), factor);
  return { height: h, width: w };
}

function shrink(height: number, width: number, beta: number, factor: number): Size {
  return {
    height: Math.max(factor, Math.floor(height / beta / factor) * factor),
    width: Math.max(factor, Math.floor(width / beta / factor) * factor),
  };
}

function grow(height: number, width: number, beta: number, factor: number): Size {
  return {
    height: Math.ceil((height * beta) / factor) * factor,
    width: Math.ceil((width * beta) / factor) * factor,
  };
}

function checkAspect(height: number, width: number): void {
  const aspect = Math.max(height, width) / Math.min(height, width);
  if (aspect > MAX_ASPECT_RATIO) {
    throw new VitgraphError(
      'invalid_argument',
      `image aspect ratio: expected at most ${MAX_ASPECT_RATIO} (longer side / shorter side), got ${aspect.toFixed(1)} ` +
        `for ${width}×${height}. Crop or pad the image to a less extreme shape`,
      { what: 'image aspect ratio', expected: MAX_ASPECT_RATIO, got: aspect, width, height },
    );
  }
}

function checkSide(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw invalidArgument(what, 'a positive integer', value);
}

function resolveOptions(opts: SmartResizeOptions, defaultMin: number, defaultMax: number): Required<SmartResizeOptions> {
  const factor = opts.factor ?? SIZE_FACTOR;
  const minPixels = opts.minPixels ?? defaultMin;
  const maxPixels = opts.maxPixels ?? defaultMax;
  if (!Number.isInteger(factor) || factor < 1) throw invalidArgument('smart resize factor', 'a positive integer', factor);
  if (!(minPixels >= 0)) throw invalidArgument('minPixels', 'a number ≥ 0', minPixels);
  if (!(maxPixels >= factor * factor) || maxPixels < minPixels) {
    throw invalidArgument('maxPixels', `a number ≥ max(minPixels, factor²) = ${Math.max(minPixels, factor * factor)}`, maxPixels);
  }
  return { factor, minPixels, maxPixels };
}
