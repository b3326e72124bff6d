// Qwen2.5-VL window attention geometry (spec §3.6), computed in the graph from the patch
// coordinates. Windows of Wm×Wm merged tokens (Wp×Wp patches) tile each frame from the top-left;
// the right column and bottom row of windows are partial. Upstream
// `Qwen2_5_VisionTransformerPretrainedModel.get_window_index` (modeling_qwen2_5_vl.py @ 00b676f8)
// permutes merge units into window order (frame, window row, window column, then row-major inside
// the window); here both directions of that permutation are closed forms of integer div/mod.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { PatchCoordinates } from '../shared/layout.js';
import type { Qwen25VLConfig } from './config.js';

type Geometry = Pick<Qwen25VLConfig, 'spatialMergeSize' | 'mergeUnit' | 'windowMergedSide' | 'windowPatchSide'>;

/** Both directions of the window permutation, as [N] int64 row indexes. */
export interface WindowOrder {
  /** source[i]: the processor row placed at window-order position i (gather rows with it). */
  readonly source: Value;
  /** target[p]: the window-order position of processor row p (its inverse). */
  readonly target: Value;
}

/**
 * The window permutation of rows `rowIndex` [N] = 0..N−1, with `at` their processor-order
 * coordinates. Frames stay in place; inside a frame with a merged grid h_m × w_m, merged token
 * (r, c) in window (wr, wc) = (r div Wm, c div Wm) of height hh = min(Wm, h_m − wr·Wm) and width
 * ww = min(Wm, w_m − wc·Wm) goes to (wr·Wm·w_m + wc·Wm·hh + (r − wr·Wm)·ww + (c − wc·Wm))·m² + q.
 */
export function windowOrder(g: Graph, geometry: Geometry, at: PatchCoordinates, rowIndex: Value): WindowOrder {
  return g.scope('windows', () => {
    const int = (v: number): Value => g.scalar('int64', v);
    const atLeastOne = (v: Value): Value => op.max(v, int(1));
    const { spatialMergeSize: m, mergeUnit, windowMergedSide: Wm } = geometry;
    const frameStart = op.sub(rowIndex, at.inFrame); // [N]
    const mergedHeight = op.div(at.height, int(m)); // [N] h_m
    const mergedWidth = atLeastOne(op.div(at.width, int(m))); // [N] w_m
    const windowRowTokens = op.mul(int(Wm), mergedWidth); // tokens in one full window row: Wm·w_m
    const heightOf = (wr: Value): Value => atLeastOne(op.min(int(Wm), op.sub(mergedHeight, op.mul(wr, int(Wm))))); // hh
    const widthOf = (wc: Value): Value => atLeastOne(op.min(int(Wm), op.sub(mergedWidth, op.mul(wc, int(Wm))))); // ww

    // Forward: processor row p → window-order position.
    const r = op.div(at.row, int(m));
    const c = op.div(at.col, int(m));
    const q = op.mod(at.inFrame, int(mergeUnit));
    const wr = op.div(r, int(Wm));
    const wc = op.div(c, int(Wm));
    const before = op.add(op.mul(wr, windowRowTokens), op.mul(op.mul(wc, int(Wm)), heightOf(wr))); // tokens in earlier windows
    const inside = op.add(op.mul(op.sub(r, op.mul(wr, int(Wm))), widthOf(wc)), op.sub(c, op.mul(wc, int(Wm))));
    const target = op.add(frameStart, op.add(op.mul(op.add(before, inside), int(mergeUnit)), q));

    // Inverse: window-order position i → processor row.
    const token = op.div(at.inFrame, int(mergeUnit)); // merged token index in window order
    const iwr = op.div(token, windowRowTokens);
    const inRow = op.sub(token, op.mul(iwr, windowRowTokens));
    const rowHeight = heightOf(iwr);
    const iwc = op.div(inRow, op.mul(int(Wm), rowHeight));
    const inWindow = op.sub(inRow, op.mul(op.mul(iwc, int(Wm)), rowHeight));
    const width = widthOf(iwc);
    const sr = op.add(op.mul(iwr, int(Wm)), op.div(inWindow, width));
    const sc = op.add(op.mul(iwc, int(Wm)), op.mod(inWindow, width));
    const source = op.add(frameStart, op.add(op.mul(op.add(op.mul(sr, mergedWidth), sc), int(mergeUnit)), q));
    return { source, target };
  });
}

/** First rows of windows in window order: a window starts at its top-left patch. */
export function windowStarts(g: Graph, geometry: Geometry, coords: PatchCoordinates): Value {
  const Wp = g.scalar('int64', geometry.windowPatchSide);
  const zero = g.scalar('int64', 0);
  return op.and(op.equal(op.mod(coords.row, Wp), zero), op.equal(op.mod(coords.col, Wp), zero)); // [N] bool
}

/**
 * A window id per row in any row order: (frame segment, row div Wp, col div Wp) packed as
 * (segment·K + row div Wp)·K + col div Wp with K > any window count per side; padding rows
 * (segment 0 at (0, 0)) get 0, which no real window has.
 */
export function windowIds(g: Graph, geometry: Geometry, coords: PatchCoordinates, K: number): Value {
  return g.scope('windows', () => {
    const int = (v: number): Value => g.scalar('int64', v);
    const Wp = int(geometry.windowPatchSide);
    return op.add(op.mul(op.add(op.mul(coords.segment, int(K)), op.div(coords.row, Wp)), int(K)), op.div(coords.col, Wp)); // [N]
  });
}
