// The Qwen2.5-VL vision tower (`Qwen2_5_VisionTransformerPretrainedModel`, transformers
// modeling_qwen2_5_vl.py @ 00b676f8), with window attention in both graph kinds: its descriptor for
// the registry, and config, presets and graphs for direct use.

import type { ModelDescriptor } from '../../src/model.js';
import { qwen2Descriptor } from '../shared/qwen2.js';
import { configToJson, parseConfig, type Qwen25VLConfig } from './config.js';
import { buildDynamicGraph } from './dynamic.js';
import { buildPaddedGraph } from './padded.js';
import { PRESETS, TINY } from './presets.js';

export { parseConfig, configToJson, type Qwen25VLConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, type PaddedGraphOptions } from './padded.js';
export { PRESETS } from './presets.js';
export type { Bucket } from '../shared/graph-io.js';

/** Qwen2.5-VL uses the Qwen2-VL processor (same class, same released preprocessor_config.json). */
export const qwen25VL: ModelDescriptor<Qwen25VLConfig> = qwen2Descriptor(
  { id: 'qwen2.5-vl', family: 'Qwen2.5-VL', modelType: 'qwen2_5_vl', architecture: 'Qwen2_5_VLForConditionalGeneration', visionClass: 'Qwen2_5_VisionTransformerPretrainedModel' },
  { parseConfig, configToJson, buildDynamicGraph, buildPaddedGraph },
  { 'qwen2.5-vl-3b': PRESETS['3b'], 'qwen2.5-vl-7b': PRESETS['7b'], 'qwen2.5-vl-tiny': TINY },
);
