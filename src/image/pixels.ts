// Decoded uint8 pixels and the two pure steps every decoder shares (sharp in Node, the platform's
// decoder in the browser): gray replicated to RGB, and alpha composited onto white as Pillow does.

/** Pixels, interleaved `[height, width, channels]`: 1 channel (gray) or 3 (RGB). */
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

/** Replicates a gray image to RGB; returns RGB pixels unchanged. */
export function toRgb(pixels: Pixels): Pixels {
  if (pixels.channels === 3) return pixels;
  const { data, width, height } = pixels;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, o = 0; i < data.length; i++, o += 3) {
    const v = data[i]!;
    rgb[o] = v;
    rgb[o + 1] = v;
    rgb[o + 2] = v;
  }
  return { data: rgb, width, height, channels: 3 };
}

/**
 * Drops the alpha channel of gray+alpha (2) or RGBA (4) pixels by compositing onto opaque white, in
 * place; returns a view of the compacted 1- or 3-channel pixels. Other channel counts pass through.
 *
 * Pillow `ImagingAlphaComposite` (what `convert_to_rgb` calls, with a white RGBA background) in its
 * 7-bit fixed point: with an opaque destination the blend is c·a + 255·(255 − a) scaled by 2^7,
 * then divided by 255 as (v + (v >> 8)) >> 8 after adding a half, then shifted back by 7.
 */
export function flattenOnWhite(data: Uint8Array, channels: number): Uint8Array {
  if (channels !== 2 && channels !== 4) return data;
  const colour = channels - 1;
  const pixels = data.length / channels;
  // Writing pixel i's colour at i·colour never overtakes the reads at i·channels.
  for (let i = 0; i < pixels; i++) {
    const a = data[i * channels + colour]!;
    for (let c = 0; c < colour; c++) data[i * colour + c] = compositeOnWhite(data[i * channels + c]!, a);
  }
  return data.subarray(0, pixels * colour);
}

function compositeOnWhite(value: number, alpha: number): number {
  const blended = (value * alpha + 255 * (255 - alpha)) << 7;
  const rounded = blended + (0x80 << 7);
  return (((rounded >> 8) + rounded) >> 8) >> 7;
}
