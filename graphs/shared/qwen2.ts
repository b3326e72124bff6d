// What Qwen2-VL and Qwen2.5-VL share beyond the tower's layers: the image processor both ship,
// the block count and patching of every released tower, the full config.json around a preset's
// vision_config, and the shape of their descriptors (one image_embeds output, the Qwen2 processor).

import type { ProcessorParams } from '../../src/image/processor.js';
import type { Bucket, GraphOptions, ModelDescriptor } from '../../src/model.js';
import type { GraphBuilder, ParameterSource } from '../../src/onnx/index.js';
import type { BaseVisionConfig } from './config.js';

/**
 * Qwen2-VL and Qwen2.5-VL: patch 14, merge 2, temporal 2, the OpenAI CLIP mean/std, the released
 * preprocessor_config.json (3 136 … 12 845 056 px = 28²·16384) and `Qwen2VLVideoProcessor`'s class
 * defaults for videos (100 352 = 128·28² … 602 112 = 768·28² px per frame).
 */
export const QWEN2_VL_PROCESSOR: ProcessorParams = Object.freeze({
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 16_384,
  videoMinPixels: 128 * 28 * 28,
  videoMaxPixels: 768 * 28 * 28,
  videoPixelBudget: 'per-frame',
  imageMean: Object.freeze([0.48145466, 0.4578275, 0.40821073] as const),
  imageStd: Object.freeze([0.26862954, 0.26130258, 0.27577711] as const),
  normalization: 'rescale-f64-normalize-f32',
});

/** The Qwen2-VL processor (Qwen2.5-VL ships the same) with the tower's patch, merge and temporal sizes. */
export const qwen2Processor = (config: BaseVisionConfig): ProcessorParams => ({
  ...QWEN2_VL_PROCESSOR,
  patchSize: config.patchSize,
  temporalPatchSize: config.temporalPatchSize,
  mergeSize: config.spatialMergeSize,
});

/** Patching and block count shared by every released Qwen2-VL and Qwen2.5-VL tower. */
export const RELEASED_PATCHING = {
  depth: 32,
  num_heads: 16,
  in_chans: 3,
  patch_size: 14,
  spatial_patch_size: 14,
  spatial_merge_size: 2,
  temporal_patch_size: 2,
} as const;

/** A full config.json around a preset's vision_config. */
export const hfConfig = (architecture: string, modelType: string, vision: Readonly<Record<string, unknown>>): Record<string, unknown> => ({
  architectures: [architecture],
  model_type: modelType,
  vision_config: { model_type: modelType, ...vision },
});

/** Upstream's names for a Qwen2-family tower. */
export interface Qwen2Names {
  /** The registry id, e.g. 'qwen2-vl'; `family` is how people write it, e.g. 'Qwen2-VL'. */
  readonly id: string;
  readonly family: string;
  /** config.json `model_type`, the `architectures` entry of its checkpoints, and the vision tower's class. */
  readonly modelType: string;
  readonly architecture: string;
  readonly visionClass: string;
}

/** A Qwen2-family tower's config reading and graph builders. */
export interface Qwen2Tower<C extends BaseVisionConfig> {
  parseConfig(json: unknown): C;
  configToJson(config: C): Record<string, unknown>;
  buildDynamicGraph(config: C, params: ParameterSource, options: GraphOptions): GraphBuilder;
  buildPaddedGraph(config: C, params: ParameterSource, bucket: Bucket, options: GraphOptions): GraphBuilder;
}

/** The registry descriptor of a Qwen2-family tower: only image_embeds, the Qwen2 processor; presets are vision_config blocks. */
export function qwen2Descriptor<C extends BaseVisionConfig>(names: Qwen2Names, tower: Qwen2Tower<C>, presets: Readonly<Record<string, Readonly<Record<string, unknown>>>>): ModelDescriptor<C> {
  return {
    id: names.id,
    title: `${names.family} vision tower (${names.visionClass})`,
    modelTypes: [names.modelType],
    parseConfig: (json) => tower.parseConfig(json),
    configToJson: (config) => tower.configToJson(config),
    outputs: () => [{ name: 'image_embeds', tokenAxis: 0 }],
    processor: QWEN2_VL_PROCESSOR,
    processorDefaults: qwen2Processor,
    buildDynamic: (config, params, options) => tower.buildDynamicGraph(config, params, options),
    buildPadded: (config, params, bucket, options) => tower.buildPaddedGraph(config, params, bucket, options),
    presets: Object.fromEntries(Object.entries(presets).map(([name, vision]) => [name, hfConfig(names.architecture, names.modelType, vision)])),
  };
}
