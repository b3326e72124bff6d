// Host-side checks of encoder inputs, so a bad call fails with a message that names the
// problem before ONNX Runtime sees it. The dynamic graph repeats the grid checks itself; padded
// graphs trust their inputs, and every runtime path goes through these checks first.
// Grid arithmetic is done in BigInt: an int64 grid row can hold values whose product no
// float64 (and no int64) represents, and a wrapped product must never pass for a match.

import { VitgraphError, inputMismatch, invalidArgument } from '../errors.js';
import type { HostTensor } from '../tensor.js';
import { INPUTS as IO, MAX_GRID_VALUE, MAX_ITEM_ROWS } from '../contract.js';

export type GridRow = readonly [t: number, h: number, w: number];

export interface EncoderInputs {
  readonly pixelValues: HostTensor; // float32 [N, patchDim]
  readonly gridThw: HostTensor; // int64 [I, 3]
}

/**
 * Grid rows (t, h, w) as numbers, after checking `inputs` against each other: every value in
 * 1..2^20 with h, w multiples of the merge size, t·h·w ≤ 2^31, Σ t·h·w = N (all exact), and
 * every pixel of every item finite (the error names the first item that is not).
 */
export function checkEncoderInputs({ pixelValues, gridThw }: EncoderInputs, patchDim: number, mergeSize: number): [number, number, number][] {
  if (pixelValues.dtype !== 'float32' || pixelValues.shape.length !== 2 || pixelValues.shape[1] !== patchDim) {
    throw invalidArgument(IO.pixelValues, `float32 [N, ${patchDim}]`, `${pixelValues.dtype} [${pixelValues.shape.join(', ')}]`);
  }
  if (gridThw.dtype !== 'int64' || gridThw.shape.length !== 2 || gridThw.shape[1] !== 3) {
    throw invalidArgument(IO.gridThw, 'int64 [I, 3]', `${gridThw.dtype} [${gridThw.shape.join(', ')}]`);
  }
  const values = gridThw.data as BigInt64Array;
  const items = values.length / 3;
  if (items === 0) throw invalidArgument(IO.gridThw, 'at least one item', 'an empty [0, 3] grid');
  const m = BigInt(mergeSize);
  const max = BigInt(MAX_GRID_VALUE);
  let rows = 0n;
  const grid: [number, number, number][] = [];
  for (let i = 0; i < items; i++) {
    const [t, h, w] = [values[3 * i]!, values[3 * i + 1]!, values[3 * i + 2]!];
    const row = `[${t}, ${h}, ${w}]`;
    const hint = "grid_thw counts patches, as the model's processor writes it";
    if (t < 1n || h < m || w < m || h % m !== 0n || w % m !== 0n) {
      throw inputMismatch(`grid_thw row ${i}: expected t ≥ 1 and h, w positive multiples of ${mergeSize}, got ${row}`, hint, { item: i, row: [t, h, w].map(Number) });
    }
    if (t > max || h > max || w > max) {
      throw inputMismatch(`grid_thw row ${i}: expected t, h, w ≤ ${MAX_GRID_VALUE}, got ${row}`, hint, { item: i, row: [t, h, w].map(String) });
    }
    const itemRows = t * h * w;
    if (itemRows > BigInt(MAX_ITEM_ROWS)) {
      throw inputMismatch(`grid_thw row ${i}: expected t·h·w ≤ ${MAX_ITEM_ROWS} patch rows, got ${row} = ${itemRows}`, 'Split the video or resize the image', { item: i });
    }
    rows += itemRows;
    grid.push([Number(t), Number(h), Number(w)]);
  }
  if (rows !== BigInt(pixelValues.shape[0]!)) {
    throw inputMismatch(
      `pixel_values has ${pixelValues.shape[0]} rows but grid_thw describes ${rows} (Σ t·h·w over ${items} item${items === 1 ? '' : 's'})`,
      'Pass the grid_thw that came with these pixel_values',
      { rows: pixelValues.shape[0], expected: Number(rows) },
    );
  }
  checkFinite(pixelValues.data as Float32Array, patchDim, grid);
  return grid;
}

/**
 * Refuses NaN and ±Inf pixels, naming the item that holds them: a non-finite input never
 * produces numbers, and in a bucket run it could otherwise reach its neighbours' outputs.
 */
function checkFinite(pixels: Float32Array, patchDim: number, grid: readonly (readonly [number, number, number])[]): void {
  let start = 0;
  for (const [item, [t, h, w]] of grid.entries()) {
    const end = start + t * h * w * patchDim;
    for (let i = start; i < end; i++) {
      const v = pixels[i]!;
      if (v - v !== 0) {
        // v − v is NaN exactly when v is NaN or ±Inf.
        const row = Math.floor(i / patchDim);
        throw new VitgraphError(
          'invalid_argument',
          `pixel_values item ${item}: expected finite values, got ${v} at row ${row}, column ${i % patchDim}. Check that item's decoding or normalisation; the other items were not run`,
          { item, row, column: i % patchDim, value: String(v) },
        );
      }
    }
    start = end;
  }
}
