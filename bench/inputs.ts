// The benchmark's pixels: the llama.cpp anchor's seeded image of a given side (the same pixels
// llama.cpp encodes), preprocessed into graph inputs, or a seeded image of our own without it.

import { join } from 'node:path';
import { preprocess, QWEN3_VL_PROCESSOR } from '../index.js';
import { hostTensor } from '../src/tensor.js';
import { writeSafetensors } from '../src/weights/index.js';
import { exists, work } from './common.js';

/** The anchor's seeded image of side `size`, preprocessed (a multiple of 32: not resized), as graph inputs. */
export async function inputsFor(size: number): Promise<string> {
  const path = join(work, `inputs-${size}.safetensors`);
  const image = join(work, 'llamacpp', 'img', `img${size}.png`);
  const source = (await exists(image)) ? image : await seededImage(size);
  const pre = await preprocess([source], { processor: QWEN3_VL_PROCESSOR });
  await writeSafetensors(path, {
    pixel_values: hostTensor('float32', [pre.pixelValues.length / pre.patchDim, pre.patchDim], pre.pixelValues),
    grid_thw: hostTensor('int64', [1, 3], pre.gridThw),
  });
  return path;
}

/** Without the anchor's images (--no-llama), a seeded gradient image of the same size. */
async function seededImage(size: number): Promise<string> {
  const { default: sharp } = await import('sharp');
  const path = join(work, `seeded-${size}.png`);
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toFile(path);
  return path;
}
