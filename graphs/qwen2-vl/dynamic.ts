// The dynamic variant: a drop-in for `Qwen2VisionTransformerPretrainedModel.forward(pixel_values,
// grid_thw)`. Any number of images and videos of mixed sizes in one call; positions, rotary
// angles and the per-frame attention segments are computed in the graph from grid_thw.

import { type GraphBuilder, op, type ParameterSource } from '../../src/onnx/index.js';
import { ATTENTION } from '../shared/attention.js';
import { declareImageEmbeds, dynamicGraph, type DynamicGraphOptions } from '../shared/graph-io.js';
import { patchCoordinates, rotaryLayout } from '../shared/layout.js';
import type { Qwen2VLConfig } from './config.js';
import { visionTower } from './vision.js';

export type { DynamicGraphOptions };

/** pixel_values float32 [N, C·Tp·P²] + grid_thw int64 [I, 3] → image_embeds float32 [N/4, O]. */
export function buildDynamicGraph(config: Qwen2VLConfig, params: ParameterSource, options: DynamicGraphOptions = {}): GraphBuilder {
  const { g, dtype, pixels, grid, rowIndex } = dynamicGraph('qwen2_vl', config, params, options);
  const coords = patchCoordinates(g, config, grid, rowIndex);
  const attention = ATTENTION[options.attention ?? 'looped'](g, config, coords);
  declareImageEmbeds(g, visionTower(g, config, op.cast(pixels, dtype), rotaryLayout(g, config, coords, rowIndex), attention));
  return g;
}
