// The dynamic variant: a drop-in for `Qwen3VLVisionModel.forward(pixel_values, grid_thw)`.
// Any number of items of mixed sizes, images and videos, in one call; everything
// grid-dependent is computed in the graph, so the file needs no host code.

import { type GraphBuilder, op, type ParameterSource } from '../../src/onnx/index.js';
import { ATTENTION } from '../shared/attention.js';
import { declareImageEmbeds, dynamicGraph, type DynamicGraphOptions } from '../shared/graph-io.js';
import type { VisionConfig } from './config.js';
import { IO } from './io.js';
import { patchCoordinates, patchLayout } from './layout.js';
import { visionTower, type TowerOutputs } from './vision.js';

export type { DynamicGraphOptions };

/**
 * pixel_values float32 [N, C·Tp·P²] + grid_thw int64 [I, 3]
 * → image_embeds float32 [N/4, O], deepstack_embeds float32 [K, N/4, O].
 */
export function buildDynamicGraph(config: VisionConfig, params: ParameterSource, options: DynamicGraphOptions = {}): GraphBuilder {
  const { g, dtype, pixels, grid, rowIndex } = dynamicGraph('qwen3_vl', config, params, options);
  const coords = patchCoordinates(g, config, grid, rowIndex);
  const attention = ATTENTION[options.attention ?? 'looped'](g, config, coords);
  const tower = visionTower(g, config, op.cast(pixels, dtype), patchLayout(g, config, coords, rowIndex), attention);
  declareOutputs(g, config, tower);
  return g;
}

/** image_embeds [N/4, O] and, unless the config has none (Qwen3.5), deepstack_embeds [K, N/4, O] (K may be 0), always float32. */
export function declareOutputs(g: GraphBuilder, config: VisionConfig, tower: TowerOutputs): void {
  const merged = declareImageEmbeds(g, tower.merged);
  if (!config.deepstackOutput) return;
  const deepstack = tower.deepstack.length
    ? op.concat(
        tower.deepstack.map((d) => op.unsqueeze(op.cast(d, 'float32'), [0])),
        0,
      ) // [K, N/4, O]
    : op.constantOfShape(op.concat([g.int64s([0]), op.shapeOf(merged)], 0), 'float32', 0, [0, ...merged.shape]);
  g.output(deepstack, IO.deepstackEmbeds);
}
