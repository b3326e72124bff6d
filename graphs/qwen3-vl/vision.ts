// The Qwen3-VL vision tower, in data-flow order:
// patch embed → + learned positions → blocks (pre-norm attention with 2-D rotary, MLP)
// → deepstack mergers tapped after selected blocks → final merger.
// Mirrors transformers `Qwen3VLVisionModel.forward` (modeling_qwen3_vl.py @ 00709b86).
// Graph-variant specifics (where the patch layout and attention segments come from) are
// passed in as a `PatchLayout` and a `SegmentAttention`.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { VisionConfig } from './config.js';

/** Per-patch facts derived from grid_thw, in pixel-row (merge-window) order. */
export interface PatchLayout {
  /** Four bilinear taps into the learned position table: indexes [N] int64, weights [N, 1] float32. */
  readonly positionTaps: readonly { readonly index: Value; readonly weight: Value }[];
  /** Rotary tables: cos/sin of each patch's angles θ = [row·inv_freq, col·inv_freq], [N, head_dim/2] float32. */
  readonly cos: Value;
  readonly sin: Value;
  /** [1, N] int64: row p of the tables belongs to patch p. */
  readonly positions: Value;
}

/** Attention restricted to segments: q, k, v [N, H] (rotated) → [N, H]. */
export type SegmentAttention = (q: Value, k: Value, v: Value) => Value;

export interface TowerOutputs {
  readonly merged: Value; // [N/4, O]
  readonly deepstack: readonly Value[]; // K × [N/4, O]
}

/** Runs the tower on `pixelValues` [N, C·Tp·P²] (dtype = the export dtype). */
export function visionTower(g: Graph, config: VisionConfig, pixelValues: Value, layout: PatchLayout, attention: SegmentAttention): TowerOutputs {
  let x = op.add(patchEmbed(g, config, pixelValues), positionEmbedding(g, config, layout)); // [N, H]
  const deepstack: Value[] = [];
  for (let i = 0; i < config.depth; i++) {
    x = g.scope('blocks', () => g.scope(i, () => visionBlock(g, config, x, layout, attention)));
    // Upstream appends deepstack features in block order; merger j belongs to the j-th listed index.
    const tap = config.deepstackVisualIndexes.indexOf(i);
    if (tap >= 0) deepstack.push(g.scope('deepstack_merger_list', () => g.scope(tap, () => patchMerger(g, config, x, 'postshuffle'))));
  }
  const merged = g.scope('merger', () => patchMerger(g, config, x, 'preshuffle'));
  return { merged, deepstack };
}

/** Conv3d with kernel = stride = (Tp, P, P) is one matmul per patch row (spec §2.3). */
function patchEmbed(g: Graph, config: VisionConfig, pixelValues: Value): Value {
  return g.scope('patch_embed', () =>
    g.scope('proj', () => {
      const { hiddenSize: H, inChannels: C, temporalPatchSize: T, patchSize: P } = config;
      const weight = op.reshape(g.param('weight', [H, C, T, P, P]), [H, config.patchDim]); // [H, C·T·P·P]
      return op.gemmTransB(pixelValues, weight, g.param('bias', [H])); // [N, H]
    }),
  );
}

/** `fast_pos_embed_interpolate`: bilinear (align-corners) sample of the G×G table per patch. */
function positionEmbedding(g: Graph, config: VisionConfig, layout: PatchLayout): Value {
  return g.scope('pos_embed', () => {
    const table = g.param('weight', [config.numPositionEmbeddings, config.hiddenSize]); // [G², H]
    const terms = layout.positionTaps.map(({ index, weight }) => op.mul(op.cast(op.gather(table, index), 'float32'), weight)); // 4 × [N, H]
    return op.cast(terms.reduce((sum, term) => op.add(sum, term)), table.dtype);
  });
}

/** Pre-norm transformer block: x + attn(norm1(x)), then + mlp(norm2(x)). */
function visionBlock(g: Graph, config: VisionConfig, x: Value, layout: PatchLayout, attention: SegmentAttention): Value {
  const normed1 = layerNorm(g, config, 'norm1', x);
  const h = op.add(x, g.scope('attn', () => selfAttention(g, config, normed1, layout, attention)));
  const normed2 = layerNorm(g, config, 'norm2', h);
  return op.add(h, g.scope('mlp', () => mlp(g, config, normed2)));
}

function layerNorm(g: Graph, config: VisionConfig, name: string, x: Value): Value {
  return g.scope(name, () => {
    const width = x.dim(-1) as number;
    return op.layerNorm(x, g.param('weight', [width]), g.param('bias', [width]), config.layerNormEps);
  });
}

function linear(g: Graph, name: string, x: Value, outFeatures: number): Value {
  return g.scope(name, () => op.gemmTransB(x, g.param('weight', [outFeatures, x.dim(-1) as number]), g.param('bias', [outFeatures])));
}

/** Fused QKV → rotary on q, k → segment attention → output projection. */
function selfAttention(g: Graph, config: VisionConfig, x: Value, layout: PatchLayout, attention: SegmentAttention): Value {
  const H = config.hiddenSize;
  const [q, k, v] = op.split(linear(g, 'qkv', x, 3 * H), 1, [H, H, H]) as [Value, Value, Value]; // 3 × [N, H]
  const o = attention(applyRotary(config, q, layout), applyRotary(config, k, layout), v); // [N, H]
  return linear(g, 'proj', o, H);
}

/**
 * Rotate-half rotary embedding (`apply_rotary_pos_emb_vision`) as one fused op, in float32:
 * x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁], each half turned by θ.
 */
function applyRotary(config: VisionConfig, x: Value, layout: PatchLayout): Value {
  const rows = op.unsqueeze(op.cast(x, 'float32'), [0]); // [1, N, H]
  const rotated = op.rotaryEmbedding(rows, layout.positions, layout.cos, layout.sin, { heads: config.numHeads });
  return op.cast(op.squeeze(rotated, [0]), x.dtype); // [N, H]
}

function mlp(g: Graph, config: VisionConfig, x: Value): Value {
  return linear(g, 'linear_fc2', op.gelu(linear(g, 'linear_fc1', x, config.intermediateSize), config.blockGelu), config.hiddenSize);
}

/**
 * `Qwen3VLVisionPatchMerger`: groups each 2×2 window (4 consecutive rows) into one 4H row.
 * 'preshuffle' (final merger) normalizes each patch over H before grouping; 'postshuffle'
 * (deepstack mergers) normalizes the grouped row over 4H. Both use exact (erf) GELU.
 */
function patchMerger(g: Graph, config: VisionConfig, x: Value, norm: 'preshuffle' | 'postshuffle'): Value {
  const width = config.hiddenSize * config.mergeUnit;
  const group = (t: Value): Value => op.reshape(t, [-1, width]); // [N, H] → [N/4, 4H]
  const grouped = norm === 'preshuffle' ? group(layerNorm(g, config, 'norm', x)) : layerNorm(g, config, 'norm', group(x));
  return linear(g, 'linear_fc2', op.gelu(linear(g, 'linear_fc1', grouped, width), 'none'), config.outHiddenSize); // [N/4, O]
}
