// The Qwen2.5-VL vision tower's configuration, parsed once with defaults and invariants.
// Mirrors transformers `Qwen2_5_VLVisionConfig` (configuration_qwen2_5_vl.py @ 018c8e03); field
// names follow config.json's `vision_config`. Here `hidden_size` IS the tower width and
// `out_hidden_size` the merger's output width (unlike Qwen2-VL).

import { headDimOf, VisionConfigReader } from '../shared/config.js';

export interface Qwen25VLConfig {
  readonly depth: number;
  readonly hiddenSize: number; // E
  readonly intermediateSize: number; // gate/up/down width
  readonly numHeads: number;
  readonly headDim: number; // E / numHeads
  readonly inChannels: number;
  readonly patchSize: number; // P
  readonly temporalPatchSize: number; // Tp
  readonly spatialMergeSize: number; // m
  readonly outHiddenSize: number; // O, the language model's width
  /** Window edge in pixels (112 released). */
  readonly windowSize: number;
  /** Window edge in merged tokens: (window_size // m) // P, the upstream floor chain (4). */
  readonly windowMergedSide: number;
  /** Window edge in patches: m · windowMergedSide (8). */
  readonly windowPatchSide: number;
  /** 0-based blocks attending over whole frames; every other block attends within its window. */
  readonly fullAttBlockIndexes: readonly number[];
  readonly rmsNormEps: number; // 1e-6, hard-coded upstream
  readonly ropeTheta: number; // 10000, hard-coded upstream
  /** One patch row of pixel_values: C·Tp·P² (1176). */
  readonly patchDim: number;
  /** Patches per merged token: m² (4). */
  readonly mergeUnit: number;
}

/**
 * `Qwen2_5_VLVisionConfig` defaults. The two widths have none: the class default hidden_size
 * (3584) is not the released tower width (1280), and out_hidden_size is the LM's width.
 */
const DEFAULTS = {
  depth: 32,
  intermediate_size: 3420,
  num_heads: 16,
  in_channels: 3,
  patch_size: 14,
  temporal_patch_size: 2,
  spatial_merge_size: 2,
  window_size: 112,
  fullatt_block_indexes: [7, 15, 23, 31],
  hidden_act: 'silu',
} as const;

/**
 * Parses a Hugging Face config: a full Qwen2.5-VL config with the tower under `vision_config`,
 * or a bare vision config. Throws `invalid_config` naming the field.
 */
export function parseConfig(json: unknown): Qwen25VLConfig {
  const read = VisionConfigReader.of(json);
  read.oneOf('hidden_act', DEFAULTS.hidden_act, ['silu']);
  const depth = read.int('depth', DEFAULTS.depth);
  const hiddenSize = read.int('hidden_size', undefined, 1, 'the tower width; the class default 3584 is not the released 1280');
  const numHeads = read.int('num_heads', DEFAULTS.num_heads);
  const inChannels = read.intAlias(['in_channels', 'in_chans'], DEFAULTS.in_channels);
  const patchSize = read.intAlias(['patch_size', 'spatial_patch_size'], DEFAULTS.patch_size);
  const temporalPatchSize = read.int('temporal_patch_size', DEFAULTS.temporal_patch_size);
  const spatialMergeSize = read.int('spatial_merge_size', DEFAULTS.spatial_merge_size);
  const windowSize = read.int('window_size', DEFAULTS.window_size);
  const windowMergedSide = Math.floor(Math.floor(windowSize / spatialMergeSize) / patchSize);
  if (windowMergedSide < 1) {
    throw read.error('window_size', `${windowSize} px is less than one merged token (${spatialMergeSize * patchSize} px); upstream would divide by zero`);
  }
  return {
    depth,
    hiddenSize,
    intermediateSize: read.int('intermediate_size', DEFAULTS.intermediate_size),
    numHeads,
    headDim: headDimOf(read, hiddenSize, 'hidden_size', numHeads),
    inChannels,
    patchSize,
    temporalPatchSize,
    spatialMergeSize,
    outHiddenSize: read.int('out_hidden_size', undefined, 1, 'the merger output width, the language model hidden size, must be set per model'),
    windowSize,
    windowMergedSide,
    windowPatchSide: spatialMergeSize * windowMergedSide,
    fullAttBlockIndexes: read.blockIndexes('fullatt_block_indexes', DEFAULTS.fullatt_block_indexes, depth),
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    patchDim: inChannels * temporalPatchSize * patchSize * patchSize,
    mergeUnit: spatialMergeSize * spatialMergeSize,
  };
}

/** The config as upstream names it (for metadata_props and package manifests). */
export function configToJson(config: Qwen25VLConfig): Record<string, unknown> {
  return {
    depth: config.depth,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_heads: config.numHeads,
    in_channels: config.inChannels,
    patch_size: config.patchSize,
    temporal_patch_size: config.temporalPatchSize,
    spatial_merge_size: config.spatialMergeSize,
    out_hidden_size: config.outHiddenSize,
    window_size: config.windowSize,
    fullatt_block_indexes: [...config.fullAttBlockIndexes],
    hidden_act: 'silu',
  };
}
