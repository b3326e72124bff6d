// The browser's preprocessing, in Node: RGBA pixels (as a canvas returns them) through the web path
// (flattenOnWhite, then preprocessPixels: the shared smart_resize, Pillow bicubic and patchify) give
// the Node path's pixel_values bit for bit. Also the demo's principal components, on known data.

import test from 'ava';
import sharp from 'sharp';
import { join } from 'node:path';
import { preprocess } from '../src/image/index.js';
import { QWEN2_VL_PROCESSOR, QWEN3_VL_PROCESSOR } from '../index.js';
import { flattenOnWhite } from '../src/image/pixels.js';
import { preprocessPixels } from '../src/web/preprocess.js';
import { componentColours, principalComponents } from '../examples/web/pca.js';
import { ROOT } from './helpers/files.js';

const IMAGES = ['astronaut.png', 'camera.png', 'chelsea.png', 'logo.png', 'rocket.jpg'];

/** What getImageData returns for an image: [height, width, 4] uint8, gray replicated, alpha kept. */
async function rgba(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path, { ignoreIcc: true }).toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

for (const [name, processor] of [
  ['Qwen3-VL', QWEN3_VL_PROCESSOR],
  ['Qwen2-VL', QWEN2_VL_PROCESSOR],
] as const) {
  test(`web preprocessPixels from RGBA = preprocess() bit for bit (${name} processor, ${IMAGES.length} images in one call)`, async (t) => {
    const paths = IMAGES.map((file) => join(ROOT, 'fixtures/images', file));
    const pixels = await Promise.all(
      paths.map(async (path) => {
        const { data, width, height } = await rgba(path);
        return { data: flattenOnWhite(data, 4), width, height, channels: 3 as const };
      }),
    );
    const web = preprocessPixels(pixels, processor);
    const node = await preprocess(paths, { processor });
    t.deepEqual(web.gridThw, node.gridThw);
    t.is(web.patchDim, node.patchDim);
    t.is(web.pixelValues.length, node.pixelValues.length);
    t.true(Buffer.from(web.pixelValues.buffer).equals(Buffer.from(node.pixelValues.buffer)), 'pixel_values differ');
    t.deepEqual(
      web.items.map((item) => [item.resized.height, item.resized.width]),
      node.items.map((item) => [item.resized.height, item.resized.width]),
    );
  });
}

test('principalComponents recovers the axes of a box, largest variance first, to 1e-9', (t) => {
  // The 16 corners of a box in 4-D with half-sides 2, 0, 3, 1: a covariance that is exactly diagonal,
  // variances 16/15 · (9, 4, 1) along e2, e0, e3 (and none along e1).
  const d = 4;
  const halfSides = [2, 0, 3, 1];
  const n = 16;
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = ((i >> j) & 1 ? 1 : -1) * halfSides[j]!;
  const { projections, variances } = principalComponents(x, n, d, 3);
  for (const [c, v] of [9, 4, 1].entries()) t.true(Math.abs(variances[c]! - (16 / 15) * v) < 1e-9, `variance ${c}: ${variances[c]}`);
  // Each projection is ± the coordinate on its axis (mean-centred): correlation 1 within 1e-9.
  for (const [c, axis] of [
    [0, 2],
    [1, 0],
    [2, 3],
  ] as const) {
    let dot = 0;
    let pp = 0;
    let xx = 0;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i * d + axis]! / n;
    for (let i = 0; i < n; i++) {
      const p = projections[i * 3 + c]!;
      const v = x[i * d + axis]! - mean;
      dot += p * v;
      pp += p * p;
      xx += v * v;
    }
    t.true(Math.abs(Math.abs(dot) / Math.sqrt(pp * xx) - 1) < 1e-9, `component ${c} vs axis ${axis}`);
  }
  const colours = componentColours(projections, n, 3);
  t.is(colours.length, n * 4);
  t.is(Math.min(...colours.filter((_, i) => i % 4 === 0)), 0);
  t.is(Math.max(...colours.filter((_, i) => i % 4 === 0)), 255);
});
