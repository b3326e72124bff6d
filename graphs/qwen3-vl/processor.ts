// How Qwen3-VL (and Qwen3.5) images become pixel_values: the processor the released checkpoints
// ship (transformers `Qwen2VLImageProcessor` with Qwen3-VL's preprocessor_config.json and
// `Qwen3VLVideoProcessor`'s video_preprocessor_config.json). A checkpoint's own
// preprocessor_config.json overrides these fields (src/image/processor.ts).

import type { ProcessorParams } from '../../src/image/processor.js';
import type { VisionConfig } from './config.js';

/**
 * Qwen3-VL (and Qwen3.5): patch 16, merge 2, temporal 2, mean = std = 0.5, the shipped
 * preprocessor_config.json (65 536 … 16 777 216 px) and video_preprocessor_config.json
 * (4 096 … 25 165 824 px over the clip).
 */
export const QWEN3_VL_PROCESSOR: ProcessorParams = Object.freeze({
  patchSize: 16,
  temporalPatchSize: 2,
  mergeSize: 2,
  minPixels: 65_536,
  maxPixels: 16_777_216,
  videoMinPixels: 4_096,
  videoMaxPixels: 25_165_824,
  videoPixelBudget: 'per-clip',
  imageMean: Object.freeze([0.5, 0.5, 0.5] as const),
  imageStd: Object.freeze([0.5, 0.5, 0.5] as const),
  normalization: 'rescale-f32-normalize-f32',
});

/** The shipped Qwen3-VL processor, with the tower's patch, merge and temporal sizes. */
export function qwen3Processor(config: VisionConfig): ProcessorParams {
  return { ...QWEN3_VL_PROCESSOR, patchSize: config.patchSize, temporalPatchSize: config.temporalPatchSize, mergeSize: config.spatialMergeSize };
}
