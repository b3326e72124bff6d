// Host-side checks of encoder inputs, so a bad call fails with a message that names the
// problem before ONNX Runtime sees it (the graph's own checks only stop wrong answers).

import { inputMismatch, invalidArgument } from '../../src/errors.js';
import type { HostTensor } from '../../src/tensor.js';
import { IO } from './io.js';

export interface EncoderInputs {
  readonly pixelValues: HostTensor; // float32 [N, patchDim]
  readonly gridThw: HostTensor; // int64 [I, 3]
}

/** Grid rows (t, h, w) as numbers, after checking `inputs` against each other. */
export function checkEncoderInputs({ pixelValues, gridThw }: EncoderInputs, patchDim: number, mergeSize = 2): [number, number, number][] {
  if (pixelValues.dtype !== 'float32' || pixelValues.shape.length !== 2 || pixelValues.shape[1] !== patchDim) {
    throw invalidArgument(IO.pixelValues, `float32 [N, ${patchDim}]`, `${pixelValues.dtype} [${pixelValues.shape.join(', ')}]`);
  }
  if (gridThw.dtype !== 'int64' || gridThw.shape.length !== 2 || gridThw.shape[1] !== 3) {
    throw invalidArgument(IO.gridThw, 'int64 [I, 3]', `${gridThw.dtype} [${gridThw.shape.join(', ')}]`);
  }
  const values = Array.from(gridThw.data as BigInt64Array, Number);
  const grid = Array.from({ length: values.length / 3 }, (_, i) => values.slice(3 * i, 3 * i + 3) as [number, number, number]);
  if (grid.length === 0) throw invalidArgument(IO.gridThw, 'at least one item', 'an empty [0, 3] grid');
  grid.forEach(([t, h, w], i) => {
    if (t < 1 || h < mergeSize || w < mergeSize || h % mergeSize !== 0 || w % mergeSize !== 0) {
      throw inputMismatch(
        `grid_thw row ${i}: expected t ≥ 1 and h, w positive multiples of ${mergeSize}, got [${t}, ${h}, ${w}]`,
        'grid_thw counts patches of 16 px, as the Qwen3-VL processor writes it',
        { item: i, row: [t, h, w] },
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
  return grid;
}
