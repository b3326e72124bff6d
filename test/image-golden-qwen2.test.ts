// Preprocessing with the Qwen2-VL / Qwen2.5-VL processor (factor 28, CLIP mean/std, float64 rescale)
// against the upstream processor's outputs for five real photographs
// (fixtures/preprocess-qwen2/README.md: transformers' PIL path, Pillow 9.4).

import test from 'ava';
import { fileURLToPath } from 'node:url';
import { VitgraphError } from '../src/errors.js';
import { decodeImage, patchDim, preprocess, resizeBicubic, sizeFactor, smartResize } from '../src/image/index.js';
import { readSafetensors } from '../src/weights/safetensors.js';
import type { HostTensor } from '../src/tensor.js';
import { QWEN2_VL_PROCESSOR } from '../graphs/shared/qwen2.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const processor = QWEN2_VL_PROCESSOR;
const DIM = 1176; // 3 channels × 2 frames × 14²

const CASES = [
  { name: 'astronaut', file: 'astronaut.png', grid: [1, 36, 36] }, // RGB 512² → 504²
  { name: 'camera', file: 'camera.png', grid: [1, 36, 36] }, // gray 512² → 504²
  { name: 'chelsea', file: 'chelsea.png', grid: [1, 22, 32] }, // 300×451 → 308×448 (H×W)
  { name: 'logo', file: 'logo.png', grid: [1, 36, 36] }, // RGBA 500² → 504²
  { name: 'rocket', file: 'rocket.jpg', grid: [1, 30, 46] }, // JPEG 427×640 → 420×644
] as const;

/** Column sums are compared relative to the column's magnitude: sums of ~10⁵ float32 values in float64. */
const SUM_RTOL = 1e-9;

function tensor(goldens: Map<string, HostTensor>, name: string): HostTensor {
  const t = goldens.get(name);
  if (!t) throw new Error(`golden tensor ${name} missing`);
  return t;
}

test('QWEN2_VL_PROCESSOR: factor 28, 1176 values per row', (t) => {
  t.is(sizeFactor(processor), 28);
  t.is(patchDim(processor), DIM);
});

for (const { name, file, grid } of CASES) {
  const path = `${fixtures}images/${file}`;
  const goldens = readSafetensors(`${fixtures}preprocess-qwen2/${name}.safetensors`);

  test(`${file}: factor-28 smart_resize and Pillow bicubic are bit-exact (max |Δ| = 0)`, async (t) => {
    const g = await goldens;
    const image = await decodeImage(path);
    const size = smartResize(image.height, image.width, { factor: sizeFactor(processor), minPixels: processor.minPixels, maxPixels: processor.maxPixels });
    const pil = tensor(g, 'resized_pil');
    t.deepEqual(pil.shape, [size.height, size.width, 3]);
    const resized = resizeBicubic(image.data, image.width, image.height, 3, size.width, size.height);
    const reference = pil.data as Uint8Array;
    let max = 0;
    for (let i = 0; i < resized.length; i++) max = Math.max(max, Math.abs(resized[i]! - reference[i]!));
    t.is(max, 0, 'max |Δ| vs Pillow in levels');
  });

  test(`${file}: grid_thw, pixel_values head (bit-exact) and column sums (rel ≤ 1e-9) match the reference`, async (t) => {
    const g = await goldens;
    const out = await preprocess([path], { processor });
    t.deepEqual(Array.from(out.gridThw), Array.from(tensor(g, 'grid_thw').data as BigInt64Array));
    t.deepEqual(out.items[0]!.gridThw, [...grid]);
    t.is(out.patchDim, DIM);
    t.is(out.pixelValues.length, grid[1] * grid[2] * DIM);

    const head = tensor(g, 'pixel_values_head').data as Float32Array;
    t.is(head.length, 64 * DIM);
    let mismatches = 0;
    for (let i = 0; i < head.length; i++) if (out.pixelValues[i] !== head[i]) mismatches++;
    t.is(mismatches, 0, 'pixel_values_head elements differing');

    const sums = tensor(g, 'pixel_values_sum').data as Float64Array;
    const rows = out.pixelValues.length / DIM;
    let worst = 0;
    for (let c = 0; c < DIM; c++) {
      let sum = 0;
      let magnitude = 0;
      for (let r = 0; r < rows; r++) {
        const v = out.pixelValues[r * DIM + c]!;
        sum += v;
        magnitude += Math.abs(v);
      }
      worst = Math.max(worst, Math.abs(sum - sums[c]!) / magnitude);
    }
    t.log(`${file}: head mismatches ${mismatches}/${head.length}, worst column-sum |Δ| / Σ|v| ${worst.toExponential(2)}`);
    t.true(worst <= SUM_RTOL, `column sum relative |Δ| ${worst}`);
  });
}

test('truncated.jpg is rejected with invalid_file under the Qwen2-VL processor too', async (t) => {
  const error = await t.throwsAsync(preprocess([`${fixtures}images/truncated.jpg`], { processor }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_file');
});

test('the float32 rescale (Qwen3-VL arithmetic) misses this reference: the normalization variant matters', async (t) => {
  const g = await readSafetensors(`${fixtures}preprocess-qwen2/astronaut.safetensors`);
  const out = await preprocess([`${fixtures}images/astronaut.png`], { processor: { ...processor, normalization: 'rescale-f32-normalize-f32' } });
  const head = tensor(g, 'pixel_values_head').data as Float32Array;
  let mismatches = 0;
  for (let i = 0; i < head.length; i++) if (out.pixelValues[i] !== head[i]) mismatches++;
  t.log(`astronaut.png with the float32 rescale: ${mismatches}/${head.length} head elements differ (by 1 ulp)`);
  t.true(mismatches > 0);
});
