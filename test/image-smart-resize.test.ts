// smart_resize for images and videos, Python rounding, and fps frame sampling (spec §4.1.2, §4.2).
// Expected values were computed with the upstream Python functions (transformers smart_resize,
// numpy linspace().round()).

import test from 'ava';
import { VitgraphError } from '../src/errors.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';
import { QWEN2_VL_PROCESSOR } from '../graphs/shared/qwen2.js';
import { roundHalfEven, sampleFrameIndices, sizeFactor, smartResize, smartResizeVideo } from '../src/image/index.js';

/** Qwen3-VL's factor and budgets: images, and videos (over the whole clip). */
const IMAGE = { factor: sizeFactor(QWEN3_VL_PROCESSOR), minPixels: QWEN3_VL_PROCESSOR.minPixels, maxPixels: QWEN3_VL_PROCESSOR.maxPixels };
const VIDEO = { factor: sizeFactor(QWEN3_VL_PROCESSOR), minPixels: QWEN3_VL_PROCESSOR.videoMinPixels, maxPixels: QWEN3_VL_PROCESSOR.videoMaxPixels, temporalPatchSize: 2 };

test('roundHalfEven rounds ties to the even neighbour, like Python round()', (t) => {
  t.deepEqual([0.5, 1.5, 2.5, 22.5, 10.5, -0.5, -1.5, 2.4999, 2.5001].map(roundHalfEven), [0, 2, 2, 22, 10, 0, -2, 2, 3]);
});

// Spec §4.1.2 worked examples: [H, W] → [h, w].
const IMAGE_CASES: [number, number, number, number][] = [
  [1365, 2048, 1376, 2048],
  [720, 1280, 704, 1280], // 22.5 → 22, not 23
  [336, 336, 320, 320], // 10.5 → 10
  [1080, 1920, 1088, 1920],
  [480, 640, 480, 640],
  [400, 300, 384, 288],
  [224, 224, 256, 256], // min-pixel branch
  [100, 100, 256, 256],
  [80, 80, 256, 256],
  [48, 1000, 64, 1184],
  [4000, 6000, 3328, 4992], // max-pixel branch
];

for (const [H, W, h, w] of IMAGE_CASES) {
  test(`smartResize ${H}×${W} → ${h}×${w}`, (t) => {
    t.deepEqual(smartResize(H, W, IMAGE), { height: h, width: w });
  });
}

// Qwen2-VL spec §4.1 worked examples (factor 28, 3 136 … 12 845 056 px): [H, W] → [h, w].
const QWEN2_IMAGE_CASES: [number, number, number, number][] = [
  [512, 512, 504, 504],
  [300, 451, 308, 448],
  [427, 640, 420, 644],
  [720, 1280, 728, 1288],
  [1080, 1920, 1092, 1932],
  [350, 350, 336, 336], // 12.5 → 12
  [406, 630, 392, 616], // 14.5 → 14, 22.5 → 22
  [28, 28, 56, 56], // min-pixel branch
  [30, 40, 56, 84],
  [4000, 6000, 2912, 4368], // max-pixel branch
];

for (const [H, W, h, w] of QWEN2_IMAGE_CASES) {
  test(`smartResize with QWEN2_VL_PROCESSOR ${H}×${W} → ${h}×${w}`, (t) => {
    const { minPixels, maxPixels } = QWEN2_VL_PROCESSOR;
    t.deepEqual(smartResize(H, W, { factor: sizeFactor(QWEN2_VL_PROCESSOR), minPixels, maxPixels }), { height: h, width: w });
  });
}

test('smartResizeVideo rounds the frame count to the temporal patch size it is given', (t) => {
  // 5 frames of 448×448: t̄ = round(5/2)·2 = 4 (fits 4·448² ≤ 1e6) vs round(5/3)·3 = 6 (6·448² > 1e6: shrinks).
  t.deepEqual(smartResizeVideo(5, 448, 448, { ...VIDEO, maxPixels: 1_000_000 }), { height: 448, width: 448 });
  t.deepEqual(smartResizeVideo(5, 448, 448, { ...VIDEO, maxPixels: 1_000_000, temporalPatchSize: 3 }), { height: 416, width: 416 });
  t.throws(() => smartResizeVideo(2, 448, 448, { ...VIDEO, temporalPatchSize: 3 }), { message: /video frame count: expected an integer ≥ 3, got 2/ });
});

test('smartResize honours custom budgets and the factor', (t) => {
  t.deepEqual(smartResize(1080, 1920, { ...IMAGE, maxPixels: 1024 * 1024 }), { height: 768, width: 1344 });
  t.deepEqual(smartResize(100, 100, { ...IMAGE, minPixels: 0 }), { height: 96, width: 96 });
  t.deepEqual(smartResize(100, 100, { ...IMAGE, factor: 28, minPixels: 0 }), { height: 112, width: 112 });
  t.deepEqual(smartResize(6000, 4000, IMAGE), { height: 4992, width: 3328 });
});

test('smartResize rejects aspect ratios above 200 with an invalid_argument naming the ratio', (t) => {
  t.deepEqual(smartResize(1, 200, IMAGE), { height: 32, width: 3648 }); // exactly 200 is allowed
  const error = t.throws(() => smartResize(1, 201, IMAGE), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.regex(error?.message ?? '', /aspect ratio: expected at most 200 .*got 201\.0 for 201×1/);
});

test('smartResize rejects sizes that are not positive integers', (t) => {
  t.throws(() => smartResize(0, 10, IMAGE), { instanceOf: VitgraphError, message: /image height: expected a positive integer, got 0/ });
  t.throws(() => smartResize(10, 10.5, IMAGE), { instanceOf: VitgraphError, message: /image width/ });
});

// [frames, H, W] → [h, w] with the shipped video budget (4 096 … 25 165 824 over t̄·h·w).
const VIDEO_CASES: [number, number, number, number, number][] = [
  [2, 480, 640, 480, 640],
  [100, 1080, 1920, 352, 640], // β uses the raw frame count
  [4, 20, 100, 32, 160], // sides under 32 are scaled up first
  [2, 16, 16, 64, 64], // then the min-pixel branch
  [3, 300, 451, 288, 448],
  [768, 720, 1280, 128, 224],
  [5, 3000, 4000, 1920, 2560],
];

for (const [k, H, W, h, w] of VIDEO_CASES) {
  test(`smartResizeVideo ${k} frames of ${H}×${W} → ${h}×${w}`, (t) => {
    t.deepEqual(smartResizeVideo(k, H, W, VIDEO), { height: h, width: w });
  });
}

test('smartResizeVideo needs at least two frames, as upstream does', (t) => {
  const error = t.throws(() => smartResizeVideo(1, 480, 640, VIDEO), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.regex(error?.message ?? '', /video frame count: expected an integer ≥ 2, got 1\. Pass a single frame as an image/);
});

test('sampleFrameIndices: k = int(n/fps·2) clamped to [4, 768] and n, numpy linspace rounded half-to-even', (t) => {
  t.deepEqual(sampleFrameIndices(100, 24), [0, 14, 28, 42, 57, 71, 85, 99]);
  t.deepEqual(sampleFrameIndices(6, 2.4), [0, 1, 2, 4, 5]); // 2.5 → 2
  t.deepEqual(sampleFrameIndices(10, 5), [0, 3, 6, 9]);
  t.deepEqual(sampleFrameIndices(6, 10), [0, 2, 3, 5]); // k = 1, raised to 4
  t.deepEqual(sampleFrameIndices(3, 1), [0, 1, 2]); // capped at n
  t.deepEqual(sampleFrameIndices(7, 0.5), [0, 1, 2, 3, 4, 5, 6]);
  const long = sampleFrameIndices(1000, 1); // capped at 768
  t.is(long.length, 768);
  t.is(
    long.reduce((a, b) => a + b, 0),
    383616,
  );
  t.deepEqual(long.slice(100, 105), [130, 132, 133, 134, 135]);
  const film = sampleFrameIndices(20000, 25);
  t.is(
    film.reduce((a, b) => a + b, 0),
    7679616,
  );
  t.deepEqual(film.slice(100, 105), [2607, 2634, 2660, 2686, 2712]);
  t.deepEqual(sampleFrameIndices(10, 5, 1), [0, 3, 6, 9]); // k = 2 → 4
});
