// The vision tower's configuration, parsed once with defaults and invariants.
// Mirrors transformers `Qwen3VLVisionConfig` (configuration_qwen3_vl.py); field names follow
// config.json's `vision_config`.

import { invalidConfig } from '../../src/errors.js';

export interface VisionConfig {
  readonly depth: number;
  readonly hiddenSize: number; // H
  readonly intermediateSize: number; // block MLP width
  readonly numHeads: number;
  readonly headDim: number; // H / numHeads
  readonly inChannels: number;
  readonly patchSize: number; // P
  readonly temporalPatchSize: number; // Tp
  readonly spatialMergeSize: number; // m
  readonly outHiddenSize: number; // O, the language model's width
  readonly numPositionEmbeddings: number; // G²
  readonly positionGridSize: number; // G
  readonly deepstackVisualIndexes: readonly number[];
  /** Whether the graph has a deepstack_embeds output (Qwen3-VL: always, maybe [0, T, O]; Qwen3.5: never). */
  readonly deepstackOutput: boolean;
  /** Block MLP activation: tanh-approximated GELU (gelu_pytorch_tanh) or exact GELU. */
  readonly blockGelu: 'tanh' | 'none';
  readonly layerNormEps: number; // 1e-6, hard-coded upstream
  readonly ropeTheta: number; // 10000, hard-coded upstream
  /** One patch row of pixel_values: C·Tp·P² (1536). */
  readonly patchDim: number;
  /** Patches per merged token: m² (4). */
  readonly mergeUnit: number;
}

const DEFAULTS = {
  depth: 27,
  hidden_size: 1152,
  intermediate_size: 4304,
  num_heads: 16,
  in_channels: 3,
  patch_size: 16,
  temporal_patch_size: 2,
  spatial_merge_size: 2,
  out_hidden_size: 3584,
  num_position_embeddings: 2304,
  deepstack_visual_indexes: [8, 16, 24],
  hidden_act: 'gelu_pytorch_tanh',
} as const;

const GELU_OF_ACT: Readonly<Record<string, 'tanh' | 'none'>> = {
  gelu_pytorch_tanh: 'tanh',
  gelu_new: 'tanh',
  gelu_fast: 'tanh',
  gelu: 'none',
};

/**
 * Parses a Hugging Face config: either a full Qwen3-VL config with the tower under
 * `vision_config`, or a bare vision config. Throws `invalid_config` naming the field.
 */
export function parseConfig(json: unknown, family: 'qwen3-vl' | 'qwen3.5' = 'qwen3-vl'): VisionConfig {
  if (!isRecord(json)) throw invalidConfig('(root)', 'expected a JSON object');
  const raw = isRecord(json.vision_config) ? json.vision_config : json;
  const where = raw === json ? '' : 'vision_config.';

  const int = (key: keyof typeof DEFAULTS, min = 1): number => {
    const value = raw[key] ?? DEFAULTS[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw invalidConfig(where + key, `expected an integer ≥ ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };

  const depth = int('depth');
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_heads');
  const spatialMergeSize = int('spatial_merge_size');
  const numPositionEmbeddings = int('num_position_embeddings');
  const inChannels = int('in_channels');
  const patchSize = int('patch_size');
  const temporalPatchSize = int('temporal_patch_size');

  if (raw.out_hidden_size === undefined) {
    throw invalidConfig(where + 'out_hidden_size', 'missing (the merger output width must be set per model)');
  }
  const outHiddenSize = int('out_hidden_size');

  if (hiddenSize % numHeads !== 0) {
    throw invalidConfig(where + 'num_heads', `${numHeads} heads do not divide hidden_size ${hiddenSize}`);
  }
  const headDim = hiddenSize / numHeads;
  if (headDim % 4 !== 0) {
    throw invalidConfig(where + 'hidden_size', `head_dim ${headDim} must be a multiple of 4 (2-D rotary uses head_dim/4 frequencies per axis)`);
  }

  const positionGridSize = Math.round(Math.sqrt(numPositionEmbeddings));
  if (positionGridSize * positionGridSize !== numPositionEmbeddings) {
    throw invalidConfig(where + 'num_position_embeddings', `${numPositionEmbeddings} is not a perfect square`);
  }

  // Qwen3.5 (modeling_qwen3_5.py @ d8c1e284) is this tower with the deepstack mergers deleted.
  if (family === 'qwen3.5' && raw.deepstack_visual_indexes !== undefined && !(Array.isArray(raw.deepstack_visual_indexes) && raw.deepstack_visual_indexes.length === 0)) {
    throw invalidConfig(where + 'deepstack_visual_indexes', 'Qwen3.5 towers have no deepstack mergers', 'Remove the field, or set model_type to qwen3_vl');
  }
  const deepstack = family === 'qwen3.5' ? [] : (raw.deepstack_visual_indexes ?? DEFAULTS.deepstack_visual_indexes);
  if (!Array.isArray(deepstack) || !deepstack.every((i) => Number.isInteger(i))) {
    throw invalidConfig(where + 'deepstack_visual_indexes', `expected a list of block indexes, got ${JSON.stringify(deepstack)}`);
  }
  const deepstackVisualIndexes = deepstack as number[];
  for (const i of deepstackVisualIndexes) {
    if (i < 0 || i >= depth) throw invalidConfig(where + 'deepstack_visual_indexes', `index ${i} is outside blocks 0..${depth - 1}`);
  }
  if (new Set(deepstackVisualIndexes).size !== deepstackVisualIndexes.length) {
    throw invalidConfig(where + 'deepstack_visual_indexes', `duplicate index in ${JSON.stringify(deepstackVisualIndexes)}`);
  }

  const act = raw.hidden_act ?? DEFAULTS.hidden_act;
  const blockGelu = typeof act === 'string' ? GELU_OF_ACT[act] : undefined;
  if (!blockGelu) {
    throw invalidConfig(where + 'hidden_act', `unsupported activation ${JSON.stringify(act)}; expected one of ${Object.keys(GELU_OF_ACT).join(', ')}`);
  }

  return {
    depth,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numHeads,
    headDim,
    inChannels,
    patchSize,
    temporalPatchSize,
    spatialMergeSize,
    outHiddenSize,
    numPositionEmbeddings,
    positionGridSize,
    deepstackVisualIndexes,
    deepstackOutput: family === 'qwen3-vl',
    blockGelu,
    layerNormEps: 1e-6,
    ropeTheta: 10000,
    patchDim: inChannels * temporalPatchSize * patchSize * patchSize,
    mergeUnit: spatialMergeSize * spatialMergeSize,
  };
}

/** The config as upstream names it (for metadata_props and package manifests). */
export function configToJson(config: VisionConfig): Record<string, unknown> {
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
    num_position_embeddings: config.numPositionEmbeddings,
    deepstack_visual_indexes: [...config.deepstackVisualIndexes],
    hidden_act: config.blockGelu === 'tanh' ? 'gelu_pytorch_tanh' : 'gelu',
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
