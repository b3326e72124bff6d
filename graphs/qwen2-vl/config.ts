// The Qwen2-VL vision tower's configuration, parsed once with defaults and invariants.
// Mirrors transformers `Qwen2VLVisionConfig` (configuration_qwen2_vl.py @ 018c8e03); field names
// follow config.json's `vision_config`. Beware upstream's names: `embed_dim` is the tower width
// and `hidden_size` the merger's OUTPUT width (the language model's).

import { headDimOf, VisionConfigReader } from '../shared/config.js';

export interface Qwen2VLConfig {
  readonly depth: number;
  /** Tower width E (upstream `embed_dim`). */
  readonly hiddenSize: number;
  readonly mlpRatio: number;
  /** Block MLP width: int(E · mlp_ratio). */
  readonly intermediateSize: number;
  readonly numHeads: number;
  readonly headDim: number; // E / numHeads
  readonly inChannels: number;
  readonly patchSize: number; // P
  readonly temporalPatchSize: number; // Tp
  readonly spatialMergeSize: number; // m
  /** Merger output width O (upstream `hidden_size`), the language model's width. */
  readonly outHiddenSize: number;
  readonly layerNormEps: number; // 1e-6, hard-coded upstream
  readonly ropeTheta: number; // 10000, hard-coded upstream
  /** One patch row of pixel_values: C·Tp·P² (1176). */
  readonly patchDim: number;
  /** Patches per merged token: m² (4). */
  readonly mergeUnit: number;
}

/** `Qwen2VLVisionConfig` defaults (the output width has none that is right for every model). */
const DEFAULTS = {
  depth: 32,
  embed_dim: 1280,
  mlp_ratio: 4,
  num_heads: 16,
  in_channels: 3,
  patch_size: 14,
  temporal_patch_size: 2,
  spatial_merge_size: 2,
  hidden_act: 'quick_gelu',
} as const;

/**
 * Parses a Hugging Face config: a full Qwen2-VL config with the tower under `vision_config`,
 * or a bare vision config. Throws `invalid_config` naming the field.
 */
export function parseConfig(json: unknown): Qwen2VLConfig {
  const read = VisionConfigReader.of(json);
  read.oneOf('hidden_act', DEFAULTS.hidden_act, ['quick_gelu']);
  const depth = read.int('depth', DEFAULTS.depth);
  const hiddenSize = read.int('embed_dim', DEFAULTS.embed_dim);
  const numHeads = read.int('num_heads', DEFAULTS.num_heads);
  const mlpRatio = read.positive('mlp_ratio', DEFAULTS.mlp_ratio);
  const intermediateSize = Math.floor(hiddenSize * mlpRatio); // Python int() of a positive float
  if (intermediateSize < 1) throw read.error('mlp_ratio', `embed_dim ${hiddenSize} · mlp_ratio ${mlpRatio} leaves no MLP width`);
  const inChannels = read.intAlias(['in_channels', 'in_chans'], DEFAULTS.in_channels);
  const patchSize = read.intAlias(['patch_size', 'spatial_patch_size'], DEFAULTS.patch_size);
  const temporalPatchSize = read.int('temporal_patch_size', DEFAULTS.temporal_patch_size);
  const spatialMergeSize = read.int('spatial_merge_size', DEFAULTS.spatial_merge_size);
  return {
    depth,
    hiddenSize,
    mlpRatio,
    intermediateSize,
    numHeads,
    headDim: headDimOf(read, hiddenSize, 'embed_dim', numHeads),
    inChannels,
    patchSize,
    temporalPatchSize,
    spatialMergeSize,
    outHiddenSize: read.int('hidden_size', undefined, 1, 'the merger output width, the language model hidden size, must be set per model'),
    layerNormEps: 1e-6,
    ropeTheta: 10000,
    patchDim: inChannels * temporalPatchSize * patchSize * patchSize,
    mergeUnit: spatialMergeSize * spatialMergeSize,
  };
}

/** The config as upstream names it (for metadata_props and package manifests). */
export function configToJson(config: Qwen2VLConfig): Record<string, unknown> {
  return {
    depth: config.depth,
    embed_dim: config.hiddenSize,
    hidden_size: config.outHiddenSize,
    mlp_ratio: config.mlpRatio,
    num_heads: config.numHeads,
    in_channels: config.inChannels,
    patch_size: config.patchSize,
    temporal_patch_size: config.temporalPatchSize,
    spatial_merge_size: config.spatialMergeSize,
    hidden_act: 'quick_gelu',
  };
}
