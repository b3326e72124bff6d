// The small layers every Qwen vision tower is made of, named by the builder's scopes so that
// each parameter is its checkpoint key (`blocks.3.attn.qkv.weight`). Mirrors the vision classes
// of transformers' modeling_qwen2_vl.py / modeling_qwen2_5_vl.py (@ 00b676f8) and
// modeling_qwen3_vl.py (@ 00709b86): PatchEmbed, VisionAttention, LayerNorm / Qwen2RMSNorm.

import { linear as quantizableLinear, type LinearRole } from '../../src/onnx/linear.js';
import type { DataType, Graph, Value } from '../../src/onnx/index.js';
import { convertFloatBytes } from '../../src/dtype.js';
import type { FloatDType } from '../../src/model.js';
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
 * (spec §2.3/§2.4) → [N, H], in the residual stream's scale (`streamScale`). Qwen3-VL's has a
 * bias, Qwen2-VL's and Qwen2.5-VL's do not.
 */
export function patchEmbed(g: Graph, shape: PatchShape, pixelValues: Value, bias: boolean): Value {
  return g.scope('patch_embed', () =>
    g.scope('proj', () => {
      const { hiddenSize: H, inChannels: C, temporalPatchSize: T, patchSize: P } = shape;
      const scale = streamScale(pixelValues.dtype);
      const weight = op.reshape(scaledParam(g, 'weight', [H, C, T, P, P], pixelValues.dtype as FloatDType, scale), [H, shape.patchDim]); // [H, C·T·P·P]
      return op.gemmTransB(pixelValues, weight, bias ? scaledParam(g, 'bias', [H], pixelValues.dtype as FloatDType, scale) : undefined); // [N, H]
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

/**
 * nn.LayerNorm `name` over the last axis of the residual stream (affine, float32 statistics).
 * The stream is held at `streamScale` s; LN(s·x; s²·eps) = LN(x; eps), so eps is scaled too and
 * the result is exactly upstream's.
 */
export function layerNorm(g: Graph, name: string, x: Value, eps: number): Value {
  return g.scope(name, () => {
    const width = x.dim(-1) as number;
    return op.layerNorm(x, g.param('weight', [width]), g.param('bias', [width]), eps * streamScale(x.dtype) ** 2);
  });
}

// ---- half precision -----------------------------------------------------------------------
// Upstream's half-precision vision towers overflow in their residual stream (Qwen2-VL /
// Qwen2.5-VL: the last blocks' MLP output passes float16's 65504 and the sum becomes ±inf;
// vLLM #13817, transformers #33294, llama.cpp #17534). vitgraph holds a float16 stream at
// s = 2⁻⁸ instead: the patch embedding and every branch's output projection store their weights
// and biases times s, so the stream and the branch outputs carry s·x (±1.7·10⁷ of real range),
// and the norms that read the stream take s²·eps, which makes their output exactly upstream's.
// Scaling by a power of two is exact but for values below float16's normal range (< 0.016
// real, kept to ~1.5·10⁻⁵ absolute). bfloat16 has float32's range: no scale.

/** The power of two the residual stream is held at in `dtype`: 2⁻⁸ in float16, else 1. */
export const streamScale = (dtype: DataType): number => (dtype === 'float16' ? 2 ** -8 : 1);

/** Parameter `name` [shape] stored times `scale` (`<name>.scaled` when scaled). */
function scaledParam(g: Graph, name: string, shape: readonly number[], dtype: FloatDType, scale: number): Value {
  if (scale === 1) return g.param(name, shape);
  return g.derivedParams(name, shape, [{ suffix: 'scaled', dtype, shape }], (w) => {
    const scaled = w.map((v) => v * scale);
    return [convertFloatBytes(new Uint8Array(scaled.buffer), 'float32', dtype)];
  })[0]!;
}

/** Linear `name` whose output lands in the residual stream: x → s·(x @ wᵀ + b), s = streamScale. */
export function streamLinear(g: Graph, name: string, x: Value, outFeatures: number, role: LinearRole): Value {
  const scale = streamScale(x.dtype);
  if (scale === 1) return linear(g, name, x, outFeatures, role);
  return g.scope(name, () =>
    op.gemmTransB(x, scaledParam(g, 'weight', [outFeatures, x.dim(-1) as number], x.dtype as FloatDType, scale), scaledParam(g, 'bias', [outFeatures], x.dtype as FloatDType, scale)),
  );
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
    const normed = op.div(x32, op.sqrt(op.add(meanSquare, g.scalar('float32', eps * streamScale(x.dtype) ** 2)))); // s-invariant, as layerNorm
    return op.mul(op.cast(normed, x.dtype), g.param('weight', [width]));
  });
}

/** The parts of a pre-norm block a tower supplies: its norm (LayerNorm or RMSNorm, by name), attention and MLP. */
export interface BlockParts {
  readonly norm: (name: 'norm1' | 'norm2', x: Value) => Value;
  readonly attention: (normed: Value) => Value;
  readonly mlp: (normed: Value) => Value;
}

/** The pre-norm transformer block every tower uses: h = x + attn(norm1(x)), then h + mlp(norm2(h)), the MLP under the `mlp` scope. */
export function preNormBlock(g: Graph, x: Value, { norm, attention, mlp }: BlockParts): Value {
  const h = op.add(x, attention(norm('norm1', x)));
  const normed2 = norm('norm2', h);
  return op.add(
    h,
    g.scope('mlp', () => mlp(normed2)),
  );
}

/**
 * Fused QKV → rotary on q, k → segment attention → output projection (`attn.qkv`, `attn.proj`):
 * x [N, H] → [N, H] in the stream's scale. q, k, v stay [1, N, H], the layout the fused ops take.
 */
export function selfAttention(g: Graph, shape: AttentionShape, x: Value, rotary: RotaryLayout, attention: SegmentAttention): Value {
  return g.scope('attn', () => {
    const H = shape.hiddenSize;
    const qkv = op.reshape(linear(g, 'qkv', x, 3 * H, 'attention.qkv'), [1, -1, 3 * H]); // [1, N, 3H]
    const [q, k, v] = op.split(qkv, 2, [H, H, H]) as [Value, Value, Value]; // 3 × [1, N, H]
    const o = attention(applyRotary(shape, q, rotary), applyRotary(shape, k, rotary), v); // [1, N, H]
    return streamLinear(g, 'proj', op.reshape(o, [-1, H]), H, 'attention.out'); // [N, H]
  });
}

/**
 * Rotate-half rotary embedding (`apply_rotary_pos_emb_vision`) as one fused op on x [1, N, H]:
 * x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁], each half turned by θ. Float32 as
 * upstream computes it; a half-precision x is widened for it and rounded back once.
 */
function applyRotary(shape: AttentionShape, x: Value, rotary: RotaryLayout): Value {
  const rotated = op.rotaryEmbedding(op.cast(x, 'float32'), rotary.positions, rotary.cos, rotary.sin, { heads: shape.numHeads });
  return op.cast(rotated, x.dtype); // [1, N, H]
}

/** Groups each merge unit (m² consecutive rows, one m×m block) into one row: [N, H] → [N/m², m²·H]. */
export function groupMergeUnits(x: Value, mergeUnit: number): Value {
  return op.reshape(x, [-1, mergeUnit * (x.dim(-1) as number)]);
}

/** What the Qwen2 patch merger is sized by: tower width E, merge unit m², output width O. */
export interface MergerShape {
  readonly hiddenSize: number;
  readonly mergeUnit: number;
  readonly outHiddenSize: number;
}

/**
 * `PatchMerger` after its per-patch norm: each merge unit (4 consecutive rows) → one 4E row
 * → mlp.0 → exact GELU → mlp.2 → [N/4, O]. Qwen2-VL's (ln_q a LayerNorm) and Qwen2.5-VL's
 * (ln_q an RMSNorm); `Qwen2VLPatchMerger` / `Qwen2_5_VLPatchMerger`.
 */
export function patchMerger(g: Graph, config: MergerShape, normed: Value): Value {
  const width = config.hiddenSize * config.mergeUnit;
  return g.scope('mlp', () => {
    const hidden = op.gelu(linear(g, '0', groupMergeUnits(normed, config.mergeUnit), width, 'merger.in'), 'none'); // [N/4, 4E]
    return linear(g, '2', hidden, config.outHiddenSize, 'merger.out'); // [N/4, O]
  });
}
