// Qwen3.5 tower shapes for `vitgraph synth`. Every released Qwen3.5 model shares one tower with the
// Qwen3-VL-8B shape (Qwen3_5VisionConfig defaults: depth 27, hidden 1152, MLP 4304, 16 heads, 16-px
// patches, 2304 positions, gelu_pytorch_tanh) without DeepStack; out_hidden_size is the language
// model's hidden size: 5120 for Qwen3.5-27B, 4096 for Qwen3.5-397B-A17B (their config.json
// text_config.hidden_size).

import { PRESETS as QWEN3_VL } from '../qwen3-vl/presets.js';

type Json = Record<string, unknown>;

/** A Qwen3.5 config.json around a Qwen3-VL preset's tower, without its deepstack taps. */
function qwen35(base: Json, modelType: 'qwen3_5' | 'qwen3_5_moe', vision: Json): Json {
  const { deepstack_visual_indexes: _none, ...tower } = base.vision_config as Json;
  return {
    architectures: [modelType === 'qwen3_5' ? 'Qwen3_5ForConditionalGeneration' : 'Qwen3_5MoeForConditionalGeneration'],
    model_type: modelType,
    vision_config: { ...tower, model_type: modelType, ...vision },
  };
}

export const PRESETS: Readonly<Record<string, Json>> = {
  'qwen3.5-27b': qwen35(QWEN3_VL['8b']!, 'qwen3_5', { out_hidden_size: 5120 }),
  'qwen3.5-397b-a17b': qwen35(QWEN3_VL['8b']!, 'qwen3_5_moe', { out_hidden_size: 4096 }),
  // The shape of the qwen3_5_tiny golden: for smoke tests and examples.
  'qwen3.5-tiny': qwen35(QWEN3_VL['8b']!, 'qwen3_5', { depth: 3, hidden_size: 64, intermediate_size: 176, num_heads: 4, out_hidden_size: 80 }),
};
