// The Qwen3.5 vision tower (`Qwen3_5VisionModel`, transformers modeling_qwen3_5.py @ d8c1e284):
// the Qwen3-VL tower with the deepstack mergers deleted, read from a Qwen3.5 config.json
// (model_type qwen3_5 or qwen3_5_moe; the MoE checkpoints share the tower). Only image_embeds.

import type { ModelDescriptor } from '../../src/model.js';
import { configToJson, parseConfig, type VisionConfig } from '../qwen3-vl/config.js';
import { qwen3VL } from '../qwen3-vl/index.js';
import { PRESETS } from './presets.js';

export { PRESETS } from './presets.js';

/** Qwen3-VL's graphs, processor and checks; its own config reading, outputs and presets. */
export const qwen35: ModelDescriptor<VisionConfig> = {
  ...qwen3VL,
  id: 'qwen3.5',
  title: 'Qwen3.5 vision tower (Qwen3_5VisionModel)',
  modelTypes: ['qwen3_5', 'qwen3_5_moe'],
  parseConfig: (json) => parseConfig(json, 'qwen3.5'),
  configToJson: (config) => {
    const { deepstack_visual_indexes: _none, ...json } = configToJson(config);
    return { ...json, model_type: 'qwen3_5' };
  },
  presets: PRESETS,
};
