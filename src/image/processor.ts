// The processor parameters that turn an image into `pixel_values`: patch, merge and temporal sizes,
// pixel budgets, mean/std and the exact normalization arithmetic. Each family's values live with its
// tower (graphs/<family>/), each field overridable from a checkpoint's `preprocessor_config.json`
// (transformers `Qwen2VLImageProcessor.__init__`, which Qwen2.5-VL, Qwen3-VL and Qwen3.5 share).

import { invalidArgument, invalidConfig } from '../errors.js';

/**
 * How a uint8 level p becomes the float32 the tower sees, both ending in (v − mean) / std computed
 * in float32 with float32 mean and std:
 * - `'rescale-f32-normalize-f32'`: v = float32(p) × float32(1/255) in float32. Reproduces the
 *   Qwen3-VL reference `pixel_values` bit for bit (fixtures/preprocess).
 * - `'rescale-f64-normalize-f32'`: v = float32(p × 1/255 in float64), transformers' `rescale` on a
 *   uint8 array before its float32 `normalize` (the Qwen2-VL / Qwen2.5-VL PIL path,
 *   fixtures/preprocess-qwen2).
 * The two differ by 1 ulp at some levels, so the family fixes which one its reference used.
 */
export type Normalization = 'rescale-f32-normalize-f32' | 'rescale-f64-normalize-f32';

/**
 * Where a video's pixel budget applies:
 * - `'per-clip'`: frames × height × width within [videoMinPixels, videoMaxPixels]
 *   (transformers `qwen3_vl.video_processing_qwen3_vl.smart_resize`, `cap_pixels_per_frame=False`);
 * - `'per-frame'`: each frame's height × width, the image smart_resize with the video bounds
 *   (`Qwen2VLVideoProcessor`).
 */
export type VideoPixelBudget = 'per-clip' | 'per-frame';

export type Rgb = readonly [number, number, number];

export interface ProcessorParams {
  /** Patch edge in pixels (P). */
  readonly patchSize: number;
  /** Frames per temporal patch (Tp); a video's frames are padded to a multiple of it. */
  readonly temporalPatchSize: number;
  /** Patches per side merged into one token (m). */
  readonly mergeSize: number;
  /** Image pixel budget: height × width after resizing. */
  readonly minPixels: number;
  readonly maxPixels: number;
  /** Video pixel budget, applied as `videoPixelBudget` says. */
  readonly videoMinPixels: number;
  readonly videoMaxPixels: number;
  readonly videoPixelBudget: VideoPixelBudget;
  /** Per-channel mean and std on the [0, 1] scale. */
  readonly imageMean: Rgb;
  readonly imageStd: Rgb;
  readonly normalization: Normalization;
}

/** Both sides of a resized frame are multiples of this: patch × merge (32 for Qwen3-VL, 28 for Qwen2-VL). */
export const sizeFactor = (p: ProcessorParams): number => p.patchSize * p.mergeSize;

/** Values per `pixel_values` row: 3 channels × Tp frames × P² (1536 for Qwen3-VL, 1176 for Qwen2-VL). */
export const patchDim = (p: ProcessorParams): number => 3 * p.temporalPatchSize * p.patchSize * p.patchSize;

/**
 * `processor` itself when its fields can work (sizes positive integers within bounds, budgets
 * positive, std > 0, known arithmetic); otherwise an `invalid_argument` error naming the field. For
 * params built by hand; processorFromConfig checks what it reads the same way.
 */
export function checkProcessor(processor: ProcessorParams): ProcessorParams {
  const integer = (field: keyof ProcessorParams, max: number): void => {
    const value = processor[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      throw invalidArgument(`processor.${field}`, `an integer in [1, ${max}]`, value);
    }
  };
  integer('patchSize', LIMITS.patchSize);
  integer('mergeSize', LIMITS.mergeSize);
  integer('temporalPatchSize', LIMITS.temporalPatchSize);
  for (const field of ['minPixels', 'maxPixels', 'videoMinPixels', 'videoMaxPixels'] as const) integer(field, LIMITS.pixels);
  for (const [field, min] of [
    ['imageMean', -Infinity],
    ['imageStd', 0],
  ] as const) {
    const rgb: unknown = processor[field];
    if (!Array.isArray(rgb) || rgb.length !== 3 || !rgb.every((v) => typeof v === 'number' && Number.isFinite(v) && v > min)) {
      throw invalidArgument(`processor.${field}`, `3 finite numbers${min === 0 ? ' > 0' : ''}`, String(rgb));
    }
  }
  if (processor.normalization !== 'rescale-f32-normalize-f32' && processor.normalization !== 'rescale-f64-normalize-f32') {
    throw invalidArgument('processor.normalization', '"rescale-f32-normalize-f32" or "rescale-f64-normalize-f32"', processor.normalization);
  }
  if (processor.videoPixelBudget !== 'per-clip' && processor.videoPixelBudget !== 'per-frame') {
    throw invalidArgument('processor.videoPixelBudget', '"per-clip" or "per-frame"', processor.videoPixelBudget);
  }
  return processor;
}

/** Sane bounds for the sizes a config may set. */
const LIMITS = {
  patchSize: 256,
  mergeSize: 16,
  temporalPatchSize: 16,
  /** A budget past 2^32 px cannot become one Float32Array of pixel_values anyway. */
  pixels: 2 ** 32,
} as const;

/**
 * The processor a checkpoint asks for: `defaults` (its family's) with every field present in the HF
 * `preprocessor_config.json` object `json` overriding it.
 *
 * Read: `patch_size`, `merge_size`, `temporal_patch_size`; `min_pixels` / `max_pixels`, or
 * `size.shortest_edge` / `size.longest_edge` (bounds on height × width despite the names; the
 * top-level keys win when both are present); `image_mean`, `image_std`. Checked and refused when they
 * would change the arithmetic this code implements: `do_resize`, `do_rescale`, `do_normalize` false,
 * `rescale_factor` other than 1/255, `resample` other than 3 (bicubic). Other keys are ignored.
 * Throws `invalid_config` naming the field.
 */
export function processorFromConfig(json: unknown, defaults: ProcessorParams): ProcessorParams {
  const config = asObject(json, 'preprocessor_config.json');
  const patchSize = optionalInteger(config, 'patch_size', 1, LIMITS.patchSize) ?? defaults.patchSize;
  const mergeSize = optionalInteger(config, 'merge_size', 1, LIMITS.mergeSize) ?? defaults.mergeSize;
  const temporalPatchSize = optionalInteger(config, 'temporal_patch_size', 1, LIMITS.temporalPatchSize) ?? defaults.temporalPatchSize;

  const size = config.size === undefined || config.size === null ? {} : asObject(config.size, 'size');
  const min = pixelBound(config, 'min_pixels', size, 'shortest_edge') ?? { value: defaults.minPixels, field: 'min_pixels' };
  const max = pixelBound(config, 'max_pixels', size, 'longest_edge') ?? { value: defaults.maxPixels, field: 'max_pixels' };
  const factor = patchSize * mergeSize;
  if (max.value < Math.max(min.value, factor * factor)) {
    throw invalidConfig(
      max.field,
      `expected at least max(min pixels ${min.value}, (patch × merge)² = ${factor * factor}), got ${max.value}`,
      `Check ${min.field}, ${max.field}, patch_size and merge_size together`,
    );
  }

  refuseUnless(config, 'do_resize', (v) => v === true, 'true (resizing cannot be turned off)');
  refuseUnless(config, 'do_rescale', (v) => v === true, 'true (rescaling by 1/255 cannot be turned off)');
  refuseUnless(config, 'do_normalize', (v) => v === true, 'true (normalization cannot be turned off)');
  refuseUnless(config, 'rescale_factor', (v) => typeof v === 'number' && Math.abs(v - 1 / 255) <= 1e-12, '1/255 = 0.00392156862745098');
  refuseUnless(config, 'resample', (v) => v === 3, '3 (bicubic, the only filter implemented)');

  return {
    ...defaults,
    patchSize,
    mergeSize,
    temporalPatchSize,
    minPixels: min.value,
    maxPixels: max.value,
    imageMean: optionalRgb(config, 'image_mean', 0, 1) ?? defaults.imageMean,
    imageStd: optionalRgb(config, 'image_std', 1e-3, 10) ?? defaults.imageStd,
  };
}

type JsonObject = Record<string, unknown>;

function asObject(value: unknown, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidConfig(field, `expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  }
  return value as JsonObject;
}

function optionalInteger(config: JsonObject, key: string, min: number, max: number, prefix = ''): number | undefined {
  const value = config[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidConfig(`${prefix}${key}`, `expected an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A pixel bound from the top-level key, else from `size.<sizeKey>`, with the field it came from. */
function pixelBound(config: JsonObject, key: string, size: JsonObject, sizeKey: string): { value: number; field: string } | undefined {
  const top = optionalInteger(config, key, 1, LIMITS.pixels);
  if (top !== undefined) return { value: top, field: key };
  const nested = optionalInteger(size, sizeKey, 1, LIMITS.pixels, 'size.');
  return nested === undefined ? undefined : { value: nested, field: `size.${sizeKey}` };
}

function optionalRgb(config: JsonObject, key: string, min: number, max: number): Rgb | undefined {
  const value = config[key];
  if (value === undefined || value === null) return undefined;
  const valid = Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number' && v >= min && v <= max);
  if (!valid) throw invalidConfig(key, `expected 3 numbers in [${min}, ${max}] (R, G, B), got ${JSON.stringify(value)}`);
  return [value[0] as number, value[1] as number, value[2] as number];
}

function refuseUnless(config: JsonObject, key: string, accepted: (value: unknown) => boolean, expected: string): void {
  const value = config[key];
  if (value !== undefined && value !== null && !accepted(value)) {
    throw invalidConfig(key, `expected ${expected}, got ${JSON.stringify(value)}`, 'vitgraph implements only the Qwen VL processors as shipped');
  }
}
