// The padded fixed-shape variant: one graph per token bucket, every dim a number, so a CUDA
// graph can capture it. Items are packed at the front of pixel_values; the rows after
// Σ t·h·w are padding. Unlike a pad-and-mask-the-padding scheme, attention stays
// per segment: a block-diagonal bias keeps items, frame groups and padding apart, so real
// tokens get exactly the numbers of the dynamic graph (graphs/shared/attention.ts, which also
// keeps a non-finite item from reaching the others).
//
// CUDA-graph shape (checked by test/padded-structure): no Loop/If/Scan, no NonZero/Range,
// every Reshape/Expand target a constant; grid_thw only ever feeds values, never shapes.

import { op, type GraphBuilder, type ParameterSource } from '../../src/onnx/index.js';
import { paddedAttention } from '../shared/attention.js';
import { declareTokenCount, paddedGraph, type Bucket, type PaddedGraphOptions } from '../shared/graph-io.js';
import type { VisionConfig } from './config.js';
import { declareOutputs } from './dynamic.js';
import { patchLayout } from './layout.js';
import { visionTower } from './vision.js';

export type { Bucket } from '../shared/graph-io.js';

export type { PaddedGraphOptions };

/**
 * pixel_values float32 [Nmax, C·Tp·P²] + grid_thw int64 [Imax, 3]
 * → image_embeds float32 [Nmax/4, O], deepstack_embeds float32 [K, Nmax/4, O],
 *   token_count int64 [] (real tokens: the first token_count rows of each output are valid).
 */
export function buildPaddedGraph(config: VisionConfig, params: ParameterSource, bucket: Bucket, options: PaddedGraphOptions = {}): GraphBuilder {
  const { g, dtype, pixels, rowIndex, coords, slots } = paddedGraph('qwen3_vl', config, params, bucket, options);
  const attention = paddedAttention(g, config, coords, bucket, options.device ?? 'cpu', dtype, slots);
  declareOutputs(g, config, visionTower(g, config, op.cast(pixels, dtype), patchLayout(g, config, coords, rowIndex), attention));
  declareTokenCount(g, config, coords.valid);
  return g;
}
