// Host-side checks of encoder inputs, so a bad call fails with a message that names the
// problem before ONNX Runtime sees it. The dynamic graph repeats the grid checks itself; padded
// graphs trust their inputs, and every runtime path goes through these checks first.

import { inputMismatch, invalidArgument } from '../errors.js';
import type { HostTensor } from '../tensor.js';
import { INPUTS } from './io.js';

export interface EncoderInputs {
  readonly pixelValues: HostTensor; // float32 [N, patchDim]
  readonly gridThw: HostTensor; // int64 [I, 3]
}

/** Largest t, h or w accepted: far beyond any real image, small enough that t·h·w is exact. */
export const MAX_GRID_SIDE = 1 << 20;

export type GridRow = readonly [t: number, h: number, w: number];

/**
 * Grid rows (t, h, w) as numbers, after checking `inputs` against each other: every value
 * positive and at most MAX_GRID_SIDE (so products are exact), h and w multiples of the merge size,
 * Σ t·h·w equal to the pixel rows, and every pixel finite (a NaN or Inf item is refused, naming
 * the item, rather than encoded into numbers).
 */
export function checkEncoderInputs({ pixelValues, gridThw }: EncoderInputs, patchDim: number, mergeSize: number): GridRow[] {
  if (pixelValues.dtype !== 'float32' || pixelValues.shape.length !== 2 || pixelValues.shape[1] !== patchDim) {
    throw invalidArgument(INPUTS.pixelValues, `float32 [N, ${patchDim}]`, `${pixelValues.dtype} [${pixelValues.shape.join(', ')}]`);
  }
  if (gridThw.dtype !== 'int64' || gridThw.shape.length !== 2 || gridThw.shape[1] !== 3) {
    throw invalidArgument(INPUTS.gridThw, 'int64 [I, 3]', `${gridThw.dtype} [${gridThw.shape.join(', ')}]`);
  }
  const values = Array.from(gridThw.data as BigInt64Array, (v) => (v > BigInt(MAX_GRID_SIDE) || v < -1n ? Infinity : Number(v)));
  const grid = Array.from({ length: values.length / 3 }, (_, i) => values.slice(3 * i, 3 * i + 3) as unknown as GridRow);
  if (grid.length === 0) throw invalidArgument(INPUTS.gridThw, 'at least one item', 'an empty [0, 3] grid');
  grid.forEach(([t, h, w], i) => {
    const inRange = (v: number, min: number): boolean => Number.isInteger(v) && v >= min && v <= MAX_GRID_SIDE;
    if (!inRange(t, 1) || !inRange(h, mergeSize) || !inRange(w, mergeSize) || h % mergeSize !== 0 || w % mergeSize !== 0) {
      const shown = Array.from((gridThw.data as BigInt64Array).subarray(3 * i, 3 * i + 3), String).join(', ');
      throw inputMismatch(
        `grid_thw row ${i}: expected 1 ≤ t ≤ ${MAX_GRID_SIDE} and h, w multiples of ${mergeSize} up to ${MAX_GRID_SIDE}, got [${shown}]`,
        'grid_thw counts patches, as the model\'s processor writes it',
        { item: i, row: Array.from((gridThw.data as BigInt64Array).subarray(3 * i, 3 * i + 3), Number) },
      );
    }
  });
  const rows = grid.reduce((sum, [t, h, w]) => sum + t * h * w, 0);
  if (rows !== pixelValues.shape[0]) {
    throw inputMismatch(
      `pixel_values has ${pixelValues.shape[0]} rows but grid_thw describes ${rows} (Σ t·h·w over ${grid.length} item${grid.length === 1 ? '' : 's'})`,
      'Pass the grid_thw that came with these pixel_values',
      { rows: pixelValues.shape[0], expected: rows },
    );
  }
  checkFinite(pixelValues.data as Float32Array, grid, patchDim);
  return grid;
}

/** Refuses the first item holding a NaN or ±Inf pixel value. */
function checkFinite(pixels: Float32Array, grid: readonly GridRow[], patchDim: number): void {
  let start = 0;
  grid.forEach(([t, h, w], item) => {
    const end = start + t * h * w * patchDim;
    for (let i = start; i < end; i++) {
      // v − v is 0 for finite v and NaN for NaN or ±Inf: one comparison per value.
      if (pixels[i]! - pixels[i]! !== 0) {
        throw inputMismatch(
          `pixel_values of item ${item}: expected finite values, got ${pixels[i]} at row ${Math.floor(i / patchDim)}, column ${i % patchDim}`,
          'Check how these pixels were produced; other items of the request are unaffected',
          { item, row: Math.floor(i / patchDim), column: i % patchDim },
        );
      }
    }
    start = end;
  });
}
