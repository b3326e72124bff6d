// Everything that depends on grid_thw but not on pixels, computed inside the graph from the
// patch index (spec §3.9): each patch's item, frame group, (row, col) in its grid, its four
// position-table taps, its rotary angles, and where attention segments start.
// Mirrors `Qwen3VLVisionModel.fast_pos_embed_interpolate`, `rot_pos_emb` and the cu_seqlens of
// `Qwen3VLVisionModel.forward` (modeling_qwen3_vl.py @ 00709b86), vectorised over patches.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { VisionConfig } from './config.js';
import type { PatchLayout } from './vision.js';

/** Integer coordinates of each patch, all [N] int64 unless noted. */
export interface PatchCoordinates {
  readonly row: Value; // patch row within its frame grid, 0..h−1
  readonly col: Value; // patch column, 0..w−1
  readonly height: Value; // h of the patch's item
  readonly width: Value; // w of the patch's item
  readonly valid: Value; // bool: a real patch (false for the padding rows of a bucket)
  readonly segmentStart: Value; // bool: first patch of a frame group (an attention segment)
  readonly segment: Value; // attention segment id: 1, 2, … for real patches, 0 for padding
}

/**
 * Locates patch `p` ([N] int64) in the items of `grid` ([I, 3] int64 rows (t, h, w)).
 * Pixel rows come item by item, frame group by group, then in merge-window order:
 * window row, window column, in-window row, in-window column (spec §4.1.5).
 * Rows past Σ t·h·w are padding: they get coordinates (0, 0) of a 1×1 grid and segment 0.
 * Divisors are clamped to ≥ 1 so all-zero (unused) grid rows never divide by zero.
 */
export function patchCoordinates(g: Graph, config: VisionConfig, grid: Value, patchIndex: Value): PatchCoordinates {
  return g.scope('layout', () => {
    const m = config.spatialMergeSize;
    const int = (v: number): Value => g.scalar('int64', v);
    const atLeastOne = (v: Value): Value => op.max(v, int(1));
    const [t, h, w] = op.split(grid, 1, [1, 1, 1]).map((c) => op.squeeze(c, [1])) as [Value, Value, Value]; // 3 × [I]
    const frameSize = op.mul(h, w); // [I]
    const itemEnd = op.cumSum(op.mul(t, frameSize), 0); // [I] exclusive end row of each item
    const itemStart = op.cumSum(op.mul(t, frameSize), 0, { exclusive: true }); // [I]
    const total = op.reduceSum(op.mul(t, frameSize), [0]); // []

    // item(p) = number of items that end at or before p (clamped for padding rows).
    const endsBefore = op.greaterOrEqual(op.unsqueeze(patchIndex, [1]), op.unsqueeze(itemEnd, [0])); // [N, I]
    const item = op.min(op.reduceSum(op.cast(endsBefore, 'int64'), [1]), op.sub(op.squeeze(op.shapeOf(grid, 0, 1), [0]), int(1))); // [N]
    const valid = op.less(patchIndex, total); // [N]
    const onlyValid = (v: Value, padding: number): Value => op.where(valid, v, int(padding));

    const local = op.sub(patchIndex, op.gather(itemStart, item)); // [N] row within the item
    const height = onlyValid(op.gather(h, item), 1);
    const width = onlyValid(op.gather(w, item), 1);
    const inFrame = op.mod(local, atLeastOne(op.gather(frameSize, item))); // [N] row within the frame group

    const window = op.div(inFrame, int(m * m));
    const inWindow = op.mod(inFrame, int(m * m));
    const windowsPerRow = atLeastOne(op.div(width, int(m)));
    const row = onlyValid(op.add(op.mul(op.div(window, windowsPerRow), int(m)), op.div(inWindow, int(m))), 0);
    const col = onlyValid(op.add(op.mul(op.mod(window, windowsPerRow), int(m)), op.mod(inWindow, int(m))), 0);
    const segmentStart = op.and(op.equal(inFrame, int(0)), valid);
    const segment = op.where(valid, op.cumSum(op.cast(segmentStart, 'int64'), 0), int(0));
    return { row, col, height, width, valid, segmentStart, segment };
  });
}

/** Position taps and rotary tables for patches at `coords`; `patchIndex` [N] numbers the rows. */
export function patchLayout(g: Graph, config: VisionConfig, coords: PatchCoordinates, patchIndex: Value): PatchLayout {
  return g.scope('layout', () => ({
    positionTaps: positionTaps(g, config, coords),
    ...rotaryTables(g, config, coords),
    positions: op.unsqueeze(patchIndex, [0]), // [1, N]
  }));
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

/** 2-D rotary angles θ = [row·inv_freq, col·inv_freq] → cos/sin tables [N, head_dim/2] float32. */
function rotaryTables(g: Graph, config: VisionConfig, coords: PatchCoordinates): { cos: Value; sin: Value } {
  const invFreq = g.constant('float32', [1, config.headDim / 4], rotaryInverseFrequencies(config), 'rotary.inv_freq');
  const angles = (v: Value): Value => op.mul(op.unsqueeze(op.cast(v, 'float32'), [1]), invFreq); // [N, D/4]
  const theta = op.concat([angles(coords.row), angles(coords.col)], 1); // [N, D/2]
  return { cos: op.cos(theta), sin: op.sin(theta) };
}

/**
 * `Qwen3VLVisionRotaryEmbedding.inv_freq` for dim = head_dim/2: θ^(−2j/dim), j < dim/2,
 * computed in float64 and rounded once to float32 (never rounded to bf16; spec §6.2.1).
 */
export function rotaryInverseFrequencies(config: VisionConfig): number[] {
  const dim = config.headDim / 2;
  return Array.from({ length: dim / 2 }, (_, j) => 1 / config.ropeTheta ** ((2 * j) / dim));
}
