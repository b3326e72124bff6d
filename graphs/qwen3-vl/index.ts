// The Qwen3-VL vision tower: config, graphs (dynamic and padded buckets), export, packages,
// and the encoder-specific checks of runtime inputs.

export { parseConfig, configToJson, type VisionConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, bucket, defaultMaxItems, type Bucket, type PaddedGraphOptions } from './padded.js';
export { exportModel, DEFAULT_BUCKETS, DEFAULT_OPSET, type ExportOptions, type ExportResult } from './export.js';
export { openPackage, MANIFEST, type Manifest, type ModelPackage } from './package.js';
export { openModelDirectory, checkpointParameters, zeroParameters } from './checkpoint.js';
export { checkEncoderInputs, type EncoderInputs } from './inputs.js';
export { IO, PADDED_IO } from './io.js';
export { synthCheckpoint } from './synth.js';
