// The graph I/O contract, declared once: names match the upstream processor's outputs and
// `Qwen3VLVisionModel.forward`'s arguments, so exported files drop into existing pipelines.

import { INPUTS, TOKEN_COUNT } from '../../src/contract.js';

export const IO = {
  ...INPUTS,
  /** float32 [N/4, out_hidden_size]: merged visual tokens, item by item. */
  imageEmbeds: 'image_embeds',
  /** float32 [K, N/4, out_hidden_size]: one row block per deepstack merger. */
  deepstackEmbeds: 'deepstack_embeds',
} as const;

/** Extra output of the padded (bucket) graphs. */
export const PADDED_IO = {
  /** int64 []: real merged tokens; rows past it in image_embeds/deepstack_embeds are padding. */
  tokenCount: TOKEN_COUNT,
} as const;
