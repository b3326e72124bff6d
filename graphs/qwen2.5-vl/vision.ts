// The Qwen2.5-VL vision tower, in data-flow order:
// patch embed (no bias, no learned positions) → blocks (RMSNorm, attention with 2-D rotary over a
// window or, in `fullatt_block_indexes`, the whole frame; SiLU-gated MLP) → merger (RMSNorm ln_q
// per patch → 2×2 grouping → mlp.0 → GELU → mlp.2).
// Mirrors transformers `Qwen2_5_VisionTransformerPretrainedModel.forward` (modeling_qwen2_5_vl.py
// @ 00b676f8). The graph variant supplies the rows' order, rotary tables and both attentions.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { SegmentAttention } from '../shared/attention.js';
import { linear, patchEmbed, patchMerger, preNormBlock, type BlockParts, rmsNorm, selfAttention, streamLinear } from '../shared/layers.js';
import type { RotaryLayout } from '../shared/layout.js';
import type { Qwen25VLConfig } from './config.js';

/** The two attention restrictions: within a window, or within the whole frame. */
export interface WindowedAttention {
  readonly window: SegmentAttention;
  readonly frame: SegmentAttention;
}

/** Runs the tower on `pixelValues` [N, C·Tp·P²] (rows in any order that keeps merge units whole) → [N/4, O]. */
export function visionTower(g: Graph, config: Qwen25VLConfig, pixelValues: Value, rotary: RotaryLayout, attention: WindowedAttention): Value {
  let x = patchEmbed(g, config, pixelValues, false); // [N, E] at the stream's scale
  for (let i = 0; i < config.depth; i++) {
    const restriction = config.fullAttBlockIndexes.includes(i) ? attention.frame : attention.window;
    x = g.scope('blocks', () => g.scope(i, () => visionBlock(g, config, x, rotary, restriction)));
  }
  return g.scope('merger', () => patchMerger(g, config, rmsNorm(g, 'ln_q', x, config.rmsNormEps)));
}

/** `Qwen2_5_VLVisionBlock`: x + attn(norm1(x)), then + mlp(norm2(x)). */
function visionBlock(g: Graph, config: Qwen25VLConfig, x: Value, rotary: RotaryLayout, attention: SegmentAttention): Value {
  const parts: BlockParts = {
    norm: (name, v) => rmsNorm(g, name, v, config.rmsNormEps),
    attention: (normed) => selfAttention(g, config, normed, rotary, attention),
    mlp: (normed) => gatedMlp(g, config, normed),
  };
  return preNormBlock(g, x, parts);
}

/** `Qwen2_5_VLMLP`: down_proj(silu(gate_proj(x)) ⊙ up_proj(x)), SiLU(z) = z·σ(z), landing in the stream's scale. */
function gatedMlp(g: Graph, config: Qwen25VLConfig, x: Value): Value {
  const gate = linear(g, 'gate_proj', x, config.intermediateSize, 'mlp.in');
  const up = linear(g, 'up_proj', x, config.intermediateSize, 'mlp.in');
  return streamLinear(g, 'down_proj', op.mul(op.mul(gate, op.sigmoid(gate)), up), config.hiddenSize, 'mlp.out');
}
