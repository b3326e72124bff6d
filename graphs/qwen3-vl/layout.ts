// Everything that depends on grid_thw but not on pixels, computed inside the graph from the
// patch index (spec §3.9): each patch's item, frame group, (row, col) in its grid (shared with
// the other towers, graphs/shared/layout.ts), its four position-table taps and its rotary angles.
// Mirrors `Qwen3VLVisionModel.fast_pos_embed_interpolate` and `rot_pos_emb`
// (modeling_qwen3_vl.py @ 00709b86), vectorised over patches.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import { patchCoordinates, rotaryInverseFrequencies, rotaryLayout, type PatchCoordinates } from '../shared/layout.js';
import type { VisionConfig } from './config.js';
import type { PatchLayout } from './vision.js';

export { patchCoordinates, rotaryInverseFrequencies, type PatchCoordinates };

/** Position taps and rotary tables for patches at `coords`; `patchIndex` [N] numbers the rows. */
export function patchLayout(g: Graph, config: VisionConfig, coords: PatchCoordinates, patchIndex: Value): PatchLayout {
  return {
    positionTaps: g.scope('layout', () => positionTaps(g, config, coords)),
    ...rotaryLayout(g, config, coords, patchIndex),
  };
}

/**
 * Bilinear taps with align-corners sampling over the G×G table: y = row·(G−1)/(h−1)
 * (exact integer product, one rounding), y0 = ⌊y⌋, y1 = min(y0+1, G−1), likewise x.
 */
function positionTaps(g: Graph, config: VisionConfig, coords: PatchCoordinates): PatchLayout['positionTaps'] {
  const G = config.positionGridSize;
  const f32 = (v: number): Value => g.scalar('float32', v);
  const sample = (index: Value, size: Value): { lo: Value; hi: Value; frac: Value } => {
    const span = op.max(op.sub(op.cast(size, 'float32'), f32(1)), f32(1));
    const pos = op.div(op.mul(op.cast(index, 'float32'), f32(G - 1)), span); // [N] in [0, G−1]
    const lo = op.floor(pos);
    const hi = op.min(op.add(lo, f32(1)), f32(G - 1));
    return { lo: op.cast(lo, 'int64'), hi: op.cast(hi, 'int64'), frac: op.sub(pos, lo) };
  };
  const y = sample(coords.row, coords.height);
  const x = sample(coords.col, coords.width);
  const at = (yi: Value, xi: Value): Value => op.add(op.mul(yi, g.scalar('int64', G)), xi);
  const oneMinus = (v: Value): Value => op.sub(f32(1), v);
  const column = (v: Value): Value => op.unsqueeze(v, [1]); // [N] → [N, 1]
  return [
    { index: at(y.lo, x.lo), weight: column(op.mul(oneMinus(y.frac), oneMinus(x.frac))) },
    { index: at(y.lo, x.hi), weight: column(op.mul(oneMinus(y.frac), x.frac)) },
    { index: at(y.hi, x.lo), weight: column(op.mul(y.frac, oneMinus(x.frac))) },
    { index: at(y.hi, x.hi), weight: column(op.mul(y.frac, x.frac)) },
  ];
}
