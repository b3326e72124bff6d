// The Qwen2-VL vision tower (`Qwen2VisionTransformerPretrainedModel`, transformers
// modeling_qwen2_vl.py @ 00b676f8): its descriptor for the registry, and config, presets and
// graphs (dynamic and padded buckets) for direct use.

import { QWEN2_VL_PROCESSOR, type ProcessorParams } from '../../src/image/processor.js';
import type { Qwen25VLConfig } from '../qwen2.5-vl/config.js';
import type { ModelDescriptor } from '../../src/model.js';
import { configToJson, parseConfig, type Qwen2VLConfig } from './config.js';
import { buildDynamicGraph } from './dynamic.js';
import { buildPaddedGraph } from './padded.js';
import { PRESETS } from './presets.js';

export { parseConfig, configToJson, type Qwen2VLConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, type PaddedGraphOptions } from './padded.js';
export { PRESETS } from './presets.js';
export type { Bucket } from '../shared/graph-io.js';

/** A full config.json around a preset's vision_config. */
export const hfConfig = (architecture: string, modelType: string, vision: Readonly<Record<string, unknown>>): Record<string, unknown> => ({
  architectures: [architecture],
  model_type: modelType,
  vision_config: { model_type: modelType, ...vision },
});

/** The Qwen2-VL processor (Qwen2.5-VL ships the same) with the tower's patch, merge and temporal sizes. */
export const qwen2Processor = (config: Qwen2VLConfig | Qwen25VLConfig): ProcessorParams => ({
  ...QWEN2_VL_PROCESSOR,
  patchSize: config.patchSize,
  temporalPatchSize: config.temporalPatchSize,
  mergeSize: config.spatialMergeSize,
});

const checkpointConfig = (vision: Readonly<Record<string, unknown>>): Record<string, unknown> => hfConfig('Qwen2VLForConditionalGeneration', 'qwen2_vl', vision);

export const qwen2VL: ModelDescriptor<Qwen2VLConfig> = {
  id: 'qwen2-vl',
  title: 'Qwen2-VL vision tower (Qwen2VisionTransformerPretrainedModel)',
  modelTypes: ['qwen2_vl'],
  parseConfig,
  configToJson,
  outputs: () => [{ name: 'image_embeds', tokenAxis: 0 }],
  processorDefaults: qwen2Processor,
  buildDynamic: (config, params, options) => buildDynamicGraph(config, params, options),
  buildPadded: (config, params, bucket, options) => buildPaddedGraph(config, params, bucket, options),
  presets: {
    'qwen2-vl-2b': checkpointConfig(PRESETS['2b']),
    'qwen2-vl-7b': checkpointConfig(PRESETS['7b']),
    // The shape of the qwen2vl_tiny golden: for smoke tests and examples.
    'qwen2-vl-tiny': checkpointConfig({ ...PRESETS['2b'], depth: 3, embed_dim: 64, hidden_size: 80, mlp_ratio: 2.75, num_heads: 4 }),
  },
};
