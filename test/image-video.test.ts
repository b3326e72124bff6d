// Videos and the patch layout (spec §4.1.5, §4.2).
//
// What the spec guarantees, and what is tested here:
// * an image is two identical frames (t = 1), so a 2-frame video of one frame repeated gives the
//   image's rows whenever the image and video smart_resize agree on the size;
// * temporal group g of a video holds frames 2g and 2g+1 at τ = 0 and τ = 1 of every row, with the
//   same (merge-window) row order as an image; an odd count repeats the last frame;
// * so a video [A, A, B, B] is the rows of image A followed by the rows of image B, and a video
//   [A, B, C] has group 0 = (A at τ = 0, B at τ = 1) and group 1 = image C.

import test from 'ava';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeImage, normalizedLevels, patchify, preprocess, resizeBicubic } from '../src/image/index.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';

const [NORMALIZED_LEVELS] = normalizedLevels(QWEN3_VL_PROCESSOR); // mean = std = 0.5: one table serves R, G and B

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const chelsea = `${fixtures}images/chelsea.png`; // 451×300: image and video sizes agree (448×288)

/** Chelsea altered so that each frame differs: negated, flipped, tinted. */
async function variants(): Promise<Buffer[]> {
  return Promise.all([sharp(chelsea).negate().png().toBuffer(), sharp(chelsea).flip().png().toBuffer(), sharp(chelsea).linear(0.5, 40).png().toBuffer()]);
}

const rowsOf = (values: Float32Array, first: number, count: number): Float32Array => values.subarray(first * 1536, (first + count) * 1536);

/** Elements that differ (or the length difference); ava's deepEqual is too slow for millions of floats. */
function differing(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.abs(a.length - b.length) + 0.5;
  let count = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) count++;
  return count;
}

test('a 2-frame video of one image repeated gives exactly the image rows', async (t) => {
  const image = await preprocess([chelsea], { processor: QWEN3_VL_PROCESSOR });
  const video = await preprocess([{ frames: [chelsea, chelsea] }], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(Array.from(video.gridThw), [1n, 18n, 28n]);
  t.deepEqual(video.items[0]!.kind, 'video');
  t.is(differing(video.pixelValues, image.pixelValues), 0);
});

test('a video [A, A, B, B] is image A rows followed by image B rows', async (t) => {
  const [b] = await variants();
  const images = await preprocess([chelsea, b!], { processor: QWEN3_VL_PROCESSOR });
  const video = await preprocess([{ frames: [chelsea, chelsea, b!, b!] }], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(Array.from(video.gridThw), [2n, 18n, 28n]);
  t.is(differing(video.pixelValues, images.pixelValues), 0);
});

test('a video [A, B, C]: group 0 takes A at τ = 0 and B at τ = 1; group 1 is C repeated (padding)', async (t) => {
  const [b, c] = await variants();
  const [imageA, imageB, imageC] = await Promise.all([chelsea, b!, c!].map((frame) => preprocess([frame], { processor: QWEN3_VL_PROCESSOR })));
  const video = await preprocess([{ frames: [chelsea, b!, c!] }], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(Array.from(video.gridThw), [2n, 18n, 28n]);
  const rows = 18 * 28;
  let mismatches = 0;
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < 1536; col++) {
      const tau = (col >> 8) & 1; // column = c·512 + τ·256 + y·16 + x
      const expected = (tau === 0 ? imageA! : imageB!).pixelValues[r * 1536 + col];
      if (video.pixelValues[r * 1536 + col] !== expected) mismatches++;
    }
  }
  t.is(mismatches, 0);
  t.is(differing(rowsOf(video.pixelValues, rows, rows), imageC!.pixelValues), 0);
});

test('several items are concatenated in order, with one grid row each', async (t) => {
  const [b] = await variants();
  const all = await preprocess([chelsea, { frames: [b!, b!, b!, b!] }, `${fixtures}images/rocket.jpg`], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(Array.from(all.gridThw), [1n, 18n, 28n, 2n, 18n, 28n, 1n, 26n, 40n]);
  t.deepEqual(
    all.items.map((item) => item.rows),
    [504, 1008, 1040],
  );
  t.is(all.pixelValues.length, (504 + 1008 + 1040) * 1536);
  const rocket = await preprocess([`${fixtures}images/rocket.jpg`], { processor: QWEN3_VL_PROCESSOR });
  t.is(differing(rowsOf(all.pixelValues, 504 + 1008, 1040), rocket.pixelValues), 0);
});

test('fps sampling: 10 frames at 5 fps keep frames [0, 3, 6, 9]; timestamps give the same', async (t) => {
  const frames = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      sharp({ create: { width: 64, height: 64, channels: 3, background: { r: i * 20, g: 0, b: 0 } } })
        .png()
        .toBuffer(),
    ),
  );
  const byFps = await preprocess([{ frames, fps: 5 }], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(byFps.items[0]!.frameIndices, [0, 3, 6, 9]);
  t.deepEqual(Array.from(byFps.gridThw), [2n, 4n, 4n]); // 64×64 stays 64×64: 4·64·64 ≥ 4096
  const byTimestamps = await preprocess([{ frames, timestamps: frames.map((_, i) => i / 5) }], { processor: QWEN3_VL_PROCESSOR });
  t.is(differing(byTimestamps.pixelValues, byFps.pixelValues), 0);
  const kept = await preprocess([{ frames: [0, 3, 6, 9].map((i) => frames[i]!) }], { processor: QWEN3_VL_PROCESSOR });
  t.is(differing(kept.pixelValues, byFps.pixelValues), 0);
  const all = await preprocess([{ frames }], { processor: QWEN3_VL_PROCESSOR });
  t.deepEqual(all.items[0]!.frameIndices, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // The first pixel of frame 3 is red 60: normalized 60/127.5 − 1.
  t.is(byFps.pixelValues[256], NORMALIZED_LEVELS[60]);
});

test('an animated GIF is a video: frames sampled by its delays, equal to the same frames given one by one', async (t) => {
  const size = { width: 96, height: 64 };
  const frames = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      sharp({ create: { ...size, channels: 3, background: { r: 40 * i, g: 255 - 40 * i, b: 0 } } })
        .png()
        .toBuffer(),
    ),
  );
  const gif = await sharp(frames, { join: { animated: true } })
    .gif({ delay: Array<number>(6).fill(100) })
    .toBuffer();
  const animated = await preprocess([gif], { processor: QWEN3_VL_PROCESSOR });
  // 6 frames at 10 fps → int(6/10·2) = 1, raised to 4 → linspace(0, 5, 4) = [0, 1.67, 3.33, 5] → [0, 2, 3, 5].
  t.deepEqual(animated.items[0]!.frameIndices, [0, 2, 3, 5]);
  t.is(animated.items[0]!.kind, 'video');
  t.deepEqual(animated.items[0]!.gridThw, [2, 4, 6]);
  const pages = await Promise.all([0, 2, 3, 5].map((page) => sharp(gif, { page }).png().toBuffer()));
  const listed = await preprocess([{ frames: pages }], { processor: QWEN3_VL_PROCESSOR });
  t.is(differing(animated.pixelValues, listed.pixelValues), 0);
  const instance = await preprocess([sharp(gif, { pages: -1 })], { processor: QWEN3_VL_PROCESSOR }); // a sharp instance holding all frames
  t.deepEqual(instance.items[0]!.frameIndices, [0, 2, 3, 5]);
  t.is(differing(instance.pixelValues, animated.pixelValues), 0);
});

test('video frames of different sizes are refused, naming the frame', async (t) => {
  const small = await sharp(chelsea).resize(200, 100).png().toBuffer();
  await t.throwsAsync(preprocess([{ frames: [chelsea, small] }], { processor: QWEN3_VL_PROCESSOR }), {
    message: /items\[0\]\.frames\[1\] size: expected 451×300 like frame 0, got 200×100/,
  });
  await t.throwsAsync(preprocess([{ frames: [chelsea] }], { processor: QWEN3_VL_PROCESSOR }), { message: /video frame count: expected an integer ≥ 2, got 1/ });
  await t.throwsAsync(preprocess([{ frames: [chelsea, chelsea], timestamps: [0] }], { processor: QWEN3_VL_PROCESSOR }), { message: /timestamps length: expected one per frame \(2\), got 1/ });
});

test('patchify: merge-window row order and (c, τ, y, x) column order', (t) => {
  // 64×32 image (gh = 4, gw = 2) whose pixel value encodes its patch: value = 10·patchRow + patchCol.
  const height = 64;
  const width = 32;
  const frame = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = 10 * (y >> 4) + (x >> 4);
      frame.set([value, value + 100, value + 200], (y * width + x) * 3);
    }
  }
  const { pixelValues, gridThw } = patchify([frame], height, width, QWEN3_VL_PROCESSOR);
  t.deepEqual(gridThw, [1, 4, 2]);
  // Spec example order for gw = 2: (0,0), (0,1), (1,0), (1,1), (2,0), (2,1), (3,0), (3,1).
  const order = [0, 1, 10, 11, 20, 21, 30, 31];
  const level = (v: number): number => NORMALIZED_LEVELS[v]!;
  order.forEach((value, row) => {
    for (const [c, offset] of [0, 100, 200].entries()) {
      for (const tau of [0, 1]) t.is(pixelValues[row * 1536 + c * 512 + tau * 256 + 5 * 16 + 7], level(value + offset));
    }
  });
});

test('patchify of 2 frames matches preprocess of those frames as a video', async (t) => {
  const [b] = await variants();
  const [a, bDecoded] = await Promise.all([decodeImage(chelsea), decodeImage(b!)]);
  const resize = (img: { data: Uint8Array; width: number; height: number }) => resizeBicubic(img.data, img.width, img.height, 3, 448, 288);
  const patched = patchify([resize(a), resize(bDecoded)], 288, 448, QWEN3_VL_PROCESSOR);
  const video = await preprocess([{ frames: [chelsea, b!] }], { processor: QWEN3_VL_PROCESSOR });
  t.is(differing(patched.pixelValues, video.pixelValues), 0);
});

test('a gray image resized as one channel equals the RGB path', async (t) => {
  const camera = `${fixtures}images/camera.png`;
  const out = await preprocess([camera], { processor: QWEN3_VL_PROCESSOR, maxPixels: 300 * 300 }); // forces a resize: 512×512 → 288×288
  t.deepEqual(out.items[0]!.resized, { height: 288, width: 288 });
  const rgb = await decodeImage(camera);
  const resized = resizeBicubic(rgb.data, 512, 512, 3, 288, 288);
  t.is(differing(out.pixelValues, patchify([resized], 288, 288, QWEN3_VL_PROCESSOR).pixelValues), 0);
});
