// The padded fixed-shape variant (one graph per token bucket, every dim a number, no control
// flow). Rows stay in input order and attention is restricted instead of permuted (spec §3.6.6):
// two block-diagonal biases, one by window id for the windowed blocks and one by frame for the
// blocks in fullatt_block_indexes. Padding rows form their own segment in both.

import { op, type GraphBuilder, type ParameterSource } from '../../src/onnx/index.js';
import { blockDiagonalAttention, paddedAttention } from '../shared/attention.js';
import { declareImageEmbeds, declareTokenCount, paddedGraph, type Bucket, type PaddedGraphOptions } from '../shared/graph-io.js';
import { rotaryLayout } from '../shared/layout.js';
import type { Qwen25VLConfig } from './config.js';
import { visionTower } from './vision.js';
import { windowIds } from './windows.js';

export type { PaddedGraphOptions };

/**
 * pixel_values float32 [Nmax, C·Tp·P²] + grid_thw int64 [Imax, 3]
 * → image_embeds float32 [Nmax/4, O], token_count int64 [] (the first token_count rows are real).
 */
export function buildPaddedGraph(config: Qwen25VLConfig, params: ParameterSource, bucket: Bucket, options: PaddedGraphOptions = {}): GraphBuilder {
  const { g, dtype, pixels, rowIndex, coords, slots } = paddedGraph('qwen2_5_vl', config, params, bucket, options);
  // A side holds at most Nmax patches, so Nmax + 1 exceeds any window count per side.
  const windows = windowIds(g, config, coords, bucket.maxPatches + 1);
  const attention = {
    frame: g.scope('frames', () => paddedAttention(g, config, coords, bucket, options.device ?? 'cpu', dtype, slots)),
    window: g.scope('windows', () => blockDiagonalAttention(g, config, windows, dtype)),
  };
  declareImageEmbeds(g, visionTower(g, config, op.cast(pixels, dtype), rotaryLayout(g, config, coords, rowIndex), attention));
  declareTokenCount(g, config, coords.valid);
  return g;
}
