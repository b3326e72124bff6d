// `vision_config` blocks with the released Qwen2-VL tower shapes, for synthesized random-weight
// checkpoints. Sources: the `vision_config` of Qwen/Qwen2-VL-2B-Instruct and Qwen2-VL-7B-Instruct
// config.json on the Hugging Face Hub, as tabulated in shared/notes/qwen2-vl-vision-spec.md §1.1
// (depth 32, embed_dim 1280, 16 heads, mlp_ratio 4, in_chans 3, patch 14, merge 2, temporal 2;
// hidden_size = the LM width: 1536 for 2B, 3584 for 7B), and published module printouts of the
// 7B model (`Conv3d(3, 1280, (2, 14, 14), bias=False)`, `fc1` 1280 → 5120, `mlp.2` 5120 → 3584).

import { RELEASED_PATCHING } from '../shared/qwen2.js';

const TOWER = { ...RELEASED_PATCHING, embed_dim: 1280, mlp_ratio: 4, hidden_act: 'quick_gelu' } as const;

export const PRESETS: Readonly<Record<'2b' | '7b', Readonly<Record<string, unknown>>>> = {
  '2b': { ...TOWER, hidden_size: 1536 },
  '7b': { ...TOWER, hidden_size: 3584 },
};

/** The shape of the qwen2vl_tiny golden: for smoke tests and examples. */
export const TINY: Readonly<Record<string, unknown>> = { ...TOWER, hidden_size: 80, depth: 3, embed_dim: 64, mlp_ratio: 2.75, num_heads: 4 };
