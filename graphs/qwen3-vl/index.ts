// The Qwen3-VL vision tower: config, graphs (dynamic and padded buckets), export, packages,
// and the encoder-specific checks of runtime inputs.

import type { TensorInfo } from '../../src/runtime/session.js';
import type { HostTensor } from '../../src/tensor.js';
import { checkEncoderInputs } from './inputs.js';
import { IO } from './io.js';

export { parseConfig, configToJson, type VisionConfig } from './config.js';
export { buildDynamicGraph, type DynamicGraphOptions } from './dynamic.js';
export { buildPaddedGraph, bucket, defaultMaxItems, type Bucket, type PaddedGraphOptions } from './padded.js';
export { exportModel, DEFAULT_BUCKETS, DEFAULT_OPSET, type ExportOptions, type ExportResult } from './export.js';
export { openPackage, MANIFEST, type Manifest, type ModelPackage } from './package.js';
export { openModelDirectory, checkpointParameters, zeroParameters } from './checkpoint.js';
export { checkEncoderInputs, type EncoderInputs } from './inputs.js';
export { IO, PADDED_IO } from './io.js';
export { synthCheckpoint } from './synth.js';

/**
 * `vitgraph run`/`bench` hook: when a graph takes the encoder's dynamic inputs, checks
 * pixel_values against grid_thw on the host first (clear errors instead of ORT's).
 */
export function encoderFeedCheck(inputs: readonly TensorInfo[], feeds: Record<string, HostTensor>): void {
  const pixels = inputs.find((i) => i.name === IO.pixelValues);
  const grid = inputs.find((i) => i.name === IO.gridThw);
  const pixelValues = feeds[IO.pixelValues];
  const gridThw = feeds[IO.gridThw];
  if (!pixels || !grid || !pixelValues || !gridThw || typeof pixels.shape[0] === 'number') return; // padded graphs are checked by the bucket runner
  const patchDim = pixels.shape[1];
  if (typeof patchDim === 'number') checkEncoderInputs({ pixelValues, gridThw }, patchDim);
}
