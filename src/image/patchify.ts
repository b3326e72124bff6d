// Resized uint8 frames → normalized patch rows (spec §4.1.4–4.1.5).
// Mirrors transformers `Qwen2VLImageProcessor._preprocess` (rescale, normalize, then the
// view/permute/reshape into `flatten_patches`) and `Qwen3VLVideoProcessor.patchify`.

import { invalidArgument } from '../errors.js';

export const PATCH_SIZE = 16;
export const MERGE_SIZE = 2;
export const TEMPORAL_PATCH_SIZE = 2;
/** Values per patch row: channel (3) × frame in group (2) × 16 × 16. */
export const PATCH_DIM = 3 * TEMPORAL_PATCH_SIZE * PATCH_SIZE * PATCH_SIZE;

/**
 * Each uint8 level's normalized fp32 value: rescale p × float32(1/255) in float32, then
 * (x − 0.5)/0.5 in float32 (mean = std = 0.5). Equals p/127.5 − 1 to within 1 ulp; this order is the
 * one that reproduces the reference `pixel_values` bit for bit (fixtures/preprocess). Rescaling in
 * float64 before the cast, or the fused (p − 127.5)/127.5, each differ from it by 1 ulp at many levels.
 */
export const NORMALIZED_LEVELS: Float32Array = (() => {
  const levels = new Float32Array(256);
  const scale = Math.fround(1 / 255);
  for (let p = 0; p < 256; p++) {
    const rescaled = Math.fround(p * scale);
    levels[p] = Math.fround(Math.fround(rescaled - 0.5) / 0.5);
  }
  return levels;
})();

/**
 * Patches same-size HWC uint8 RGB frames into rows: frames are padded to an even count by
 * repeating the last, an image being one frame (so two identical ones, t = 1).
 *
 * frames: F × [height, width, 3] uint8 → pixelValues [t·gh·gw, 1536] float32, with t = ⌈F/2⌉,
 * gh = height/16, gw = width/16; gridThw = [t, gh, gw].
 */
export function patchify(frames: Uint8Array[], height: number, width: number): { pixelValues: Float32Array; gridThw: [number, number, number] } {
  if (frames.length === 0) throw invalidArgument('patchify frames', 'at least one frame', 0);
  const gridThw = patchGrid(frames.length, height, width);
  const pixelValues = new Float32Array(gridThw[0] * gridThw[1] * gridThw[2] * PATCH_DIM);
  for (let g = 0; g < gridThw[0]; g++) {
    const first = frames[2 * g]!;
    const second = frames[Math.min(2 * g + 1, frames.length - 1)]!;
    patchGroup(pixelValues, g * gridThw[1] * gridThw[2], first, second, height, width, 3);
  }
  return { pixelValues, gridThw };
}

/** [t, gh, gw] for `frames` frames of `height × width`; both sides must be multiples of 32. */
export function patchGrid(frames: number, height: number, width: number): [number, number, number] {
  const unit = PATCH_SIZE * MERGE_SIZE;
  for (const [what, side] of [
    ['patchify height', height],
    ['patchify width', width],
  ] as const) {
    if (!Number.isInteger(side) || side < unit || side % unit !== 0) {
      throw invalidArgument(what, `a positive multiple of ${unit} (patch ${PATCH_SIZE} × merge ${MERGE_SIZE})`, side, 'Resize with smartResize first');
    }
  }
  return [Math.ceil(frames / TEMPORAL_PATCH_SIZE), height / PATCH_SIZE, width / PATCH_SIZE];
}

/**
 * Writes one temporal group (two frames) as gh·gw rows of `out`, starting at row `rowOffset`.
 *
 * Row order is merge-window order: window row, window column, then the 2×2 patches inside the window
 * (patch (2·br + i, 2·bc + j) is row ((br·gw/2 + bc)·4 + 2i + j)). Column order is (c, τ, y, x):
 * index c·512 + τ·256 + y·16 + x, matching the Conv3d weight flattening.
 *
 * first, second: [height, width, channels] uint8 with channels 3 (RGB) or 1 (gray, replicated).
 */
export function patchGroup(
  out: Float32Array,
  rowOffset: number,
  first: Uint8Array,
  second: Uint8Array,
  height: number,
  width: number,
  channels: 1 | 3,
): void {
  const expected = height * width * channels;
  for (const frame of [first, second]) {
    if (frame.length !== expected) {
      throw invalidArgument('frame length', `${height}×${width}×${channels} = ${expected} bytes`, frame.length);
    }
  }
  const gw = width / PATCH_SIZE;
  const windowsPerRow = gw / MERGE_SIZE;
  const planeStride = TEMPORAL_PATCH_SIZE * PATCH_SIZE * PATCH_SIZE; // 512: one channel's values
  const levels = NORMALIZED_LEVELS;
  for (let tau = 0; tau < TEMPORAL_PATCH_SIZE; tau++) {
    const frame = tau === 0 ? first : second;
    for (let yy = 0; yy < height; yy++) {
      const py = yy >> 4; // patch row
      const y = yy & 15; // pixel row inside the patch
      const windowRow = py >> 1;
      const i = py & 1;
      for (let px = 0; px < gw; px++) {
        const row = rowOffset + (windowRow * windowsPerRow + (px >> 1)) * 4 + i * 2 + (px & 1);
        const o = row * PATCH_DIM + tau * PATCH_SIZE * PATCH_SIZE + y * PATCH_SIZE;
        let s = (yy * width + px * PATCH_SIZE) * channels;
        if (channels === 3) {
          for (let x = 0; x < PATCH_SIZE; x++, s += 3) {
            out[o + x] = levels[frame[s]!]!;
            out[o + planeStride + x] = levels[frame[s + 1]!]!;
            out[o + 2 * planeStride + x] = levels[frame[s + 2]!]!;
          }
        } else {
          for (let x = 0; x < PATCH_SIZE; x++, s++) {
            const v = levels[frame[s]!]!;
            out[o + x] = v;
            out[o + planeStride + x] = v;
            out[o + 2 * planeStride + x] = v;
          }
        }
      }
    }
  }
}
