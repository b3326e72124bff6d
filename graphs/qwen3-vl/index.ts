// The Qwen3-VL vision tower (`Qwen3VLVisionModel`, transformers modeling_qwen3_vl.py @ 00709b86):
// its descriptor for the registry, and the pieces for direct use (config, graph builders, I/O).

import type { ModelDescriptor, OutputSpec } from '../../src/model.js';
import { checkConfigAgainstWeights, parseConfig, configToJson, type VisionConfig } from './config.js';
import { buildDynamicGraph } from './dynamic.js';
import { IO } from './io.js';
import { buildPaddedGraph } from './padded.js';
import { PRESETS } from './presets.js';
import { QWEN3_VL_PROCESSOR, qwen3Processor } from './processor.js';

export { parseConfig, configToJson, type VisionConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, type PaddedGraphOptions } from './padded.js';
export { IO, PADDED_IO } from './io.js';
export { PRESETS } from './presets.js';
export { QWEN3_VL_PROCESSOR, qwen3Processor } from './processor.js';

/** image_embeds [T, O]; deepstack_embeds [K, T, O] when the tower has the output. */
export function outputsOf(config: VisionConfig): OutputSpec[] {
  return [{ name: IO.imageEmbeds, tokenAxis: 0 }, ...(config.deepstackOutput ? [{ name: IO.deepstackEmbeds, tokenAxis: 1 }] : [])];
}

export const qwen3VL: ModelDescriptor<VisionConfig> = {
  id: 'qwen3-vl',
  title: 'Qwen3-VL vision tower (Qwen3VLVisionModel)',
  modelTypes: ['qwen3_vl', 'qwen3_vl_moe'],
  parseConfig: (json) => parseConfig(json, 'qwen3-vl'),
  configToJson,
  outputs: outputsOf,
  processor: QWEN3_VL_PROCESSOR,
  processorDefaults: qwen3Processor,
  checkWeights: checkConfigAgainstWeights,
  buildDynamic: (config, params, options) => buildDynamicGraph(config, params, options),
  buildPadded: (config, params, bucket, options) => buildPaddedGraph(config, params, bucket, options),
  presets: PRESETS,
};
