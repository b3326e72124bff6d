// The Qwen2.5-VL vision tower (`Qwen2_5_VisionTransformerPretrainedModel`, transformers
// modeling_qwen2_5_vl.py @ 00b676f8), with window attention in both graph kinds: its descriptor for
// the registry, and config, presets and graphs for direct use.

import { hfConfig, qwen2Processor } from '../qwen2-vl/index.js';
import type { ModelDescriptor } from '../../src/model.js';
import { configToJson, parseConfig, type Qwen25VLConfig } from './config.js';
import { buildDynamicGraph } from './dynamic.js';
import { buildPaddedGraph } from './padded.js';
import { PRESETS } from './presets.js';

export { parseConfig, configToJson, type Qwen25VLConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, type PaddedGraphOptions } from './padded.js';
export { PRESETS } from './presets.js';
export type { Bucket } from '../shared/graph-io.js';

const checkpointConfig = (vision: Readonly<Record<string, unknown>>): Record<string, unknown> => hfConfig('Qwen2_5_VLForConditionalGeneration', 'qwen2_5_vl', vision);

/** Qwen2.5-VL uses the Qwen2-VL processor (same class, same released preprocessor_config.json). */
export const qwen25VL: ModelDescriptor<Qwen25VLConfig> = {
  id: 'qwen2.5-vl',
  title: 'Qwen2.5-VL vision tower (Qwen2_5_VisionTransformerPretrainedModel)',
  modelTypes: ['qwen2_5_vl'],
  parseConfig,
  configToJson,
  outputs: () => [{ name: 'image_embeds', tokenAxis: 0 }],
  processorDefaults: qwen2Processor,
  buildDynamic: (config, params, options) => buildDynamicGraph(config, params, options),
  buildPadded: (config, params, bucket, options) => buildPaddedGraph(config, params, bucket, options),
  presets: {
    'qwen2.5-vl-3b': checkpointConfig(PRESETS['3b']),
    'qwen2.5-vl-7b': checkpointConfig(PRESETS['7b']),
    // The shape of the qwen2_5vl_tiny golden: for smoke tests and examples.
    'qwen2.5-vl-tiny': checkpointConfig({ ...PRESETS['3b'], depth: 4, hidden_size: 64, intermediate_size: 176, num_heads: 4, out_hidden_size: 80, fullatt_block_indexes: [1, 3] }),
  },
};
