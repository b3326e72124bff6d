// `vision_config` blocks with the released Qwen2.5-VL tower shapes, for synthesized random-weight
// checkpoints. Sources: the `vision_config` of Qwen/Qwen2.5-VL-3B-Instruct and
// Qwen2.5-VL-7B-Instruct config.json on the Hugging Face Hub, as tabulated in
// shared/notes/qwen2-vl-vision-spec.md §1.2 (depth 32, hidden_size 1280, intermediate_size 3420,
// 16 heads, window 112, full attention in blocks 7/15/23/31, out_hidden_size = the LM width:
// 2048 for 3B, 3584 for 7B), and a published module printout of the 3B model
// (`gate_proj` 1280 → 3420, merger `mlp.2` 5120 → 2048). The report's table says 3456 for the
// MLP width; the checkpoints hold 3420.

import { RELEASED_PATCHING } from '../shared/qwen2.js';

const TOWER = {
  ...RELEASED_PATCHING,
  hidden_size: 1280,
  intermediate_size: 3420,
  window_size: 112,
  fullatt_block_indexes: [7, 15, 23, 31],
  hidden_act: 'silu',
  tokens_per_second: 2,
} as const;

export const PRESETS: Readonly<Record<'3b' | '7b', Readonly<Record<string, unknown>>>> = {
  '3b': { ...TOWER, out_hidden_size: 2048 },
  '7b': { ...TOWER, out_hidden_size: 3584 },
};

/** The shape of the qwen2_5vl_tiny golden: for smoke tests and examples. */
export const TINY: Readonly<Record<string, unknown>> = { ...TOWER, out_hidden_size: 80, depth: 4, hidden_size: 64, intermediate_size: 176, num_heads: 4, fullatt_block_indexes: [1, 3] };
