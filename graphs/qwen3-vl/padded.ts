// The padded fixed-shape variant: one graph per token bucket, every dim a number, so a CUDA
// graph can capture it. Items are packed at the front of pixel_values; the rows after
// Σ t·h·w are padding. Unlike a pad-and-mask-the-padding scheme, attention stays
// per segment: a block-diagonal bias keeps items, frame groups and padding apart, so real
// tokens get exactly the numbers of the dynamic graph.
//
// CUDA-graph shape (checked by test/padded-structure): no Loop/If/Scan, no NonZero/Range,
// every Reshape/Expand target a constant; grid_thw only ever feeds values, never shapes.

import { GraphBuilder, op, type ParameterSource, type Value } from '../../src/onnx/index.js';
import { invalidArgument } from '../../src/errors.js';
import type { VisionConfig } from './config.js';
import { declareOutputs } from './dynamic.js';
import { IO, PADDED_IO } from './io.js';
import { patchCoordinates, patchLayout, type PatchCoordinates } from './layout.js';
import { visionTower, type SegmentAttention } from './vision.js';

export interface Bucket {
  /** Pre-merge patch rows (Nmax), a multiple of the merge unit (4). */
  readonly maxPatches: number;
  /** grid_thw rows (Imax); unused rows are zero. */
  readonly maxItems: number;
}

/** Default grid rows per bucket: one per 64 patches (a 128×128 px image), at least 1. */
export const defaultMaxItems = (maxPatches: number): number => Math.max(1, Math.floor(maxPatches / 64));

export function bucket(maxPatches: number, maxItems = defaultMaxItems(maxPatches), config?: VisionConfig): Bucket {
  const unit = config?.mergeUnit ?? 4;
  if (!Number.isInteger(maxPatches) || maxPatches < unit || maxPatches % unit !== 0) {
    throw invalidArgument('max patches', `a positive multiple of ${unit}`, maxPatches);
  }
  if (!Number.isInteger(maxItems) || maxItems < 1) throw invalidArgument('max items', 'an integer ≥ 1', maxItems);
  return { maxPatches, maxItems };
}

export interface PaddedGraphOptions {
  dtype?: 'float32' | 'float16';
}

/**
 * pixel_values float32 [Nmax, C·Tp·P²] + grid_thw int64 [Imax, 3]
 * → image_embeds float32 [Nmax/4, O], deepstack_embeds float32 [K, Nmax/4, O],
 *   token_count int64 [] (real tokens: the first token_count rows of each output are valid).
 */
export function buildPaddedGraph(config: VisionConfig, params: ParameterSource, { maxPatches, maxItems }: Bucket, options: PaddedGraphOptions = {}): GraphBuilder {
  const dtype = options.dtype ?? 'float32';
  const g = new GraphBuilder({ name: `qwen3_vl_vision_padded_${maxPatches}`, params, paramDType: dtype });
  const pixelValues = g.input(IO.pixelValues, 'float32', [maxPatches, config.patchDim]);
  const grid = g.input(IO.gridThw, 'int64', [maxItems, 3]);

  const patchIndex = g.constant('int64', [maxPatches], Array.from({ length: maxPatches }, (_, i) => BigInt(i)), 'patch_index'); // [Nmax]
  const coords = patchCoordinates(g, config, grid, patchIndex);
  const tower = visionTower(g, config, op.cast(pixelValues, dtype), patchLayout(g, config, coords, patchIndex), blockDiagonalAttention(g, config, coords, dtype));
  declareOutputs(g, config, tower);
  const tokens = op.div(op.reduceSum(op.cast(coords.valid, 'int64'), [0]), g.scalar('int64', config.mergeUnit));
  g.output(tokens, PADDED_IO.tokenCount);
  return g;
}

/**
 * Fused MultiHeadAttention over the whole bucket with an additive bias [1, 1, Nmax, Nmax]:
 * 0 within a segment, the dtype's lowest finite value across segments. Padding rows form
 * their own segment (finite, discarded). On CUDA the bias selects the memory-efficient
 * kernel, which reads the bias but never stores [heads, Nmax, Nmax] scores.
 */
function blockDiagonalAttention(g: GraphBuilder, config: VisionConfig, coords: PatchCoordinates, dtype: 'float32' | 'float16'): SegmentAttention {
  const bias = g.scope('segments', () => {
    const same = op.equal(op.unsqueeze(coords.segment, [1]), op.unsqueeze(coords.segment, [0])); // [Nmax, Nmax]
    const lowest = dtype === 'float16' ? -65504 : -3.4028234663852886e38;
    return op.unsqueeze(op.where(same, g.scalar(dtype, 0), g.scalar(dtype, lowest)), [0, 1]); // [1, 1, Nmax, Nmax]
  });
  return (q, k, v) => {
    const batch = (x: Value): Value => op.unsqueeze(x, [0]); // [Nmax, H] → [1, Nmax, H]
    return op.squeeze(op.multiHeadAttention(batch(q), batch(k), batch(v), { heads: config.numHeads, attentionBias: bias }), [0]);
  };
}
