// The Qwen2-VL vision tower (`Qwen2VisionTransformerPretrainedModel`, transformers
// modeling_qwen2_vl.py @ 00b676f8): its descriptor for the registry, and config, presets and
// graphs (dynamic and padded buckets) for direct use.

import type { ModelDescriptor } from '../../src/model.js';
import { qwen2Descriptor } from '../shared/qwen2.js';
import { configToJson, parseConfig, type Qwen2VLConfig } from './config.js';
import { buildDynamicGraph } from './dynamic.js';
import { buildPaddedGraph } from './padded.js';
import { PRESETS, TINY } from './presets.js';

export { parseConfig, configToJson, type Qwen2VLConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, type PaddedGraphOptions } from './padded.js';
export { PRESETS } from './presets.js';
export { hfConfig, QWEN2_VL_PROCESSOR, qwen2Processor } from '../shared/qwen2.js';
export type { Bucket } from '../shared/graph-io.js';

/** Registered as qwen2-vl; synth presets are the released 2B and 7B towers and the qwen2vl_tiny golden's shape. */
export const qwen2VL: ModelDescriptor<Qwen2VLConfig> = qwen2Descriptor(
  { id: 'qwen2-vl', family: 'Qwen2-VL', modelType: 'qwen2_vl', architecture: 'Qwen2VLForConditionalGeneration', visionClass: 'Qwen2VisionTransformerPretrainedModel' },
  { parseConfig, configToJson, buildDynamicGraph, buildPaddedGraph },
  { 'qwen2-vl-2b': PRESETS['2b'], 'qwen2-vl-7b': PRESETS['7b'], 'qwen2-vl-tiny': TINY },
);
