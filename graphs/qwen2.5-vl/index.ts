// The Qwen2.5-VL vision tower: config, presets and graphs (dynamic and padded buckets), with
// window attention in both.

export { parseConfig, configToJson, type Qwen25VLConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, type PaddedGraphOptions } from './padded.js';
export { PRESETS } from './presets.js';
export type { Bucket } from '../shared/inputs.js';
