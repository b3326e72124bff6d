// The Qwen2-VL vision tower's configuration, parsed once with defaults and invariants.
// Mirrors transformers `Qwen2VLVisionConfig` (configuration_qwen2_vl.py @ 018c8e03); field names
// follow config.json's `vision_config`. Beware upstream's names: `embed_dim` is the tower width
// and `hidden_size` the merger's OUTPUT width (the language model's).

import { readTower, towerToJson, VisionConfigReader, type BaseVisionConfig, type TowerKeys } from '../shared/config.js';

export interface Qwen2VLConfig extends BaseVisionConfig {
  readonly mlpRatio: number;
  /** Block MLP width: int(E · mlp_ratio). */
  readonly intermediateSize: number;
  readonly layerNormEps: number; // 1e-6, hard-coded upstream
}

/** `embed_dim` (class default 1280) is the tower width; `hidden_size` (the output) has no default right for every model. */
const KEYS: TowerKeys = { width: 'embed_dim', widthDefault: 1280, out: 'hidden_size' };
const MLP_RATIO = 4;

/**
 * Parses a Hugging Face config: a full Qwen2-VL config with the tower under `vision_config`,
 * or a bare vision config. Throws `invalid_config` naming the field.
 */
export function parseConfig(json: unknown): Qwen2VLConfig {
  const read = VisionConfigReader.of(json);
  read.oneOf('hidden_act', 'quick_gelu', ['quick_gelu']);
  const tower = readTower(read, KEYS);
  const mlpRatio = read.positive('mlp_ratio', MLP_RATIO);
  const intermediateSize = Math.floor(tower.hiddenSize * mlpRatio); // Python int() of a positive float
  if (intermediateSize < 1) throw read.error('mlp_ratio', `embed_dim ${tower.hiddenSize} · mlp_ratio ${mlpRatio} leaves no MLP width`);
  return { ...tower, mlpRatio, intermediateSize, layerNormEps: 1e-6 };
}

/** The config as upstream names it (for metadata_props and package manifests). */
export function configToJson(config: Qwen2VLConfig): Record<string, unknown> {
  return { ...towerToJson(config, KEYS), mlp_ratio: config.mlpRatio, hidden_act: 'quick_gelu' };
}
