// Processor parameters: reading HF preprocessor_config.json, checking hand-built params, and the
// patch layout for sizes other than Qwen3-VL's (against a direct transcription of upstream's reshape).

import test from 'ava';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VitgraphError } from '../src/errors.js';
import { loadProcessor, normalizedLevels, patchDim, patchify, preprocess, processorFromConfig, readProcessorConfig, sizeFactor, type ProcessorParams } from '../src/image/index.js';
import { tempDir } from './helpers/files.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';
import { QWEN2_VL_PROCESSOR } from '../graphs/shared/qwen2.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const chelsea = `${fixtures}images/chelsea.png`; // 451×300 (W×H)

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** The released Qwen2.5-VL-7B-Instruct preprocessor_config.json (top-level min/max pixels). */
const QWEN25_VL_JSON = {
  min_pixels: 3136,
  max_pixels: 12845056,
  patch_size: 14,
  temporal_patch_size: 2,
  merge_size: 2,
  image_mean: CLIP_MEAN,
  image_std: CLIP_STD,
  image_processor_type: 'Qwen2VLImageProcessor',
  processor_class: 'Qwen2_5_VLProcessor',
};

/** The released Qwen3-VL preprocessor_config.json shape (bounds under `size`). */
const QWEN3_VL_JSON = {
  size: { longest_edge: 16777216, shortest_edge: 65536 },
  patch_size: 16,
  temporal_patch_size: 2,
  merge_size: 2,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
  processor_class: 'Qwen3VLProcessor',
  image_processor_type: 'Qwen2VLImageProcessorFast',
};

test('derived sizes: factor = patch × merge, patchDim = 3·Tp·P²', (t) => {
  t.is(sizeFactor(QWEN3_VL_PROCESSOR), 32);
  t.is(patchDim(QWEN3_VL_PROCESSOR), 1536);
  t.is(sizeFactor(QWEN2_VL_PROCESSOR), 28);
  t.is(patchDim(QWEN2_VL_PROCESSOR), 1176);
});

test('the released configs reproduce their family defaults', (t) => {
  t.deepEqual(processorFromConfig(QWEN25_VL_JSON, QWEN2_VL_PROCESSOR), { ...QWEN2_VL_PROCESSOR });
  t.deepEqual(processorFromConfig(QWEN3_VL_JSON, QWEN3_VL_PROCESSOR), { ...QWEN3_VL_PROCESSOR });
  t.deepEqual(processorFromConfig({}, QWEN2_VL_PROCESSOR), { ...QWEN2_VL_PROCESSOR });
});

test('each present field overrides the family default; the rest are kept', (t) => {
  const p = processorFromConfig({ max_pixels: 1003520, image_std: [0.25, 0.25, 0.25], patch_size: 16 }, QWEN2_VL_PROCESSOR);
  t.deepEqual(p, { ...QWEN2_VL_PROCESSOR, maxPixels: 1003520, imageStd: [0.25, 0.25, 0.25], patchSize: 16 });
  t.is(sizeFactor(p), 32);
  t.is(patchDim(p), 1536);
});

test('size.shortest_edge / size.longest_edge are pixel bounds; top-level min_pixels / max_pixels win over them', (t) => {
  const fromSize = processorFromConfig({ size: { shortest_edge: 1000, longest_edge: 200000 } }, QWEN2_VL_PROCESSOR);
  t.is(fromSize.minPixels, 1000);
  t.is(fromSize.maxPixels, 200000);
  const both = processorFromConfig({ min_pixels: 5000, max_pixels: 300000, size: { shortest_edge: 1000, longest_edge: 200000 } }, QWEN2_VL_PROCESSOR);
  t.is(both.minPixels, 5000);
  t.is(both.maxPixels, 300000);
  const half = processorFromConfig({ size: { longest_edge: 200000 } }, QWEN3_VL_PROCESSOR);
  t.is(half.minPixels, QWEN3_VL_PROCESSOR.minPixels);
  t.is(half.maxPixels, 200000);
});

const BAD_FIELDS: [string, unknown, string][] = [
  ['patch size 0', { patch_size: 0 }, 'patch_size'],
  ['fractional patch size', { patch_size: 14.5 }, 'patch_size'],
  ['patch size as a string', { patch_size: '14' }, 'patch_size'],
  ['merge size 100', { merge_size: 100 }, 'merge_size'],
  ['temporal patch size -1', { temporal_patch_size: -1 }, 'temporal_patch_size'],
  ['negative min_pixels', { min_pixels: -1 }, 'min_pixels'],
  ['max_pixels under factor²', { max_pixels: 700 }, 'max_pixels'],
  ['max_pixels under min_pixels', { min_pixels: 100000, max_pixels: 50000 }, 'max_pixels'],
  ['size.longest_edge under size.shortest_edge', { size: { shortest_edge: 100000, longest_edge: 50000 } }, 'size.longest_edge'],
  ['size.shortest_edge NaN-like', { size: { shortest_edge: 'lots' } }, 'size.shortest_edge'],
  ['size as a number', { size: 448 }, 'size'],
  ['mean of two values', { image_mean: [0.5, 0.5] }, 'image_mean'],
  ['mean on the 0–255 scale', { image_mean: [123.7, 116.3, 103.5] }, 'image_mean'],
  ['zero std', { image_std: [0, 0.26, 0.27] }, 'image_std'],
  ['do_normalize false', { do_normalize: false }, 'do_normalize'],
  ['do_rescale false', { do_rescale: false }, 'do_rescale'],
  ['rescale_factor 1/127.5', { rescale_factor: 1 / 127.5 }, 'rescale_factor'],
  ['resample 2 (bilinear)', { resample: 2 }, 'resample'],
];

for (const [what, json, field] of BAD_FIELDS) {
  test(`processorFromConfig refuses ${what} → invalid_config naming "${field}"`, (t) => {
    const error = t.throws(() => processorFromConfig(json, QWEN2_VL_PROCESSOR), { instanceOf: VitgraphError });
    t.is(error?.code, 'invalid_config');
    t.is(error?.details.field, field);
    t.true(error?.message.startsWith(`config field "${field}": expected `), error?.message);
  });
}

test('processorFromConfig refuses a config that is not an object', (t) => {
  for (const json of [null, [], 'patch_size', 14]) {
    const error = t.throws(() => processorFromConfig(json, QWEN3_VL_PROCESSOR), { instanceOf: VitgraphError });
    t.is(error?.code, 'invalid_config');
    t.is(error?.details.field, 'preprocessor_config.json');
  }
});

test('processorFromConfig accepts the explicit defaults it implements (do_* true, 1/255, bicubic)', (t) => {
  const json = { do_resize: true, do_rescale: true, do_normalize: true, do_convert_rgb: true, rescale_factor: 0.00392156862745098, resample: 3 };
  t.deepEqual(processorFromConfig(json, QWEN3_VL_PROCESSOR), { ...QWEN3_VL_PROCESSOR });
});

test('readProcessorConfig: undefined without the file, the parsed JSON with it (symlinks followed)', async (t) => {
  const dir = await tempDir(t);
  t.is(await readProcessorConfig(dir), undefined);
  t.is(await readProcessorConfig(join(dir, 'missing-dir')), undefined);
  t.deepEqual(await loadProcessor(dir, QWEN2_VL_PROCESSOR), QWEN2_VL_PROCESSOR);

  await writeFile(join(dir, 'blob.json'), JSON.stringify({ ...QWEN25_VL_JSON, max_pixels: 1003520 }));
  await symlink(join(dir, 'blob.json'), join(dir, 'preprocessor_config.json'));
  t.like(await readProcessorConfig(dir), { max_pixels: 1003520, patch_size: 14 });
  t.deepEqual(await loadProcessor(dir, QWEN2_VL_PROCESSOR), { ...QWEN2_VL_PROCESSOR, maxPixels: 1003520 });
});

test('readProcessorConfig refuses a directory, an oversized file and bad JSON with invalid_file', async (t) => {
  const asDirectory = await tempDir(t);
  await mkdir(join(asDirectory, 'preprocessor_config.json'));
  const dirError = await t.throwsAsync(readProcessorConfig(asDirectory), { instanceOf: VitgraphError });
  t.is(dirError?.code, 'invalid_file');
  t.regex(dirError?.message ?? '', /to be a regular file, got a directory/);

  const oversized = await tempDir(t);
  await writeFile(join(oversized, 'preprocessor_config.json'), ' '.repeat((1 << 20) + 1));
  const sizeError = await t.throwsAsync(readProcessorConfig(oversized), { instanceOf: VitgraphError });
  t.is(sizeError?.code, 'invalid_file');
  t.regex(sizeError?.message ?? '', /expected at most 1048576 bytes, got 1048577/);

  const broken = await tempDir(t);
  await writeFile(join(broken, 'preprocessor_config.json'), '{"patch_size": 14,');
  const jsonError = await t.throwsAsync(readProcessorConfig(broken), { instanceOf: VitgraphError });
  t.is(jsonError?.code, 'invalid_file');
  t.regex(jsonError?.message ?? '', /preprocessor_config\.json: expected preprocessor_config\.json to be JSON, got text that does not parse/);

  const wrong = await tempDir(t);
  await writeFile(join(wrong, 'preprocessor_config.json'), '{"patch_size": 0}');
  await t.throwsAsync(loadProcessor(wrong, QWEN2_VL_PROCESSOR), { instanceOf: VitgraphError, message: /config field "patch_size"/ });
});

test('preprocess refuses hand-built params that cannot work, naming the field', async (t) => {
  const cases: [Partial<Record<keyof ProcessorParams, unknown>>, string][] = [
    [{ patchSize: 0 }, 'processor.patchSize'],
    [{ mergeSize: 1.5 }, 'processor.mergeSize'],
    [{ imageStd: [0.5, 0, 0.5] }, 'processor.imageStd'],
    [{ imageMean: [0.5, 0.5] }, 'processor.imageMean'],
    [{ normalization: 'fused' }, 'processor.normalization'],
    [{ videoPixelBudget: 'per-item' }, 'processor.videoPixelBudget'],
  ];
  for (const [change, what] of cases) {
    const processor = { ...QWEN2_VL_PROCESSOR, ...change } as ProcessorParams;
    const error = await t.throwsAsync(preprocess([chelsea], { processor }), { instanceOf: VitgraphError });
    t.is(error?.code, 'invalid_argument');
    t.is(error?.details.what, what);
  }
});

test('per-call minPixels / maxPixels override the processor budget', async (t) => {
  const own = await preprocess([chelsea], { processor: QWEN2_VL_PROCESSOR });
  t.deepEqual(own.items[0]!.resized, { height: 308, width: 448 });
  const capped = await preprocess([chelsea], { processor: QWEN2_VL_PROCESSOR, maxPixels: 28 * 28 * 64 });
  t.deepEqual(capped.items[0]!.resized, { height: 168, width: 252 }); // floor(300/β/28)·28, floor(451/β/28)·28
  t.deepEqual(Array.from(capped.gridThw), [1n, 12n, 18n]);
  t.is(capped.pixelValues.length, 12 * 18 * 1176);
});

test('Qwen2-VL videos: each frame bounded by the per-frame budget; 3 frames → t = 2 with the last repeated', async (t) => {
  const image = await preprocess([chelsea], { processor: QWEN2_VL_PROCESSOR });
  const video = await preprocess([{ frames: [chelsea, chelsea, chelsea] }], { processor: QWEN2_VL_PROCESSOR });
  // 308×448 = 137 984 px per frame is inside 100 352 … 602 112; a per-clip budget would differ.
  t.deepEqual(video.items[0]!.resized, { height: 308, width: 448 });
  t.deepEqual(Array.from(video.gridThw), [2n, 22n, 32n]);
  const rows = 22 * 32 * 1176;
  let differing = 0;
  for (let g = 0; g < 2; g++) for (let i = 0; i < rows; i++) if (video.pixelValues[g * rows + i] !== image.pixelValues[i]) differing++;
  t.is(differing, 0);

  const small = await preprocess([{ frames: [chelsea, chelsea] }], { processor: QWEN2_VL_PROCESSOR, videoMinPixels: 3136, videoMaxPixels: 28 * 28 * 100 });
  t.deepEqual(small.items[0]!.resized, { height: 224, width: 336 }, 'the per-frame image smart_resize with the video bounds');
  await t.throwsAsync(preprocess([{ frames: [chelsea] }], { processor: QWEN2_VL_PROCESSOR }), { instanceOf: VitgraphError, message: /video frame count: expected an integer ≥ 2/ });
});

/**
 * Upstream's flatten, transcribed: frames [T, H, W, C] → view (t, Tp, C, gh/m, m, P, gw/m, m, P),
 * permute (0, 3, 6, 4, 7, 2, 1, 5, 8), reshape [t·gh·gw, C·Tp·P²].
 */
function referencePatchify(frames: Uint8Array[], height: number, width: number, p: ProcessorParams): Float32Array {
  const { patchSize: P, mergeSize: m, temporalPatchSize: tp } = p;
  const t = Math.ceil(frames.length / tp);
  const gh = height / P;
  const gw = width / P;
  const levels = normalizedLevels(p);
  const out = new Float32Array(t * gh * gw * patchDim(p));
  for (let ti = 0; ti < t; ti++)
    for (let bh = 0; bh < gh / m; bh++)
      for (let bw = 0; bw < gw / m; bw++)
        for (let i = 0; i < m; i++)
          for (let j = 0; j < m; j++)
            for (let c = 0; c < 3; c++)
              for (let tau = 0; tau < tp; tau++)
                for (let y = 0; y < P; y++)
                  for (let x = 0; x < P; x++) {
                    const row = (((ti * (gh / m) + bh) * (gw / m) + bw) * m + i) * m + j;
                    const column = ((c * tp + tau) * P + y) * P + x;
                    const frame = frames[Math.min(ti * tp + tau, frames.length - 1)]!;
                    const pixel = ((bh * m + i) * P + y) * width + (bw * m + j) * P + x;
                    out[row * patchDim(p) + column] = levels[c]![frame[pixel * 3 + c]!]!;
                  }
  return out;
}

test('patchify for other sizes (P 3, merge 3, Tp 3; P 14, merge 2, Tp 2) equals the transcribed upstream reshape', (t) => {
  const shapes: [ProcessorParams, number, number, number][] = [
    [{ ...QWEN2_VL_PROCESSOR, patchSize: 3, mergeSize: 3, temporalPatchSize: 3 }, 18, 27, 4],
    [QWEN2_VL_PROCESSOR, 56, 84, 3],
    [{ ...QWEN3_VL_PROCESSOR, mergeSize: 1, temporalPatchSize: 1 }, 32, 48, 2],
  ];
  let seed = 7;
  const byte = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  for (const [processor, height, width, count] of shapes) {
    const frames = Array.from({ length: count }, () => Uint8Array.from({ length: height * width * 3 }, byte));
    const { pixelValues, gridThw } = patchify(frames, height, width, processor);
    t.deepEqual(gridThw, [Math.ceil(count / processor.temporalPatchSize), height / processor.patchSize, width / processor.patchSize]);
    const expected = referencePatchify(frames, height, width, processor);
    let differing = 0;
    for (let i = 0; i < expected.length; i++) if (pixelValues[i] !== expected[i]) differing++;
    t.is(pixelValues.length, expected.length);
    t.is(differing, 0);
  }
});

test('normalizedLevels: Qwen3-VL is float32(p/127.5 − 1) to within 2⁻²³; Qwen2-VL uses each channel’s mean and std (≤ 1e-6)', (t) => {
  const [q3] = normalizedLevels(QWEN3_VL_PROCESSOR);
  for (let p = 0; p < 256; p++) t.true(Math.abs(q3![p]! - Math.fround(p / 127.5 - 1)) <= 2 ** -23, `level ${p}`);
  const q2 = normalizedLevels(QWEN2_VL_PROCESSOR);
  for (let c = 0; c < 3; c++) {
    for (const p of [0, 128, 255]) t.true(Math.abs(q2[c]![p]! - (p / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!) <= 1e-6);
  }
});
