// The graph inputs every tower takes, declared and checked once: pixel_values [N, C·Tp·P²]
// float32 and grid_thw [I, 3] int64 (dynamic), or their fixed-shape bucket forms (padded).

import { GraphBuilder, op, type ParameterSource, type Value } from '../../src/onnx/index.js';
import type { Bucket, FloatDType } from '../../src/model.js';
import type { LinearScheme } from '../../src/onnx/linear-scheme.js';
import { INPUTS as IO, MAX_GRID_VALUE, MAX_ITEM_ROWS, slotPatches, TOKEN_COUNT } from '../../src/contract.js';
import type { AttentionKind, ItemSlots } from './attention.js';
import { patchCoordinates, type PatchCoordinates } from './layout.js';

export type { Bucket } from '../../src/model.js';

export interface PaddedGraphOptions {
  /** Weights and matmuls in this dtype (default float32); norms' statistics, rotary and interpolation stay float32. */
  dtype?: FloatDType;
  /** The device the bucket is for (default 'cpu'; see src/contract.ts `slotPatches` and graphs/shared/attention.ts). */
  device?: 'cpu' | 'cuda' | undefined;
  /** How Linear layers store weights (default float in `dtype`; quantized: see src/onnx/linear-scheme.ts). */
  linear?: LinearScheme | undefined;
}

export interface DynamicGraphOptions extends PaddedGraphOptions {
  /** 'looped' (default): fused attention per segment; 'dense': decomposed with [N, N] masks. */
  attention?: AttentionKind;
}

/** What the input checks need of a tower config. */
export interface InputShape {
  readonly patchDim: number; // C·Tp·P²
  readonly spatialMergeSize: number; // m
  readonly mergeUnit: number; // m²
}

/** A graph under construction: the builder, its float precision and its inputs (pixels not yet cast). */
export interface TowerGraph {
  readonly g: GraphBuilder;
  readonly dtype: FloatDType;
  readonly pixels: Value;
  readonly grid: Value;
  readonly rowIndex: Value;
}

const towerBuilder = (name: string, params: ParameterSource, options: PaddedGraphOptions): { g: GraphBuilder; dtype: FloatDType } => {
  const dtype = options.dtype ?? 'float32';
  return { g: new GraphBuilder({ name, params, paramDType: dtype, linearScheme: options.linear }), dtype };
};

/** `<family>_vision_dynamic` with its checked dynamic inputs. */
export function dynamicGraph(family: string, shape: InputShape, params: ParameterSource, options: PaddedGraphOptions): TowerGraph {
  const { g, dtype } = towerBuilder(`${family}_vision_dynamic`, params, options);
  return { g, dtype, ...dynamicInputs(g, shape) };
}

/** `<family>_vision_padded_<Nmax>` with the bucket's inputs and each row's place in the grid (and, slotted, its slots). */
export function paddedGraph(family: string, shape: InputShape, params: ParameterSource, bucket: Bucket, options: PaddedGraphOptions): TowerGraph & { coords: PatchCoordinates; slots?: ItemSlots } {
  const { g, dtype } = towerBuilder(`${family}_vision_padded_${bucket.maxPatches}`, params, options);
  const inputs = paddedInputs(g, shape, bucket);
  const size = slotPatches(bucket, options.device ?? 'cpu');
  if (size === undefined) return { g, dtype, ...inputs, coords: patchCoordinates(g, shape, inputs.grid, inputs.rowIndex) };
  const { patchIndex, slots } = g.scope('slots', () => slotLayout(g, inputs.grid, inputs.rowIndex, bucket, size));
  return { g, dtype, ...inputs, coords: patchCoordinates(g, shape, inputs.grid, patchIndex), slots };
}

/**
 * Where each row of a slotted bucket lies among the items as patchCoordinates counts them (packed):
 * row r of slot i = ⌊r / S⌋ is packed row start[i] + (r mod S) while r mod S < t·h·w of item i, and
 * padding (an index ≥ Σ t·h·w) after it. Slot and offset per row are constants of the bucket.
 */
function slotLayout(g: GraphBuilder, grid: Value, rowIndex: Value, bucket: Bucket, size: number): { patchIndex: Value; slots: ItemSlots } {
  const rows = Array.from({ length: bucket.maxPatches }, (_, r) => r);
  const slot = g.constant(
    'int64',
    [bucket.maxPatches],
    rows.map((r) => BigInt(Math.floor(r / size))),
    'slot_of_row',
  ); // [Nmax]
  const offset = g.constant(
    'int64',
    [bucket.maxPatches],
    rows.map((r) => BigInt(r % size)),
    'offset_in_slot',
  ); // [Nmax]
  const [t, h, w] = op.split(grid, 1, [1, 1, 1]).map((c) => op.squeeze(c, [1])) as [Value, Value, Value]; // 3 × [Imax]
  const lengths = op.mul(op.mul(t, h), w); // [Imax]
  const start = op.cumSum(lengths, 0, { exclusive: true }); // [Imax] packed first row of each item
  const total = op.reduceSum(lengths, [0]); // []
  const inItem = op.less(offset, op.gather(lengths, slot)); // [Nmax]
  const packed = op.add(op.gather(start, slot), offset); // [Nmax]
  const patchIndex = op.where(inItem, packed, op.add(total, rowIndex)); // [Nmax]
  const count = (bad: Value): Value => op.reduceSum(op.cast(bad, 'int64'), [0]); // []
  const misfits = op.add(count(op.less(g.scalar('int64', 1), t)), count(op.less(g.scalar('int64', size), lengths))); // [] multi-frame or oversized items
  return { patchIndex, slots: { size, lengths, fits: op.equal(misfits, g.scalar('int64', 0)) } };
}

/** The dynamic inputs, checked; `rowIndex` [N] int64 = 0..N−1. */
export function dynamicInputs(g: GraphBuilder, shape: InputShape): { pixels: Value; grid: Value; rowIndex: Value } {
  const pixelValues = g.input(IO.pixelValues, 'float32', ['N', shape.patchDim]);
  const gridThw = g.input(IO.gridThw, 'int64', ['I', 3]);
  const { grid, pixels } = checkedInputs(g, shape, gridThw, pixelValues);
  const rows = op.squeeze(op.shapeOf(pixels, 0, 1), [0]); // [] = N
  const rowIndex = op.range(g.scalar('int64', 0), rows, g.scalar('int64', 1), 'N'); // [N]
  return { pixels, grid, rowIndex };
}

/** The bucket's inputs; `rowIndex` [Nmax] int64 = 0..Nmax−1 is a constant. */
export function paddedInputs(g: GraphBuilder, shape: InputShape, { maxPatches, maxItems }: Bucket): { pixels: Value; grid: Value; rowIndex: Value } {
  const pixels = g.input(IO.pixelValues, 'float32', [maxPatches, shape.patchDim]);
  const grid = g.input(IO.gridThw, 'int64', [maxItems, 3]);
  const rowIndex = g.constant(
    'int64',
    [maxPatches],
    Array.from({ length: maxPatches }, (_, i) => BigInt(i)),
    'patch_index',
  ); // [Nmax]
  return { pixels, grid, rowIndex };
}

/**
 * Makes wrong inputs fail inside ONNX Runtime instead of giving wrong numbers: every grid
 * value must be positive with h, w multiples of the merge size, and Σ t·h·w must equal N.
 * Both checks are Reshapes whose target size is off when the check fails; everything
 * downstream reads the checked values, so nothing divides by a bad grid first. Each target
 * has two runtime entries: ORT's Reshape fusion rewrites a target with one runtime entry
 * into a -1, which would turn the check into a no-op.
 */
function checkedInputs(g: GraphBuilder, shape: InputShape, gridThw: Value, pixelValues: Value): { grid: Value; pixels: Value } {
  return g.scope('checks', () => {
    const m = g.scalar('int64', shape.spatialMergeSize);
    const grid = g.scope('grid_thw_must_be_positive_with_even_h_w', () => {
      const [t, hw] = op.split(gridThw, 1, [1, 2]) as [Value, Value]; // [I, 1], [I, 2]
      const count = (bad: Value): Value => op.reduceSum(op.cast(bad, 'int64'), [0, 1], true); // [1, 1]
      const bad = op.add(op.add(count(op.less(t, g.scalar('int64', 1))), count(op.less(hw, m))), count(op.not(op.equal(op.mod(hw, m), g.scalar('int64', 0)))));
      // Bounded values keep each t·h·w exact in int64 (≤ 2^60) and Σ t·h·w far from wrapping,
      // so no grid can wrap its way to Σ = N.
      const [t1, h1, w1] = op.split(gridThw, 1, [1, 1, 1]) as [Value, Value, Value]; // 3 × [I, 1]
      const tooLarge = op.add(count(op.less(g.scalar('int64', MAX_GRID_VALUE), gridThw)), count(op.less(g.scalar('int64', MAX_ITEM_ROWS), op.mul(op.mul(t1, h1), w1))));
      const offBy = op.reshape(op.add(bad, tooLarge), [1]); // [1]
      const target = op.add(op.concat([op.shapeOf(gridThw, 0, 1), g.int64s([3])], 0), op.concat([offBy, offBy], 0)); // [I + bad, 3 + bad]
      return op.reshapeDynamic(gridThw, target, gridThw.shape);
    });
    const pixels = g.scope('pixel_rows_must_equal_sum_of_t_h_w', () => {
      const column = (i: number): Value => op.slice(grid, 1, i, i + 1); // [I, 1]
      const rowsNeeded = op.reduceSum(op.mul(op.mul(column(0), column(1)), column(2)), [0, 1]); // [] Σ t·h·w
      const needed = op.unsqueeze(rowsNeeded, [0]); // [1] Σ
      const excess = op.sub(needed, op.shapeOf(pixelValues, 0, 1)); // [1] Σ − N
      // [Σ, patchDim + Σ − N] holds N·patchDim elements only when Σ = N.
      const target = op.concat([needed, op.add(g.int64s([shape.patchDim]), excess)], 0);
      return op.reshapeDynamic(pixelValues, target, pixelValues.shape);
    });
    return { grid, pixels };
  });
}

/** Output image_embeds [N/4, O], always float32. */
export function declareImageEmbeds(g: GraphBuilder, merged: Value): Value {
  const embeds = op.cast(merged, 'float32');
  g.output(embeds, 'image_embeds');
  return embeds;
}

/** Output token_count (int64 []) of a bucket: real rows (`valid` [Nmax] bool) / merge unit. */
export function declareTokenCount(g: GraphBuilder, shape: Pick<InputShape, 'mergeUnit'>, valid: Value): void {
  g.output(op.div(op.reduceSum(op.cast(valid, 'int64'), [0]), g.scalar('int64', shape.mergeUnit)), TOKEN_COUNT);
}
