// Encoded image → uint8 RGB pixels with the browser's own decoder, the way the Node path (sharp)
// sees them: no colour management, alpha not premultiplied, then composited onto white with Pillow's
// arithmetic (flattenOnWhite, shared with Node). For PNG this is bit-identical to sharp; JPEG decoders
// may differ (test/web-browser.test.ts measures it).

import { invalidArgument, VitgraphError } from '../errors.js';
import { flattenOnWhite, type Pixels } from '../image/pixels.js';

/** An encoded image: a Blob or File, its bytes, or a URL to fetch it from. */
export type WebImageSource = Blob | Uint8Array | ArrayBuffer | string;

/** Decodes `source` to RGB: [height, width, 3] uint8. */
export async function decodeRgb(source: WebImageSource, label = 'image'): Promise<Pixels> {
  const blob = await toBlob(source, label);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch (cause) {
    throw new VitgraphError('invalid_file', `${label}: not a decodable image: expected a PNG, JPEG, WebP, GIF or AVIF the browser reads. Check the file type`, { path: label }, { cause });
  }
  try {
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { colorSpace: 'srgb', willReadFrequently: true });
    if (!context) throw new VitgraphError('unsupported', `${label}: this browser gives no 2D canvas to read pixels from`, { path: label });
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data; // [height, width, 4]
    const rgb = flattenOnWhite(new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.length), 4); // [height, width, 3]
    return { data: rgb, width, height, channels: 3 };
  } finally {
    bitmap.close();
  }
}

async function toBlob(source: WebImageSource, label: string): Promise<Blob> {
  if (source instanceof Blob) return source;
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return new Blob([source as BlobPart]);
  if (typeof source === 'string') {
    const response = await fetch(source);
    if (!response.ok) throw new VitgraphError('not_found', `${label}: ${source}: expected an image, got HTTP ${response.status}`, { path: source });
    return response.blob();
  }
  throw invalidArgument(`${label} source`, 'a Blob, File, Uint8Array, ArrayBuffer or URL', typeof source);
}
