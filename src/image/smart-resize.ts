// Target sizes for images and videos: multiples of the factor (patch × merge: 32 for Qwen3-VL, 28 for
// Qwen2-VL) whose area lands inside a pixel budget, keeping the aspect ratio as close as the grid
// allows (spec §4.1.2 and §4.2.2). The factor and the budget come from the model's processor.

import { VitgraphError, invalidArgument } from '../errors.js';

/** Widest side over narrowest side above which an image is refused (upstream's limit). */
export const MAX_ASPECT_RATIO = 200;

export interface SmartResizeOptions {
  /** Both output sides are multiples of this: patch × merge (`sizeFactor(processor)`; 32 for Qwen3-VL). */
  factor: number;
  /** Lower bound on the pixel budget (Qwen3-VL's: 65 536 for images, 4 096 for videos). */
  minPixels: number;
  /** Upper bound on the pixel budget (Qwen3-VL's: 16 777 216 for images, 25 165 824 for videos). */
  maxPixels: number;
}

export interface SmartResizeVideoOptions extends SmartResizeOptions {
  /** Frames per temporal patch: the clip's frame count is rounded to a multiple of it (2 for every Qwen VL). */
  temporalPatchSize: number;
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
export function smartResize(height: number, width: number, opts: SmartResizeOptions): Size {
  const { factor, minPixels, maxPixels } = checkOptions(opts);
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
export function smartResizeVideo(frames: number, height: number, width: number, opts: SmartResizeVideoOptions): Size {
  const { factor, minPixels, maxPixels } = checkOptions(opts);
  const temporal = opts.temporalPatchSize;
  if (!Number.isInteger(temporal) || temporal < 1) throw invalidArgument('temporalPatchSize', 'a positive integer', temporal);
  checkVideoFrames(frames, temporal);
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
  const t = roundHalfEven(frames / temporal) * temporal;
  if (t * h * w > maxPixels) return shrink(height, width, Math.sqrt((frames * height * width) / maxPixels), factor);
  if (t * h * w < minPixels) return grow(height, width, Math.sqrt(minPixels / (frames * height * width)), factor);
  return { height: h, width: w };
}

/** A video needs at least one full temporal patch of frames; fewer is an image. */
export function checkVideoFrames(frames: number, temporalPatchSize: number): void {
  if (!Number.isInteger(frames) || frames < temporalPatchSize) {
    throw invalidArgument('video frame count', `an integer ≥ ${temporalPatchSize}`, frames, 'Pass a single frame as an image instead');
  }
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
      `image aspect ratio: expected at most ${MAX_ASPECT_RATIO} (longer side / shorter side), got ${aspect.toFixed(1)} ` + `for ${width}×${height}. Crop or pad the image to a less extreme shape`,
      { what: 'image aspect ratio', expected: MAX_ASPECT_RATIO, got: aspect, width, height },
    );
  }
}

function checkSide(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw invalidArgument(what, 'a positive integer', value);
}

function checkOptions(opts: SmartResizeOptions): SmartResizeOptions {
  if (typeof opts !== 'object' || opts === null) throw invalidArgument('smart resize options', "{ factor, minPixels, maxPixels } from the model's processor", opts);
  const { factor, minPixels, maxPixels } = opts;
  if (!Number.isInteger(factor) || factor < 1) throw invalidArgument('smart resize factor', 'a positive integer', factor);
  if (!(minPixels >= 0)) throw invalidArgument('minPixels', 'a number ≥ 0', minPixels);
  if (!(maxPixels >= factor * factor) || maxPixels < minPixels) {
    throw invalidArgument('maxPixels', `a number ≥ max(minPixels, factor²) = ${Math.max(minPixels, factor * factor)}`, maxPixels);
  }
  return { factor, minPixels, maxPixels };
}
