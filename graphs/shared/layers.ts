// The small layers every Qwen vision tower is made of, named by the builder's scopes so that
// each parameter is its checkpoint key (`blocks.3.attn.qkv.weight`). Mirrors the vision classes
// of transformers' modeling_qwen2_vl.py / modeling_qwen2_5_vl.py (@ 00b676f8) and
// modeling_qwen3_vl.py (@ 00709b86): PatchEmbed, VisionAttention, LayerNorm / Qwen2RMSNorm.

import { linear as quantizableLinear, type LinearRole } from '../../src/onnx/linear.js';
import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { AttentionShape, SegmentAttention } from './attention.js';
import type { RotaryLayout } from './layout.js';

/** The patch embedding's shape: C·Tp·P² input columns to H. */
export interface PatchShape {
  readonly hiddenSize: number;
  readonly inChannels: number;
  readonly temporalPatchSize: number;
  readonly patchSize: number;
  readonly patchDim: number;
}

/**
 * `patch_embed.proj`: Conv3d with kernel = stride = (Tp, P, P) is one matmul per patch row
 * (spec §2.3/§2.4) → [N, H]. Qwen3-VL's has a bias, Qwen2-VL's and Qwen2.5-VL's do not.
 */
export function patchEmbed(g: Graph, shape: PatchShape, pixelValues: Value, bias: boolean): Value {
  return g.scope('patch_embed', () =>
    g.scope('proj', () => {
      const { hiddenSize: H, inChannels: C, temporalPatchSize: T, patchSize: P } = shape;
      const weight = op.reshape(g.param('weight', [H, C, T, P, P]), [H, shape.patchDim]); // [H, C·T·P·P]
      return op.gemmTransB(pixelValues, weight, bias ? g.param('bias', [H]) : undefined); // [N, H]
    }),
  );
}

/**
 * nn.Linear `name`: x [.., in] → [.., outFeatures], with bias, stored as the model's Linear scheme
 * says for its `role` (float, or quantized at export: see src/runtime/export.ts PRECISION).
 */
export function linear(g: Graph, name: string, x: Value, outFeatures: number, role: LinearRole): Value {
  return g.scope(name, () => quantizableLinear(g, x, outFeatures, g.linearScheme, { role }));
}

/** nn.LayerNorm `name` over the last axis (affine, float32 statistics). */
export function layerNorm(g: Graph, name: string, x: Value, eps: number): Value {
  return g.scope(name, () => {
    const width = x.dim(-1) as number;
    return op.layerNorm(x, g.param('weight', [width]), g.param('bias', [width]), eps);
  });
}

/**
 * `Qwen2RMSNorm` `name`: w ⊙ cast_back(x32 / √(mean(x32²) + eps)), statistics in float32,
 * weight only (used as is, not 1 + w). Decomposed (RMSNormalization is opset 23); ORT fuses it.
 */
export function rmsNorm(g: Graph, name: string, x: Value, eps: number): Value {
  return g.scope(name, () => {
    const width = x.dim(-1) as number;
    const x32 = op.cast(x, 'float32');
    const meanSquare = op.mul(op.reduceSum(op.mul(x32, x32), [-1], true), g.scalar('float32', 1 / width)); // [.., 1]
    const normed = op.div(x32, op.sqrt(op.add(meanSquare, g.scalar('float32', eps))));
    return op.mul(op.cast(normed, x.dtype), g.param('weight', [width]));
  });
}

/** Fused QKV → rotary on q, k → segment attention → output projection (`attn.qkv`, `attn.proj`). */
export function selfAttention(g: Graph, shape: AttentionShape, x: Value, rotary: RotaryLayout, attention: SegmentAttention): Value {
  return g.scope('attn', () => {
    const H = shape.hiddenSize;
    const [q, k, v] = op.split(linear(g, 'qkv', x, 3 * H, 'attention.qkv'), 1, [H, H, H]) as [Value, Value, Value]; // 3 × [N, H]
    const o = attention(applyRotary(shape, q, rotary), applyRotary(shape, k, rotary), v); // [N, H]
    return linear(g, 'proj', o, H, 'attention.out');
  });
}

/**
 * Rotate-half rotary embedding (`apply_rotary_pos_emb_vision`) as one fused op, in float32:
 * x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁], each half turned by θ.
 */
function applyRotary(shape: AttentionShape, x: Value, rotary: RotaryLayout): Value {
  const rows = op.unsqueeze(op.cast(x, 'float32'), [0]); // [1, N, H]
  const rotated = op.rotaryEmbedding(rows, rotary.positions, rotary.cos, rotary.sin, { heads: shape.numHeads });
  return op.cast(op.squeeze(rotated, [0]), x.dtype); // [N, H]
}

/** Groups each merge unit (m² consecutive rows, one m×m block) into one row: [N, H] → [N/m², m²·H]. */
export function groupMergeUnits(x: Value, mergeUnit: number): Value {
  return op.reshape(x, [-1, mergeUnit * (x.dim(-1) as number)]);
}
