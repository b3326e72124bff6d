// Decoding: formats, alpha on white (Pillow's integer rounding), gray, 16-bit, palette, EXIF orientation.
// Inputs are made with sharp inside each test.

import test from 'ava';
import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { decodeFrames, decodeImage, decodePixels, preprocess, readImageHeader } from '../src/image/index.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));

/** A raw interleaved image → sharp pipeline. */
const raw = (data: number[], width: number, height: number, channels: 1 | 2 | 3 | 4) => sharp(Buffer.from(data), { raw: { width, height, channels } });

test('RGBA is composited onto white with Pillow alpha_composite rounding', async (t) => {
  // (value, alpha) → Pillow: ((v·a + 255·(255 − a))·128 + 16384) / 255 (by shifts) >> 7.
  const png = await raw([200, 100, 50, 128, 10, 20, 30, 0, 10, 20, 30, 255, 0, 0, 0, 1], 4, 1, 4).png().toBuffer();
  const { data, width, height } = await decodeImage(png);
  t.deepEqual([width, height], [4, 1]);
  t.deepEqual(Array.from(data), [227, 177, 152, 255, 255, 255, 10, 20, 30, 254, 254, 254]);
});

test('gray + alpha is composited the same way and replicated to RGB', async (t) => {
  const png = await raw([200, 128, 0, 0, 90, 255], 3, 1, 2).toColourspace('b-w').png().toBuffer();
  const metadata = await sharp(png).metadata();
  t.deepEqual([metadata.space, metadata.channels], ['b-w', 2]);
  const { data } = await decodeImage(png);
  t.deepEqual(Array.from(data), [227, 227, 227, 255, 255, 255, 90, 90, 90]);
});

test('a gray image is replicated to three equal channels', async (t) => {
  const path = `${fixtures}images/camera.png`;
  const gray = await sharp(path).toColourspace('b-w').raw().toBuffer();
  t.is(gray.length, 512 * 512);
  const { data, width, height } = await decodeImage(path);
  t.is(data.length, width * height * 3);
  let mismatches = 0;
  for (let i = 0; i < gray.length; i++) {
    if (data[3 * i] !== gray[i] || data[3 * i + 1] !== gray[i] || data[3 * i + 2] !== gray[i]) mismatches++;
  }
  t.is(mismatches, 0);
});

test('16-bit PNGs are reduced to 8 bits by taking the high byte', async (t) => {
  const rgb16 = await raw([200, 100, 3], 1, 1, 3).toColourspace('rgb16').png().toBuffer();
  t.is((await sharp(rgb16).metadata()).depth, 'ushort');
  t.deepEqual(Array.from((await decodeImage(rgb16)).data), [200, 100, 3]);
  const gray16 = await raw([77], 1, 1, 1).toColourspace('grey16').png().toBuffer();
  t.deepEqual(Array.from((await decodeImage(gray16)).data), [77, 77, 77]);
});

test('palette PNG with transparency decodes to its colours, transparent entries to white', async (t) => {
  const png = await raw([255, 0, 0, 255, 0, 0, 255, 255, 0, 255, 0, 0], 3, 1, 4).png({ palette: true, colours: 4, dither: 0 }).toBuffer();
  t.true((await sharp(png).metadata()).isPalette);
  t.deepEqual(Array.from((await decodeImage(png)).data), [255, 0, 0, 0, 0, 255, 255, 255, 255]);
});

test('EXIF orientation is applied: orientation 6 turns a 64×32 JPEG into 32×64', async (t) => {
  // Stored: left half black, right half white. Orientation 6 = rotate 90° clockwise to display,
  // so the stored left edge becomes the top: top half dark, bottom half bright.
  const stored = Array.from({ length: 32 * 64 }, (_, i) => (i % 64 < 32 ? 0 : 255));
  const jpeg = await raw(stored, 64, 32, 1).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  t.is((await sharp(jpeg).metadata()).orientation, 6);
  const header = await readImageHeader(jpeg);
  t.deepEqual([header.width, header.height], [32, 64]);
  const { data, width, height } = await decodeImage(jpeg);
  t.deepEqual([width, height], [32, 64]);
  t.true(data[(8 * width + 16) * 3]! < 20, 'top is dark');
  t.true(data[(56 * width + 16) * 3]! > 235, 'bottom is bright');
  const out = await preprocess([jpeg], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(out.items[0]!.resized, { height: 384, width: 192 }); // smart_resize of a 64-high, 32-wide image
});

test('WebP, GIF, TIFF and AVIF inputs decode to the same size as the PNG they were made from', async (t) => {
  const png = `${fixtures}images/chelsea.png`;
  const reference = await decodeImage(png);
  const encoders = {
    webp: (s: Sharp) => s.webp({ lossless: true }),
    tiff: (s: Sharp) => s.tiff({ compression: 'deflate' }),
    gif: (s: Sharp) => s.gif(),
    avif: (s: Sharp) => s.avif({ lossless: true }),
  };
  for (const [name, encode] of Object.entries(encoders)) {
    if (!(sharp.format as unknown as Record<string, { input?: { buffer?: boolean } } | undefined>)[name === 'avif' ? 'heif' : name]?.input?.buffer) {
      t.log(`${name}: not supported by this sharp build, skipped`);
      continue;
    }
    const encoded = await encode(sharp(png)).toBuffer();
    const decoded = await decodeImage(encoded);
    t.deepEqual([decoded.width, decoded.height], [reference.width, reference.height], name);
    if (name === 'webp' || name === 'tiff') t.deepEqual(decoded.data, reference.data, `${name} is lossless`);
  }
});

test('a sharp instance is accepted as a source and gives the same pixels as its path', async (t) => {
  const path = `${fixtures}images/logo.png`;
  const fromPath = await preprocess([path], { processor: QWEN3_VL_PROCESSOR });
  const fromSharp = await preprocess([sharp(path)], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(fromSharp.gridThw, fromPath.gridThw);
  t.true(Buffer.from(fromSharp.pixelValues.buffer).equals(Buffer.from(fromPath.pixelValues.buffer)));
});

test('a sharp instance is planned from what it outputs: queued operations count', async (t) => {
  const out = await preprocess([sharp(`${fixtures}images/chelsea.png`).resize(224, 224, { fit: 'fill' })], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(out.items[0]!.resized, { height: 256, width: 256 }); // from 224×224, not 451×300
  t.deepEqual(Array.from(out.gridThw), [1n, 16n, 16n]);
});

test('decodePixels keeps an opaque gray image as one channel', async (t) => {
  const pixels = await decodePixels(`${fixtures}images/camera.png`);
  t.deepEqual([pixels.width, pixels.height, pixels.channels, pixels.data.length], [512, 512, 1, 512 * 512]);
});

test('decodeFrames returns one frame for a still image', async (t) => {
  const { frames, delaysMs } = await decodeFrames(`${fixtures}images/rocket.jpg`);
  t.is(frames.length, 1);
  t.is(delaysMs, undefined);
  t.deepEqual([frames[0]!.width, frames[0]!.height, frames[0]!.channels], [640, 427, 3]);
});
