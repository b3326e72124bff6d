// The Qwen2-VL vision tower, in data-flow order:
// patch embed (no bias, no learned positions) → blocks (LayerNorm, attention with 2-D rotary,
// QuickGELU MLP) → merger (ln_q per patch → 2×2 grouping → mlp.0 → GELU → mlp.2).
// Mirrors transformers `Qwen2VisionTransformerPretrainedModel.forward` (modeling_qwen2_vl.py
// @ 00b676f8). The graph variant supplies the rotary tables and the per-frame attention.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { SegmentAttention } from '../shared/attention.js';
import { layerNorm, linear, patchEmbed, patchMerger, preNormBlock, type BlockParts, selfAttention, streamLinear } from '../shared/layers.js';
import type { RotaryLayout } from '../shared/layout.js';
import type { Qwen2VLConfig } from './config.js';

/** Runs the tower on `pixelValues` [N, C·Tp·P²] (dtype = the export dtype) → merged tokens [N/4, O]. */
export function visionTower(g: Graph, config: Qwen2VLConfig, pixelValues: Value, rotary: RotaryLayout, attention: SegmentAttention): Value {
  let x = patchEmbed(g, config, pixelValues, false); // [N, E] at the stream's scale
  for (let i = 0; i < config.depth; i++) x = g.scope('blocks', () => g.scope(i, () => visionBlock(g, config, x, rotary, attention)));
  return g.scope('merger', () => patchMerger(g, config, layerNorm(g, 'ln_q', x, config.layerNormEps)));
}

/** `Qwen2VLVisionBlock`: x + attn(norm1(x)), then + mlp(norm2(x)). */
function visionBlock(g: Graph, config: Qwen2VLConfig, x: Value, rotary: RotaryLayout, attention: SegmentAttention): Value {
  const fc = (normed: Value): Value => streamLinear(g, 'fc2', quickGelu(g, linear(g, 'fc1', normed, config.intermediateSize, 'mlp.in')), config.hiddenSize, 'mlp.out');
  const parts: BlockParts = { norm: (name, v) => layerNorm(g, name, v, config.layerNormEps), attention: (normed) => selfAttention(g, config, normed, rotary, attention), mlp: (normed) => fc(normed) };
  return preNormBlock(g, x, parts);
}

/** `QuickGELUActivation`: z·σ(1.702·z). */
function quickGelu(g: Graph, z: Value): Value {
  return op.mul(z, op.sigmoid(op.mul(z, g.scalar(z.dtype, 1.702))));
}
