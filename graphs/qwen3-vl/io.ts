// The graph I/O contract, declared once: names match the upstream processor's outputs and
// `Qwen3VLVisionModel.forward`'s arguments, so exported files drop into existing pipelines.

export const IO = {
  /** float32 [N, C·Tp·P²]: patch rows in merge-window order, columns (c, t, y, x). */
  pixelValues: 'pixel_values',
  /** int64 [I, 3]: (t, h, w) per item in patch units. */
  gridThw: 'grid_thw',
  /** float32 [N/4, out_hidden_size]: merged visual tokens, item by item. */
  imageEmbeds: 'image_embeds',
  /** float32 [K, N/4, out_hidden_size]: one row block per deepstack merger. */
  deepstackEmbeds: 'deepstack_embeds',
} as const;

/** Extra output of the padded (bucket) graphs. */
export const PADDED_IO = {
  /** int64 []: real merged tokens; rows past it in image_embeds/deepstack_embeds are padding. */
  tokenCount: 'token_count',
} as const;
