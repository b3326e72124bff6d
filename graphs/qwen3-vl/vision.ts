// The Qwen3-VL vision tower, in data-flow order:
// patch embed → + learned positions → blocks (pre-norm attention with 2-D rotary, MLP)
// → deepstack mergers tapped after selected blocks → final merger.
// Mirrors transformers `Qwen3VLVisionModel.forward` (modeling_qwen3_vl.py @ 00709b86).
// Graph-variant specifics (where the patch layout and attention segments come from) are
// passed in as a `PatchLayout` and a `SegmentAttention`; the layers are graphs/shared/layers.ts.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { SegmentAttention } from '../shared/attention.js';
import { groupMergeUnits, layerNorm, linear, patchEmbed, preNormBlock, type BlockParts, selfAttention, streamLinear, streamScale } from '../shared/layers.js';
import type { RotaryLayout } from '../shared/layout.js';
import type { VisionConfig } from './config.js';

export type { SegmentAttention };

/** Per-patch facts derived from grid_thw, in pixel-row (merge-window) order. */
export interface PatchLayout extends RotaryLayout {
  /** Four bilinear taps into the learned position table: indexes [N] int64, weights [N, 1] float32. */
  readonly positionTaps: readonly { readonly index: Value; readonly weight: Value }[];
}

export interface TowerOutputs {
  readonly merged: Value; // [N/4, O]
  readonly deepstack: readonly Value[]; // K × [N/4, O]
}

/** Runs the tower on `pixelValues` [N, C·Tp·P²] (dtype = the export dtype). */
export function visionTower(g: Graph, config: VisionConfig, pixelValues: Value, layout: PatchLayout, attention: SegmentAttention): TowerOutputs {
  let x = op.add(patchEmbed(g, config, pixelValues, true), positionEmbedding(g, config, layout)); // [N, H] at the stream's scale
  // Each block is pre-norm: x + attn(norm1(x)), then + mlp(norm2(x)) (`Qwen3VLVisionBlock`).
  const block: BlockParts = {
    norm: (name, v) => layerNorm(g, name, v, config.layerNormEps),
    attention: (normed) => selfAttention(g, config, normed, layout, attention),
    mlp: (normed) => mlp(g, config, normed),
  };
  const deepstack: Value[] = [];
  for (let i = 0; i < config.depth; i++) {
    x = g.scope('blocks', () => g.scope(i, () => preNormBlock(g, x, block)));
    // Upstream appends deepstack features in block order; merger j belongs to the j-th listed index.
    const tap = config.deepstackVisualIndexes.indexOf(i);
    if (tap >= 0) deepstack.push(g.scope('deepstack_merger_list', () => g.scope(tap, () => patchMerger(g, config, x, 'postshuffle'))));
  }
  const merged = g.scope('merger', () => patchMerger(g, config, x, 'preshuffle'));
  return { merged, deepstack };
}

/** `fast_pos_embed_interpolate`: bilinear (align-corners) sample of the G×G table per patch. */
function positionEmbedding(g: Graph, config: VisionConfig, layout: PatchLayout): Value {
  return g.scope('pos_embed', () => {
    const table = g.param('weight', [config.numPositionEmbeddings, config.hiddenSize]); // [G², H]
    const terms = layout.positionTaps.map(({ index, weight }) => op.mul(op.cast(op.gather(table, index), 'float32'), weight)); // 4 × [N, H]
    const sum = terms.reduce((total, term) => op.add(total, term)); // [N, H] float32
    const scale = streamScale(table.dtype);
    return op.cast(scale === 1 ? sum : op.mul(sum, g.scalar('float32', scale)), table.dtype);
  });
}

/** linear_fc2(gelu(linear_fc1(x))), landing in the stream's scale. */
function mlp(g: Graph, config: VisionConfig, x: Value): Value {
  return streamLinear(g, 'linear_fc2', op.gelu(linear(g, 'linear_fc1', x, config.intermediateSize, 'mlp.in'), config.blockGelu), config.hiddenSize, 'mlp.out');
}

/**
 * `Qwen3VLVisionPatchMerger`: groups each 2×2 window (4 consecutive rows) into one 4H row.
 * 'preshuffle' (final merger) normalizes each patch over H before grouping; 'postshuffle'
 * (deepstack mergers) normalizes the grouped row over 4H. Both use exact (erf) GELU.
 */
function patchMerger(g: Graph, config: VisionConfig, x: Value, norm: 'preshuffle' | 'postshuffle'): Value {
  const width = config.hiddenSize * config.mergeUnit;
  const grouped =
    norm === 'preshuffle' ? groupMergeUnits(layerNorm(g, 'norm', x, config.layerNormEps), config.mergeUnit) : layerNorm(g, 'norm', groupMergeUnits(x, config.mergeUnit), config.layerNormEps);
  return linear(g, 'linear_fc2', op.gelu(linear(g, 'linear_fc1', grouped, width, 'merger.in'), 'none'), config.outHiddenSize, 'merger.out'); // [N/4, O]
}
