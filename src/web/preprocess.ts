// Decoded RGB images → `pixel_values` + `grid_thw` for the browser, with the same pure modules as the
// Node path (src/image/preprocess.ts): smart_resize, Pillow-exact bicubic, then normalise and patchify
// (patchGroup). Nothing here touches the DOM, so Node tests can hold it against `preprocess()`.

import { invalidArgument } from '../errors.js';
import { patchGroup } from '../image/patchify.js';
import type { Pixels } from '../image/pixels.js';
import { checkProcessor, patchDim, sizeFactor, type ProcessorParams } from '../image/processor.js';
import { resizeBicubic } from '../image/resample.js';
import { smartResize } from '../image/smart-resize.js';

export interface PixelBudget {
  /** Image pixel budget after resizing; defaults to the processor's. */
  minPixels?: number;
  maxPixels?: number;
}

export interface PreprocessedImage {
  /** [1, gh, gw]: one temporal group, patch rows, patch columns. */
  gridThw: [number, number, number];
  /** Rows of `pixelValues` this image owns: gh·gw. */
  rows: number;
  /** The image after smart_resize and bicubic: [height, width, 3] uint8. */
  resized: Pixels;
}

export interface PreprocessedImages {
  /** [N, patchDim] float32, images concatenated in order. */
  pixelValues: Float32Array;
  /** Values per row: 3·Tp·P². */
  patchDim: number;
  /** [I, 3] int64: one (t, gh, gw) per image. */
  gridThw: BigInt64Array;
  items: PreprocessedImage[];
}

/** Images (each [height, width, 1 or 3] uint8) → the encoder's inputs, as `processor` says. */
export function preprocessPixels(images: readonly Pixels[], processor: ProcessorParams, budget: PixelBudget = {}): PreprocessedImages {
  return patchImages(resizeImages(images, processor, budget), processor);
}

/** Each image smart-resized (factor P·m, the image budget) with Pillow bicubic. */
export function resizeImages(images: readonly Pixels[], processor: ProcessorParams, budget: PixelBudget = {}): PreprocessedImage[] {
  if (images.length === 0) throw invalidArgument('images', 'at least one image', 0);
  checkProcessor(processor);
  return images.map((image) => resizeForProcessor(image, processor, budget));
}

/** Resized images → normalised patch rows: pixel_values [Σ gh·gw, patchDim], grid_thw [I, 3]. */
export function patchImages(items: PreprocessedImage[], processor: ProcessorParams): PreprocessedImages {
  const dim = patchDim(processor);
  const pixelValues = new Float32Array(items.reduce((sum, item) => sum + item.rows, 0) * dim);
  const gridThw = new BigInt64Array(items.length * 3);
  let rowOffset = 0;
  for (const [i, { resized, rows, gridThw: grid }] of items.entries()) {
    // An image is Tp identical frames (t = 1).
    const frames = new Array<Uint8Array>(processor.temporalPatchSize).fill(resized.data);
    patchGroup(pixelValues, rowOffset, frames, resized.height, resized.width, resized.channels, processor);
    grid.forEach((v, j) => (gridThw[i * 3 + j] = BigInt(v)));
    rowOffset += rows;
  }
  return { pixelValues, patchDim: dim, gridThw, items };
}

/** smart_resize (factor P·m, the image budget) then Pillow bicubic; an image already that size is kept. */
function resizeForProcessor(image: Pixels, processor: ProcessorParams, budget: PixelBudget): PreprocessedImage {
  const { height, width } = smartResize(image.height, image.width, {
    factor: sizeFactor(processor),
    minPixels: budget.minPixels ?? processor.minPixels,
    maxPixels: budget.maxPixels ?? processor.maxPixels,
  });
  const same = height === image.height && width === image.width;
  const data = same ? image.data : resizeBicubic(image.data, image.width, image.height, image.channels, width, height);
  const gridThw: [number, number, number] = [1, height / processor.patchSize, width / processor.patchSize];
  return { gridThw, rows: gridThw[1] * gridThw[2], resized: { data, width, height, channels: image.channels } };
}
