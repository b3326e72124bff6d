// The Qwen2.5-VL vision tower's configuration, parsed once with defaults and invariants.
// Mirrors transformers `Qwen2_5_VLVisionConfig` (configuration_qwen2_5_vl.py @ 018c8e03); field
// names follow config.json's `vision_config`. Here `hidden_size` IS the tower width and
// `out_hidden_size` the merger's output width (unlike Qwen2-VL).

import { readTower, towerToJson, VisionConfigReader, type BaseVisionConfig, type TowerKeys } from '../shared/config.js';

export interface Qwen25VLConfig extends BaseVisionConfig {
  readonly intermediateSize: number; // gate/up/down width
  /** Window edge in pixels (112 released). */
  readonly windowSize: number;
  /** Window edge in merged tokens: (window_size // m) // P, the upstream floor chain (4). */
  readonly windowMergedSide: number;
  /** Window edge in patches: m · windowMergedSide (8). */
  readonly windowPatchSide: number;
  /** 0-based blocks attending over whole frames; every other block attends within its window. */
  readonly fullAttBlockIndexes: readonly number[];
  readonly rmsNormEps: number; // 1e-6, hard-coded upstream
}

/**
 * Both widths are required: the class default hidden_size (3584) is not the released tower
 * width (1280), and out_hidden_size is the LM's width.
 */
const KEYS: TowerKeys = { width: 'hidden_size', widthDefault: undefined, out: 'out_hidden_size' };
const DEFAULTS = { intermediate_size: 3420, window_size: 112, fullatt_block_indexes: [7, 15, 23, 31] } as const;

/**
 * Parses a Hugging Face config: a full Qwen2.5-VL config with the tower under `vision_config`,
 * or a bare vision config. Throws `invalid_config` naming the field.
 */
export function parseConfig(json: unknown): Qwen25VLConfig {
  const read = VisionConfigReader.of(json);
  read.oneOf('hidden_act', 'silu', ['silu']);
  const tower = readTower(read, KEYS);
  const windowSize = read.int('window_size', DEFAULTS.window_size);
  const windowMergedSide = Math.floor(Math.floor(windowSize / tower.spatialMergeSize) / tower.patchSize);
  if (windowMergedSide < 1) {
    throw read.error('window_size', `${windowSize} px is less than one merged token (${tower.spatialMergeSize * tower.patchSize} px); upstream would divide by zero`);
  }
  return {
    ...tower,
    intermediateSize: read.int('intermediate_size', DEFAULTS.intermediate_size),
    windowSize,
    windowMergedSide,
    windowPatchSide: tower.spatialMergeSize * windowMergedSide,
    fullAttBlockIndexes: read.blockIndexes('fullatt_block_indexes', DEFAULTS.fullatt_block_indexes, tower.depth),
    rmsNormEps: 1e-6,
  };
}

/** The config as upstream names it (for metadata_props and package manifests). */
export function configToJson(config: Qwen25VLConfig): Record<string, unknown> {
  return {
    ...towerToJson(config, KEYS),
    intermediate_size: config.intermediateSize,
    window_size: config.windowSize,
    fullatt_block_indexes: [...config.fullAttBlockIndexes],
    hidden_act: 'silu',
  };
}
