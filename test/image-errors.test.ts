// Bad inputs fail early with a VitgraphError whose code and message say what is wrong.

import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { VitgraphError } from '../src/errors.js';
import { decodeImage, preprocess } from '../src/image/index.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));

const scratch = mkdtemp(join(tmpdir(), 'vitgraph-image-'));
test.after.always(async () => rm(await scratch, { recursive: true, force: true }));

async function scratchFile(name: string, content: Uint8Array | string): Promise<string> {
  const path = join(await scratch, name);
  await writeFile(path, content);
  return path;
}

test('truncated.jpg (cut inside its header) → invalid_file naming the file and the decoder error', async (t) => {
  const path = `${fixtures}images/truncated.jpg`;
  const error = await t.throwsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_file');
  t.true(error?.message.startsWith(`${path}: corrupt or truncated image data: expected a complete image, got decoder error`));
  t.regex(error?.message ?? '', /got decoder error ".+"\. Re-encode or re-download the file$/); // libvips: "…premature end of JPEG image"
  t.log(error?.message);
});

test('a JPEG cut in the middle of its pixel data → invalid_file, not a half-gray image', async (t) => {
  const full = await readFile(`${fixtures}images/rocket.jpg`);
  const cut = full.subarray(0, Math.floor(full.length * 0.6));
  t.is((await sharp(cut).metadata()).width, 640, 'the header is intact');
  const error = await t.throwsAsync(decodeImage(cut), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_file');
  // libvips' message is usually "VipsJpeg: premature end of JPEG image"; under concurrent decoding its
  // shared error buffer can come back as "Unknown error", so only the frame of the message is pinned.
  t.regex(error?.message ?? '', /^image bytes: corrupt or truncated image data: expected a complete JPEG image, got decoder error ".+"\. Re-encode/);
  const png = await readFile(`${fixtures}images/astronaut.png`);
  await t.throwsAsync(decodeImage(png.subarray(0, png.length >> 1)), { instanceOf: VitgraphError, message: /corrupt or truncated.*PNG/ });
});

test('a zero-byte file or buffer → invalid_file "got 0 bytes"', async (t) => {
  const path = await scratchFile('empty.png', new Uint8Array(0));
  const error = await t.throwsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_file');
  t.is(error?.message, `${path}: expected an encoded image (PNG, JPEG, WebP, GIF, TIFF or AVIF), got 0 bytes. The file is empty; check that it was written completely`);
  await t.throwsAsync(preprocess([Buffer.alloc(0)], { processor: QWEN3_VL_PROCESSOR }), { instanceOf: VitgraphError, message: /^items\[0\]: expected an encoded image .* got 0 bytes/ });
});

test('a file that is not an image → invalid_file saying what it looks like, never its bytes', async (t) => {
  const path = await scratchFile('page.jpg', '<!DOCTYPE html><html></html>');
  const error = await t.throwsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_file');
  t.is(error?.message, `${path}: not a decodable image: expected PNG, JPEG, WebP, GIF, TIFF or AVIF, got text in no supported format. Check the file type`);
});

test('a missing path → not_found', async (t) => {
  const error = await t.throwsAsync(preprocess([join(await scratch, 'nope.png')], { processor: QWEN3_VL_PROCESSOR }), { instanceOf: VitgraphError });
  t.is(error?.code, 'not_found');
  t.regex(error?.message ?? '', /^image not found: .*nope\.png\. Check the path$/);
});

test('aspect ratio above 200 → invalid_argument before any pixel is decoded', async (t) => {
  const strip = await sharp({ create: { width: 402, height: 2, channels: 3, background: 'white' } })
    .png()
    .toBuffer();
  const error = await t.throwsAsync(preprocess([strip], { processor: QWEN3_VL_PROCESSOR }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.regex(error?.message ?? '', /image aspect ratio: expected at most 200 \(longer side \/ shorter side\), got 201\.0 for 402×2/);
});

test('more input pixels than maxInputPixels → invalid_argument naming the size and the option', async (t) => {
  const path = `${fixtures}images/astronaut.png`;
  const error = await t.throwsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR, maxInputPixels: 200_000 }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.is(
    error?.message,
    `${path}: input size: expected at most 200000 pixels (option maxInputPixels), got 512×512 = 262144 pixels. ` + 'If the image is trusted, raise maxInputPixels (Infinity lifts the limit)',
  );
  t.deepEqual(error?.details, { path, width: 512, height: 512, frames: 1, pixels: 262144, maxInputPixels: 200_000 });
  // The default limit (0x3FFF² px) lets ordinary images through, and Infinity lifts it.
  await t.notThrowsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR }));
  await t.notThrowsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR, maxInputPixels: Infinity }));
  await t.throwsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR, maxInputPixels: -1 }), { message: /maxInputPixels: expected a positive integer or Infinity, got -1/ });
});

/** CRC-32 (IEEE, reflected, as PNG chunks use); `zlib.crc32` needs Node ≥ 20.15. */
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A PNG whose header claims `width × height` 8-bit gray pixels, with data for one row only. */
function pngClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13); // width, height, bit depth 8, colour type 0 (gray), then zeros
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.alloc(1 + width))), chunk('IEND', Buffer.alloc(0))]);
}

test('a PNG header claiming 20000×20000 is refused from its header alone (decompression-bomb guard)', async (t) => {
  const bomb = pngClaiming(20000, 20000);
  const claimed = await sharp(bomb, { limitInputPixels: false }).metadata();
  t.deepEqual([claimed.width, claimed.height], [20000, 20000]);
  const error = await t.throwsAsync(preprocess([bomb], { processor: QWEN3_VL_PROCESSOR }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.is(
    error?.message,
    'items[0]: input size: expected at most 268402689 pixels (option maxInputPixels), got 20000×20000 = 400000000 pixels. ' +
      'If the image is trusted, raise maxInputPixels (Infinity lifts the limit)',
  );
});

test('bad options and sources → invalid_argument', async (t) => {
  const path = `${fixtures}images/chelsea.png`;
  await t.throwsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR, targetFps: 0 }), { message: /targetFps: expected a positive finite number, got 0/ });
  await t.throwsAsync(preprocess([path], { processor: QWEN3_VL_PROCESSOR, maxPixels: 10 }), { message: /maxPixels: expected a number ≥/ });
  await t.throwsAsync(preprocess([42 as unknown as string], { processor: QWEN3_VL_PROCESSOR }), {
    message: /image source: expected a file path, a Uint8Array\/Buffer of encoded bytes or a sharp instance, got "number"/,
  });
  await t.throwsAsync(preprocess([{ frames: [path, path], fps: -2 }], { processor: QWEN3_VL_PROCESSOR }), { message: /items\[0\]\.fps: expected a positive finite number, got -2/ });
});
