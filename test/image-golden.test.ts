// Preprocessing against the upstream processor's outputs for five real photographs
// (fixtures/preprocess/README.md: Pillow 9.4 and torchvision 0.14 references).

import test from 'ava';
import { fileURLToPath } from 'node:url';
import { decodeImage, preprocess, resizeBicubic, sizeFactor, smartResize } from '../src/image/index.js';
import { readSafetensors } from '../src/weights/safetensors.js';
import type { HostTensor } from '../src/tensor.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));

const CASES = [
  { name: 'astronaut', file: 'astronaut.png' }, // RGB, 512×512: no resize
  { name: 'camera', file: 'camera.png' }, // gray, 512×512
  { name: 'chelsea', file: 'chelsea.png' }, // RGB, 451×300 → 448×288 (both axes shrink)
  { name: 'logo', file: 'logo.png' }, // RGBA, 500×500 → 512×512 (alpha on white, upscale)
  { name: 'rocket', file: 'rocket.jpg' }, // JPEG, 640×427 → 640×416 (vertical pass only)
] as const;

/** Target agreement with Pillow: bit-exact. The brief's floor is mean ≤ 0.25 LSB and p99.9 ≤ 2 LSB. */
const PIL_TOLERANCE = { max: 0, mean: 0, p999: 0 };
/** The two references differ by ≤ 11 LSB at a few edge pixels and ≤ 0.19 LSB on average. */
const TV_TOLERANCE = { max: 11, mean: 0.25, p999: 2 };

interface DiffStats {
  max: number;
  mean: number;
  p999: number;
}

/** |a − b| over uint8 arrays: max, mean and 99.9th percentile (via a 256-bin histogram). */
function diffStats(a: Uint8Array, b: Uint8Array): DiffStats {
  const histogram = new Float64Array(256);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    histogram[d] = histogram[d]! + 1;
    sum += d;
  }
  let max = 0;
  for (let d = 0; d < 256; d++) if (histogram[d]! > 0) max = d;
  let p999 = 0;
  for (let d = 0, seen = 0; d < 256; d++) {
    seen += histogram[d]!;
    if (seen >= 0.999 * a.length) {
      p999 = d;
      break;
    }
  }
  return { max, mean: sum / a.length, p999 };
}

const format = (s: DiffStats): string => `max ${s.max}, mean ${s.mean.toPrecision(3)}, p99.9 ${s.p999} LSB`;

function tensor(goldens: Map<string, HostTensor>, name: string): HostTensor {
  const t = goldens.get(name);
  if (!t) throw new Error(`golden tensor ${name} missing`);
  return t;
}

for (const { name, file } of CASES) {
  const path = `${fixtures}images/${file}`;
  const goldens = readSafetensors(`${fixtures}preprocess/${name}.safetensors`);

  test(`${file}: resized pixels are bit-exact vs Pillow 9.4 and within the reference spread of torchvision 0.14`, async (t) => {
    const g = await goldens;
    const image = await decodeImage(path);
    const size = smartResize(image.height, image.width, { factor: sizeFactor(QWEN3_VL_PROCESSOR), minPixels: QWEN3_VL_PROCESSOR.minPixels, maxPixels: QWEN3_VL_PROCESSOR.maxPixels });
    const resized = resizeBicubic(image.data, image.width, image.height, 3, size.width, size.height);
    const pil = tensor(g, 'resized_pil');
    t.deepEqual(pil.shape, [size.height, size.width, 3]);
    const vsPil = diffStats(resized, pil.data as Uint8Array);
    const vsTv = diffStats(resized, tensor(g, 'resized_tv').data as Uint8Array);
    t.log(`${file} ${image.width}×${image.height} → ${size.width}×${size.height}: vs Pillow ${format(vsPil)}; vs torchvision ${format(vsTv)}`);
    t.true(vsPil.max <= PIL_TOLERANCE.max && vsPil.mean <= PIL_TOLERANCE.mean && vsPil.p999 <= PIL_TOLERANCE.p999, format(vsPil));
    t.true(vsTv.max <= TV_TOLERANCE.max && vsTv.mean <= TV_TOLERANCE.mean && vsTv.p999 <= TV_TOLERANCE.p999, format(vsTv));
  });

  test(`${file}: grid_thw, pixel_values head (bit-exact) and column sums (|Δ| ≤ 1e-9) match the reference`, async (t) => {
    const g = await goldens;
    const out = await preprocess([path], { processor: QWEN3_VL_PROCESSOR });
    t.deepEqual(Array.from(out.gridThw), Array.from(tensor(g, 'grid_thw').data as BigInt64Array));
    const [, gh, gw] = out.items[0]!.gridThw;
    t.is(out.pixelValues.length, gh * gw * 1536);

    const head = tensor(g, 'pixel_values_head').data as Float32Array;
    let mismatches = 0;
    for (let i = 0; i < head.length; i++) if (out.pixelValues[i] !== head[i]) mismatches++;
    t.is(mismatches, 0, 'pixel_values_head elements differing');

    const sums = tensor(g, 'pixel_values_sum').data as Float64Array;
    const rows = out.pixelValues.length / 1536;
    let worst = 0;
    for (let c = 0; c < 1536; c++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += out.pixelValues[r * 1536 + c]!;
      worst = Math.max(worst, Math.abs(sum - sums[c]!));
    }
    t.log(`${file}: head mismatches ${mismatches}/${head.length}, worst column-sum |Δ| ${worst}`);
    t.true(worst <= 1e-9, `column sum |Δ| ${worst}`);
  });
}
