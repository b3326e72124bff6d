// The padded fixed-shape variant (one graph per token bucket, every dim a number, no control
// flow): items packed at the front, padding after Σ t·h·w, attention kept per frame by a
// block-diagonal bias that also keeps a non-finite item from reaching the others
// (graphs/shared/attention.ts).

import { op, type GraphBuilder, type ParameterSource } from '../../src/onnx/index.js';
import { paddedAttention } from '../shared/attention.js';
import { declareImageEmbeds, declareTokenCount, paddedGraph, type Bucket, type PaddedGraphOptions } from '../shared/graph-io.js';
import { rotaryLayout } from '../shared/layout.js';
import type { Qwen2VLConfig } from './config.js';
import { visionTower } from './vision.js';

export type { PaddedGraphOptions };

/**
 * pixel_values float32 [Nmax, C·Tp·P²] + grid_thw int64 [Imax, 3]
 * → image_embeds float32 [Nmax/4, O], token_count int64 [] (the first token_count rows are real).
 */
export function buildPaddedGraph(config: Qwen2VLConfig, params: ParameterSource, bucket: Bucket, options: PaddedGraphOptions = {}): GraphBuilder {
  const { g, dtype, pixels, rowIndex, coords, slots } = paddedGraph('qwen2_vl', config, params, bucket, options);
  const attention = paddedAttention(g, config, coords, bucket, options.device ?? 'cpu', dtype, slots);
  declareImageEmbeds(g, visionTower(g, config, op.cast(pixels, dtype), rotaryLayout(g, config, coords, rowIndex), attention));
  declareTokenCount(g, config, coords.valid);
  return g;
}
