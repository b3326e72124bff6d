// Released Qwen3-VL towers' shapes, as config.json objects for `vitgraph synth`
// (notes/qwen3-vl-vision-spec.md §1.2: Qwen3-VL-2B/4B share one tower, 8B and larger another).

const qwen3vl = (vision: Record<string, unknown>): Record<string, unknown> => ({
  architectures: ['Qwen3VLForConditionalGeneration'],
  model_type: 'qwen3_vl',
  vision_config: {
    model_type: 'qwen3_vl',
    in_channels: 3,
    patch_size: 16,
    temporal_patch_size: 2,
    spatial_merge_size: 2,
    num_position_embeddings: 2304,
    hidden_act: 'gelu_pytorch_tanh',
    initializer_range: 0.02,
    ...vision,
  },
});

export const PRESETS: Readonly<Record<string, Record<string, unknown>>> = {
  '2b': qwen3vl({ depth: 24, hidden_size: 1024, intermediate_size: 4096, num_heads: 16, out_hidden_size: 2048, deepstack_visual_indexes: [5, 11, 17] }),
  '8b': qwen3vl({ depth: 27, hidden_size: 1152, intermediate_size: 4304, num_heads: 16, out_hidden_size: 4096, deepstack_visual_indexes: [8, 16, 24] }),
  tiny: qwen3vl({ depth: 2, hidden_size: 64, intermediate_size: 128, num_heads: 4, out_hidden_size: 80, deepstack_visual_indexes: [0] }),
};
