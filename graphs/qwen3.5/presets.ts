// Qwen3.5 tower shapes for `vitgraph synth`. Every released Qwen3.5 model shares one tower with the
// Qwen3-VL-8B shape (Qwen3_5VisionConfig defaults: depth 27, hidden 1152, MLP 4304, 16 heads, 16-px
// patches, 2304 positions, gelu_pytorch_tanh); out_hidden_size is the language model's hidden size:
// 5120 for Qwen3.5-27B, 4096 for Qwen3.5-397B-A17B (their config.json text_config.hidden_size).

const qwen35 = (outHiddenSize: number, modelType: 'qwen3_5' | 'qwen3_5_moe'): Record<string, unknown> => ({
  architectures: [modelType === 'qwen3_5' ? 'Qwen3_5ForConditionalGeneration' : 'Qwen3_5MoeForConditionalGeneration'],
  model_type: modelType,
  vision_config: {
    model_type: modelType,
    depth: 27,
    hidden_size: 1152,
    intermediate_size: 4304,
    num_heads: 16,
    in_channels: 3,
    patch_size: 16,
    temporal_patch_size: 2,
    spatial_merge_size: 2,
    num_position_embeddings: 2304,
    out_hidden_size: outHiddenSize,
    hidden_act: 'gelu_pytorch_tanh',
    initializer_range: 0.02,
  },
});

export const PRESETS: Readonly<Record<string, Record<string, unknown>>> = {
  'qwen3.5-27b': qwen35(5120, 'qwen3_5'),
  'qwen3.5-397b-a17b': qwen35(4096, 'qwen3_5_moe'),
  // The shape of the qwen3_5_tiny golden: for smoke tests and examples.
  'qwen3.5-tiny': tiny(),
};

function tiny(): Record<string, unknown> {
  const config = qwen35(80, 'qwen3_5');
  return { ...config, vision_config: { ...(config.vision_config as object), depth: 3, hidden_size: 64, intermediate_size: 176, num_heads: 4 } };
}
