// The dynamic variant: a drop-in for `Qwen2_5_VisionTransformerPretrainedModel.forward(
// pixel_values, grid_thw)`. As upstream, rows are permuted into window order once (whole merge
// units move, frames stay in place), so that every window and every frame is a contiguous run
// of rows for the looped attention; the merged tokens are put back in input order at the end.
// The permutation, both segment sets and the rotary tables are computed in the graph.

import { type GraphBuilder, op, type ParameterSource, type Value } from '../../src/onnx/index.js';
import { ATTENTION } from '../shared/attention.js';
import { declareImageEmbeds, dynamicGraph, type DynamicGraphOptions } from '../shared/graph-io.js';
import { patchCoordinates, rotaryLayout, segmentsFromStarts } from '../shared/layout.js';
import type { Qwen25VLConfig } from './config.js';
import { visionTower } from './vision.js';
import { windowOrder, windowStarts } from './windows.js';

export type { DynamicGraphOptions };

/** pixel_values float32 [N, C·Tp·P²] + grid_thw int64 [I, 3] → image_embeds float32 [N/4, O]. */
export function buildDynamicGraph(config: Qwen25VLConfig, params: ParameterSource, options: DynamicGraphOptions = {}): GraphBuilder {
  const { g, dtype, pixels, grid, rowIndex } = dynamicGraph('qwen2_5_vl', config, params, options);
  const order = windowOrder(g, config, patchCoordinates(g, config, grid, rowIndex), rowIndex);
  const coords = patchCoordinates(g, config, grid, order.source); // of the rows in window order
  const kind = ATTENTION[options.attention ?? 'looped'];
  const attention = {
    frame: g.scope('frames', () => kind(g, config, coords)),
    window: g.scope('windows', () => kind(g, config, segmentsFromStarts(g, windowStarts(g, config, coords), coords.valid))),
  };
  const windowed = op.gather(op.cast(pixels, dtype), order.source); // [N, C·Tp·P²] in window order
  const merged = visionTower(g, config, windowed, rotaryLayout(g, config, coords, rowIndex), attention); // [N/4, O] in window order
  declareImageEmbeds(g, op.gather(merged, tokenTargets(g, config, order.target))); // [N/4, O] in input order
  return g;
}

/** Window-order position of each merged token (input order): target of its first row / m². */
function tokenTargets(g: GraphBuilder, config: Qwen25VLConfig, target: Value): Value {
  const firstRows = op.squeeze(op.slice(op.reshape(target, [-1, config.mergeUnit]), 1, 0, 1), [1]); // [N/4]
  return op.div(firstRows, g.scalar('int64', config.mergeUnit));
}
