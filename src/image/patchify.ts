// Resized uint8 frames → normalized patch rows (spec §4.1.4–4.1.5), for any patch, merge and
// temporal size. Mirrors transformers `Qwen2VLImageProcessor._preprocess` (rescale, normalize, then
// the view/permute/reshape into `flatten_patches`) and `Qwen3VLVideoProcessor.patchify`.

import { invalidArgument } from '../errors.js';
import { patchDim, sizeFactor, type ProcessorParams } from './processor.js';

/** One lookup table per channel (R, G, B): uint8 level → normalized float32. */
export type LevelTables = readonly [Float32Array, Float32Array, Float32Array];

/** Joined tables by arithmetic, mean and std (a handful of distinct processors per process). */
const levelCache = new Map<string, Float32Array>();

/**
 * Each uint8 level's normalized float32 value per channel, computed as `processor.normalization`
 * says: the rescale to [0, 1] (float32 × float32(1/255), or float64 × 1/255 then cast), then
 * (v − mean) / std in float32 with float32 mean and std (each JS operation on float32 operands
 * rounded back with Math.fround equals the float32 operation). For Qwen3-VL this gives p/127.5 − 1 to
 * within 1 ulp, in the order that reproduces its reference `pixel_values` bit for bit.
 * The tables are views of one cached array: do not write to them.
 */
export function normalizedLevels(processor: ProcessorParams): LevelTables {
  const joined = joinedLevels(processor);
  return [joined.subarray(0, 256), joined.subarray(256, 512), joined.subarray(512, 768)];
}

/** The three tables as one [3·256] array, channel c's level p at c·256 + p: one array keeps the patch loop tight. */
function joinedLevels(processor: ProcessorParams): Float32Array {
  const { normalization, imageMean, imageStd } = processor;
  const key = `${normalization}|${imageMean.join(',')}|${imageStd.join(',')}`;
  const cached = levelCache.get(key);
  if (cached) return cached;
  const f32Scale = Math.fround(1 / 255);
  const rescale = normalization === 'rescale-f32-normalize-f32' ? (p: number) => Math.fround(p * f32Scale) : (p: number) => Math.fround(p * (1 / 255));
  const joined = new Float32Array(3 * 256);
  for (const c of [0, 1, 2] as const) {
    const mean = Math.fround(imageMean[c]);
    const std = Math.fround(imageStd[c]);
    for (let p = 0; p < 256; p++) joined[c * 256 + p] = Math.fround(Math.fround(rescale(p) - mean) / std);
  }
  levelCache.set(key, joined);
  return joined;
}

/**
 * Patches same-size HWC uint8 RGB frames into rows: frames are padded to a multiple of
 * Tp = `temporalPatchSize` by repeating the last, an image being one frame (so Tp identical ones, t = 1).
 *
 * frames: F × [height, width, 3] uint8 → pixelValues [t·gh·gw, 3·Tp·P²] float32, with t = ⌈F/Tp⌉,
 * gh = height/P, gw = width/P; gridThw = [t, gh, gw].
 */
export function patchify(frames: Uint8Array[], height: number, width: number, processor: ProcessorParams): { pixelValues: Float32Array; gridThw: [number, number, number] } {
  if (frames.length === 0) throw invalidArgument('patchify frames', 'at least one frame', 0);
  const gridThw = patchGrid(frames.length, height, width, processor);
  const [groups, gh, gw] = gridThw;
  const tp = processor.temporalPatchSize;
  const pixelValues = new Float32Array(groups * gh * gw * patchDim(processor));
  for (let g = 0; g < groups; g++) {
    const group = Array.from({ length: tp }, (_, k) => frames[Math.min(g * tp + k, frames.length - 1)]!);
    patchGroup(pixelValues, g * gh * gw, group, height, width, 3, processor);
  }
  return { pixelValues, gridThw };
}

/** [t, gh, gw] for `frames` frames of `height × width`; both sides must be multiples of patch × merge. */
export function patchGrid(frames: number, height: number, width: number, processor: ProcessorParams): [number, number, number] {
  const unit = sizeFactor(processor);
  for (const [what, side] of [
    ['patchify height', height],
    ['patchify width', width],
  ] as const) {
    if (!Number.isInteger(side) || side < unit || side % unit !== 0) {
      throw invalidArgument(what, `a positive multiple of ${unit} (patch ${processor.patchSize} × merge ${processor.mergeSize})`, side, 'Resize with smartResize first');
    }
  }
  return [Math.ceil(frames / processor.temporalPatchSize), height / processor.patchSize, width / processor.patchSize];
}

/**
 * Writes one temporal group (Tp frames) as gh·gw rows of `out`, starting at row `rowOffset`.
 *
 * Row order is merge-window order: window row, window column, then the m×m patches inside the window
 * (patch (m·br + i, m·bc + j) is row ((br·gw/m + bc)·m² + m·i + j)). Column order is (c, τ, y, x):
 * index ((c·Tp + τ)·P + y)·P + x, matching the Conv3d weight flattening.
 *
 * frames: Tp × [height, width, channels] uint8 with channels 3 (RGB) or 1 (gray, replicated);
 * height and width multiples of P·m (see patchGrid).
 */
export function patchGroup(out: Float32Array, rowOffset: number, frames: readonly Uint8Array[], height: number, width: number, channels: 1 | 3, processor: ProcessorParams): void {
  const { patchSize: p, mergeSize: m, temporalPatchSize: tp } = processor;
  if (frames.length !== tp) throw invalidArgument('patch group frames', `${tp} (the temporal patch size)`, frames.length);
  const expected = height * width * channels;
  for (const frame of frames) {
    if (frame.length !== expected) {
      throw invalidArgument('frame length', `${height}×${width}×${channels} = ${expected} bytes`, frame.length);
    }
  }
  const dim = patchDim(processor);
  const windowsPerRow = width / p / m;
  const planeStride = tp * p * p; // one channel's values in a row
  const windowStride = m * m * dim; // values per merge window
  const levels = joinedLevels(processor); // [R levels, G levels, B levels]
  for (let tau = 0; tau < tp; tau++) {
    const frame = frames[tau]!;
    for (let yy = 0; yy < height; yy++) {
      const py = Math.floor(yy / p); // patch row
      const y = yy - py * p; // pixel row inside the patch
      const windowRow = Math.floor(py / m);
      const i = py - windowRow * m; // patch row inside the window
      const band = (rowOffset + windowRow * windowsPerRow * m * m + i * m) * dim + tau * p * p + y * p;
      let s = yy * width * channels;
      // Patch column px = bc·m + j sits in window bc at column j: row (bc·m² + j) of the band.
      for (let bc = 0; bc < windowsPerRow; bc++) {
        for (let j = 0; j < m; j++) {
          const o = band + bc * windowStride + j * dim;
          if (channels === 3) {
            for (let x = 0; x < p; x++, s += 3) {
              out[o + x] = levels[frame[s]!]!;
              out[o + planeStride + x] = levels[256 + frame[s + 1]!]!;
              out[o + 2 * planeStride + x] = levels[512 + frame[s + 2]!]!;
            }
          } else {
            for (let x = 0; x < p; x++, s++) {
              const v = frame[s]!;
              out[o + x] = levels[v]!;
              out[o + planeStride + x] = levels[256 + v]!;
              out[o + 2 * planeStride + x] = levels[512 + v]!;
            }
          }
        }
      }
    }
  }
}
