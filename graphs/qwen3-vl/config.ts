// The vision tower's configuration, parsed once with defaults and invariants by the shared
// config reader (graphs/shared/config.ts). Mirrors transformers `Qwen3VLVisionConfig`
// (configuration_qwen3_vl.py); field names follow config.json's `vision_config`.

import { formatShape, invalidConfig } from '../../src/errors.js';
import { headDimOf, VisionConfigReader, type BaseVisionConfig } from '../shared/config.js';

export interface VisionConfig extends BaseVisionConfig {
  readonly intermediateSize: number; // block MLP width
  readonly numPositionEmbeddings: number; // G²
  readonly positionGridSize: number; // G
  readonly deepstackVisualIndexes: readonly number[];
  /** Whether the graph has a deepstack_embeds output (Qwen3-VL: always, maybe [0, T, O]; Qwen3.5: never). */
  readonly deepstackOutput: boolean;
  /** Block MLP activation: tanh-approximated GELU (gelu_pytorch_tanh) or exact GELU. */
  readonly blockGelu: 'tanh' | 'none';
  readonly layerNormEps: number; // 1e-6, hard-coded upstream
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

/**
 * Upper bounds on every size, checked before anything is sized from them. Each is far above any
 * published Qwen VL tower (2B/8B: depth 24/27, hidden 1024/1152, heads 16, MLP 4096/4304, out
 * 2048/4096, 48² positions) and small enough that tables sized from them fit in memory, so a
 * lying config.json fails at once instead of exhausting the heap.
 */
export const CONFIG_BOUNDS = {
  depth: 256,
  hidden_size: 65_536,
  intermediate_size: 262_144,
  num_heads: 1024,
  in_channels: 16,
  patch_size: 64,
  temporal_patch_size: 16,
  spatial_merge_size: 8,
  out_hidden_size: 65_536,
  num_position_embeddings: 2 ** 20,
} as const satisfies Record<Exclude<keyof typeof DEFAULTS, 'deepstack_visual_indexes' | 'hidden_act'>, number>;

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
  const read = VisionConfigReader.of(json);
  const int = (key: keyof typeof CONFIG_BOUNDS, why?: string): number => read.intIn(key, DEFAULTS[key], 1, CONFIG_BOUNDS[key], why);

  const depth = int('depth');
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_heads');
  const spatialMergeSize = int('spatial_merge_size');
  const numPositionEmbeddings = int('num_position_embeddings');
  const inChannels = int('in_channels');
  const patchSize = int('patch_size');
  const temporalPatchSize = int('temporal_patch_size');
  const outHiddenSize = read.intIn('out_hidden_size', undefined, 1, CONFIG_BOUNDS.out_hidden_size, 'the merger output width must be set per model');
  const headDim = headDimOf(read, hiddenSize, 'hidden_size', numHeads);

  const positionGridSize = Math.round(Math.sqrt(numPositionEmbeddings));
  if (positionGridSize * positionGridSize !== numPositionEmbeddings) {
    throw read.error('num_position_embeddings', `${numPositionEmbeddings} is not a perfect square`);
  }

  // Qwen3.5 (modeling_qwen3_5.py @ d8c1e284) is this tower with the deepstack mergers deleted.
  const deepstack = read.raw.deepstack_visual_indexes;
  if (family === 'qwen3.5' && deepstack !== undefined && !(Array.isArray(deepstack) && deepstack.length === 0)) {
    throw invalidConfig(`${read.path('deepstack_visual_indexes')}`, 'Qwen3.5 towers have no deepstack mergers', 'Remove the field, or set model_type to qwen3_vl');
  }
  const deepstackVisualIndexes = family === 'qwen3.5' ? [] : read.blockIndexes('deepstack_visual_indexes', DEFAULTS.deepstack_visual_indexes, depth);

  const blockGelu = GELU_OF_ACT[read.oneOf('hidden_act', DEFAULTS.hidden_act, Object.keys(GELU_OF_ACT))]!;

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

/** Shape of a checkpoint tensor by prefix-stripped name (undefined: not in the checkpoint). */
export type WeightShapes = (name: string) => readonly number[] | undefined;

/**
 * Checks `config` against the shapes a checkpoint header declares, before any table, graph or
 * buffer is sized from the config: a config.json that lies about the tower fails here, naming
 * the field, instead of growing tables from it. Tensors missing from the checkpoint are left to
 * the strict binder, which names them with near-miss suggestions.
 */
export function checkConfigAgainstWeights(config: VisionConfig, shapeOf: WeightShapes): void {
  const H = config.hiddenSize;
  const merged = H * config.mergeUnit;
  // Each tensor's dims with the config field that sizes them, in an order where each field is
  // pinned before a later tensor depends on it (H by patch_embed, then m by the merger, ...).
  type Dim = readonly [size: number, field: string];
  const expectations: [string, Dim[]][] = [
    [
      'patch_embed.proj.weight',
      [
        [H, 'hidden_size'],
        [config.inChannels, 'in_channels'],
        [config.temporalPatchSize, 'temporal_patch_size'],
        [config.patchSize, 'patch_size'],
        [config.patchSize, 'patch_size'],
      ],
    ],
    [
      'pos_embed.weight',
      [
        [config.numPositionEmbeddings, 'num_position_embeddings'],
        [H, 'hidden_size'],
      ],
    ],
    [
      'blocks.0.attn.qkv.weight',
      [
        [3 * H, 'hidden_size'],
        [H, 'hidden_size'],
      ],
    ],
    [
      'blocks.0.mlp.linear_fc1.weight',
      [
        [config.intermediateSize, 'intermediate_size'],
        [H, 'hidden_size'],
      ],
    ],
    [
      'merger.linear_fc1.weight',
      [
        [merged, 'spatial_merge_size'],
        [merged, 'spatial_merge_size'],
      ],
    ],
    [
      'merger.linear_fc2.weight',
      [
        [config.outHiddenSize, 'out_hidden_size'],
        [merged, 'spatial_merge_size'],
      ],
    ],
    ...config.deepstackVisualIndexes.map((_, j): [string, Dim[]] => [
      `deepstack_merger_list.${j}.linear_fc2.weight`,
      [
        [config.outHiddenSize, 'out_hidden_size'],
        [merged, 'spatial_merge_size'],
      ],
    ]),
  ];
  const hint = 'Check that config.json belongs to this checkpoint';
  for (const [name, dims] of expectations) {
    const shape = shapeOf(name);
    if (!shape) continue;
    const expected = dims.map(([size]) => size);
    const wrong = shape.length === dims.length ? dims.findIndex(([size], i) => shape[i] !== size) : 0;
    if (wrong >= 0) {
      const [, field] = dims[wrong]!;
      throw invalidConfig(field, `does not fit the checkpoint: expected ${name} of shape ${formatShape(expected)} (from the config), got ${formatShape(shape)}`, hint);
    }
  }
  // The last block and the last deepstack merger say whether the checkpoint holds that many.
  const lastBlock = `blocks.${config.depth - 1}.norm1.weight`;
  if (shapeOf('blocks.0.norm1.weight') && !shapeOf(lastBlock)) {
    throw invalidConfig('depth', `expected the checkpoint to hold blocks 0..${config.depth - 1}, got no ${lastBlock}`, hint);
  }
  const deepstack = config.deepstackVisualIndexes.length;
  const lastMerger = `deepstack_merger_list.${deepstack - 1}.linear_fc2.weight`;
  if (deepstack > 0 && shapeOf('merger.linear_fc2.weight') && !shapeOf(lastMerger)) {
    throw invalidConfig('deepstack_visual_indexes', `expected ${deepstack} deepstack mergers in the checkpoint, got no ${lastMerger}`, hint);
  }
}
