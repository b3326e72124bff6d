// The dynamic variant: a drop-in for `Qwen3VLVisionModel.forward(pixel_values, grid_thw)`.
// Any number of items of mixed sizes, images and videos, in one call; everything
// grid-dependent is computed in the graph, so the file needs no host code.

import { GraphBuilder, op, type ParameterSource, type Value } from '../../src/onnx/index.js';
import { ATTENTION, type AttentionKind } from './attention.js';
import type { VisionConfig } from './config.js';
import { MAX_GRID_VALUE, MAX_ITEM_ROWS } from '../../src/runtime/inputs.js';
import { IO } from './io.js';
import { patchCoordinates, patchLayout } from './layout.js';
import { visionTower, type TowerOutputs } from './vision.js';

export interface DynamicGraphOptions {
  /** Weights and matmuls in this dtype; statistics, rotary and interpolation stay float32. */
  dtype?: 'float32' | 'float16';
  /** 'looped' (default): fused attention per segment; 'dense': decomposed with an [N, N] mask. */
  attention?: AttentionKind;
}

/**
 * pixel_values float32 [N, C·Tp·P²] + grid_thw int64 [I, 3]
 * → image_embeds float32 [N/4, O], deepstack_embeds float32 [K, N/4, O].
 */
export function buildDynamicGraph(config: VisionConfig, params: ParameterSource, options: DynamicGraphOptions = {}): GraphBuilder {
  const dtype = options.dtype ?? 'float32';
  const g = new GraphBuilder({ name: 'qwen3_vl_vision_dynamic', params, paramDType: dtype });
  const pixelValues = g.input(IO.pixelValues, 'float32', ['N', config.patchDim]);
  const gridThw = g.input(IO.gridThw, 'int64', ['I', 3]);

  const { grid, pixels } = checkedInputs(g, config, gridThw, pixelValues);
  const rows = op.shapeOf(pixels, 0, 1); // [1] = N
  const patchIndex = op.range(g.scalar('int64', 0), op.squeeze(rows, [0]), g.scalar('int64', 1), 'N'); // [N]
  const coords = patchCoordinates(g, config, grid, patchIndex);
  const attention = ATTENTION[options.attention ?? 'looped'](g, config, coords);
  const tower = visionTower(g, config, op.cast(pixels, dtype), patchLayout(g, config, coords, patchIndex), attention);
  declareOutputs(g, config, tower);
  return g;
}

/**
 * Makes wrong inputs fail inside ONNX Runtime instead of giving wrong numbers: every grid
 * value must be positive with h, w multiples of the merge size, and Σ t·h·w must equal N.
 * Both checks are Reshapes whose target size is off when the check fails; everything
 * downstream reads the checked values, so nothing divides by a bad grid first. Each target
 * has two runtime entries: ORT's Reshape fusion rewrites a target with one runtime entry
 * into a -1, which would turn the check into a no-op.
 */
function checkedInputs(g: GraphBuilder, config: VisionConfig, gridThw: Value, pixelValues: Value): { grid: Value; pixels: Value } {
  return g.scope('checks', () => {
    const m = g.scalar('int64', config.spatialMergeSize);
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
      const target = op.concat([needed, op.add(g.int64s([config.patchDim]), excess)], 0);
      return op.reshapeDynamic(pixelValues, target, pixelValues.shape);
    });
    return { grid, pixels };
  });
}

/** image_embeds [N/4, O] and, unless the config has none, deepstack_embeds [K, N/4, O] (K may be 0), always float32. */
export function declareOutputs(g: GraphBuilder, config: VisionConfig, tower: TowerOutputs): void {
  const merged = op.cast(tower.merged, 'float32');
  g.output(merged, IO.imageEmbeds);
  if (!config.deepstackOutput) return;
  const deepstack = tower.deepstack.length
    ? op.concat(tower.deepstack.map((d) => op.unsqueeze(op.cast(d, 'float32'), [0])), 0) // [K, N/4, O]
    : op.constantOfShape(op.concat([g.int64s([0]), op.shapeOf(merged)], 0), 'float32', 0, [0, ...merged.shape]);
  g.output(deepstack, IO.deepstackEmbeds);
}

