// The benchmark's pixels: the llama.cpp anchor's seeded image of a given side (the same pixels
// llama.cpp encodes), preprocessed into graph inputs, or a seeded image of our own without it.

import { join } from 'node:path';
import { preprocess, QWEN3_VL_PROCESSOR, type ProcessorParams } from '../index.js';
import { hostTensor } from '../src/tensor.js';
import { writeSafetensors } from '../src/weights/index.js';
import { exists, work } from './common.js';

/** The anchor's seeded image of side `size`, preprocessed (a multiple of 32: not resized), as graph inputs. */
export async function inputsFor(size: number): Promise<string> {
  const path = join(work, `inputs-${size}.safetensors`);
  const image = join(work, 'llamacpp', 'img', `img${size}.png`);
  await writeInputs(path, (await exists(image)) ? image : await seededImage(size), QWEN3_VL_PROCESSOR);
  return path;
}

/** `image` preprocessed by `processor`, written as graph inputs (pixel_values, grid_thw) to `path`; returns its patch rows. */
export async function writeInputs(path: string, image: string, processor: ProcessorParams): Promise<number> {
  const pre = await preprocess([image], { processor });
  const patches = pre.pixelValues.length / pre.patchDim;
  await writeSafetensors(path, { pixel_values: hostTensor('float32', [patches, pre.patchDim], pre.pixelValues), grid_thw: hostTensor('int64', [1, 3], pre.gridThw) });
  return patches;
}

/** A seeded gradient image of side `size` (stands in for the anchor's images, e.g. with --no-llama). */
export async function seededImage(size: number): Promise<string> {
  const { default: sharp } = await import('sharp');
  const path = join(work, `seeded-${size}.png`);
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toFile(path);
  return path;
}
