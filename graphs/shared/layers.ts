// The small layers every Qwen vision tower is made of, named by the builder's scopes so that
// each parameter is its checkpoint key (`blocks.3.attn.qkv.weight`). Mirrors the vision classes
// of transformers' modeling_qwen2_vl.py / modeling_qwen2_5_vl.py (@ 00b676f8) and
// modeling_qwen3_vl.py (@ 00709b86): PatchEmbed, VisionAttention, LayerNorm / Qwen2RMSNorm.

import { FLOAT_LINEAR, linear as quantizableLinear } from '../../src/onnx/linear.js';
import type { DataType, Graph, Value } from '../../src/onnx/index.js';
import { f32ToBf16, f32ToF16 } from '../../src/weights/dtype.js';
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
 * says (float, or quantized at export), unless `float` keeps this layer in float.
 */
export function linear(g: Graph, name: string, x: Value, outFeatures: number, options: { float?: boolean } = {}): Value {
  return g.scope(name, () => quantizableLinear(g, x, outFeatures, options.float ? FLOAT_LINEAR : g.linearScheme));
}

/**
 * Patch mergers keep float Linears in quantized exports: they write what the language model reads,
 * and on the 2B-shaped tower quantizing them adds about a sixth of int8's error (rel L2 2.35e-2 →
 * 2.75e-2) for a few percent of its time (bench/quant-results.md).
 */
export const MERGER_LINEAR = { float: true } as const;

/** nn.LayerNorm `name` over the last axis (affine, float32 statistics; parameters in x's dtype). */
export function layerNorm(g: Graph, name: string, x: Value, eps: number): Value {
  return g.scope(name, () => {
    const width = x.dim(-1) as number;
    return op.layerNorm(x, g.param('weight', [width], x.dtype), g.param('bias', [width], x.dtype), eps);
  });
}

// ---- mixed precision ----------------------------------------------------------------------
// In float16 and bfloat16 graphs the matmuls and attention run in that dtype, while the residual
// stream between blocks stays float32: upstream's half-precision vision towers overflow there
// (Qwen2-VL / Qwen2.5-VL: the last blocks' MLP output passes 65504 and the sum becomes ±inf,
// vLLM #13817, transformers #33294, llama.cpp #17534). Norms read the float32 stream and hand
// the branch its input in the compute dtype; each branch's output is widened before the add.

/** The residual stream's dtype: float32 whatever the compute dtype. */
export const STREAM = 'float32';

/** x + branch, in the stream's dtype. */
export const residualAdd = (x: Value, branch: Value): Value => op.add(x, op.cast(branch, x.dtype));

/**
 * The factor an MLP's output is computed at: 2⁻⁸ in float16 (its ±65504 becomes ±1.7·10⁷ of
 * real range; a power of two, so scaling is exact but for values below float16's normal range,
 * ~4·10⁻³ absolute at worst), 1 in every other dtype.
 */
export const mlpOutputScale = (dtype: DataType): number => (dtype === 'float16' ? 2 ** -8 : 1);

/** Linear `name` whose weight and bias are stored multiplied by `scale`: x → scale·(x @ wᵀ + b). */
export function scaledLinear(g: Graph, name: string, x: Value, outFeatures: number, scale: number): Value {
  if (scale === 1) return linear(g, name, x, outFeatures);
  return g.scope(name, () => {
    const k = x.dim(-1) as number;
    const scaled = (param: string, shape: readonly number[]): Value =>
      g.derivedParams(param, shape, [{ suffix: 'scaled', dtype: x.dtype, shape }], (w) => [halfBytes(w.map((v) => v * scale), x.dtype)])[0]!;
    return op.gemmTransB(x, scaled('weight', [outFeatures, k]), scaled('bias', [outFeatures]));
  });
}

/** The float32 value of an output computed at `scale` (see mlpOutputScale). */
export const unscaled = (g: Graph, y: Value, scale: number): Value => (scale === 1 ? op.cast(y, STREAM) : op.mul(op.cast(y, STREAM), g.scalar(STREAM, 1 / scale)));

function halfBytes(values: Float32Array, dtype: DataType): Uint8Array {
  const half = dtype === 'bfloat16' ? f32ToBf16(values) : f32ToF16(values);
  return new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
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
    return op.mul(op.cast(normed, x.dtype), g.param('weight', [width], x.dtype));
  });
}

/** Fused QKV → rotary on q, k → segment attention → output projection (`attn.qkv`, `attn.proj`). */
export function selfAttention(g: Graph, shape: AttentionShape, x: Value, rotary: RotaryLayout, attention: SegmentAttention): Value {
  return g.scope('attn', () => {
    const H = shape.hiddenSize;
    const [q, k, v] = op.split(linear(g, 'qkv', x, 3 * H), 1, [H, H, H]) as [Value, Value, Value]; // 3 × [N, H]
    const o = attention(applyRotary(shape, q, rotary), applyRotary(shape, k, rotary), v); // [N, H]
    return linear(g, 'proj', o, H);
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
