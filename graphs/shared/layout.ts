// What grid_thw implies for each pixel row, shared by every tower: the row's item, frame,
// (row, col) in its patch grid and attention segment (spec §3.9 of the Qwen3-VL note; the
// Qwen2-VL note §3.9 is the same minus the position taps), plus the 2-D rotary tables.
// Mirrors the position ids of `rot_pos_emb` and the cu_seqlens of `Qwen3VLVisionModel.forward`
// (modeling_qwen3_vl.py @ 00709b86) and `Qwen2VisionTransformerPretrainedModel.forward`
// (modeling_qwen2_vl.py @ 00b676f8), vectorised over patches.

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';

/** Integer coordinates of each patch, all [N] int64 unless noted. */
export interface PatchCoordinates {
  readonly row: Value; // patch row within its frame grid, 0..h−1
  readonly col: Value; // patch column, 0..w−1
  readonly height: Value; // h of the patch's item
  readonly width: Value; // w of the patch's item
  readonly inFrame: Value; // the row's index within its frame (meaningless on padding rows)
  readonly valid: Value; // bool: a real patch (false for the padding rows of a bucket)
  readonly segmentStart: Value; // bool: first patch of a frame group (an attention segment)
  readonly segment: Value; // attention segment id: 1, 2, … for real patches, 0 for padding
}

/** Attention segments over rows in graph order: where each starts, and an id per row (0 = padding). */
export interface Segments {
  readonly segmentStart: Value; // [N] bool
  readonly segment: Value; // [N] int64
}

/**
 * Locates patch `p` ([N] int64) in the items of `grid` ([I, 3] int64 rows (t, h, w)).
 * Pixel rows come item by item, frame group by group, then in merge-window order:
 * window row, window column, in-window row, in-window column (spec §4.1.5).
 * Rows past Σ t·h·w are padding: they get coordinates (0, 0) of a 1×1 grid and segment 0.
 * Divisors are clamped to ≥ 1 so all-zero (unused) grid rows never divide by zero.
 * `patchIndex` may be any order that keeps each frame's rows together and starts each frame
 * with its row 0 (a window permutation does): segments are numbered in graph order.
 */
export function patchCoordinates(g: Graph, merge: { readonly spatialMergeSize: number }, grid: Value, patchIndex: Value): PatchCoordinates {
  return g.scope('layout', () => {
    const m = merge.spatialMergeSize;
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
    const inFrame = op.mod(local, atLeastOne(op.gather(frameSize, item))); // [N] row within the frame group (any value on padding rows)

    const window = op.div(inFrame, int(m * m));
    const inWindow = op.mod(inFrame, int(m * m));
    const windowsPerRow = atLeastOne(op.div(width, int(m)));
    const row = onlyValid(op.add(op.mul(op.div(window, windowsPerRow), int(m)), op.div(inWindow, int(m))), 0);
    const col = onlyValid(op.add(op.mul(op.mod(window, windowsPerRow), int(m)), op.mod(inWindow, int(m))), 0);
    const { segmentStart, segment } = segmentsFromStarts(g, op.equal(inFrame, int(0)), valid);
    return { row, col, height, width, inFrame, valid, segmentStart, segment };
  });
}

/** Segments whose first rows (in graph order) are `starts` ([N] bool); rows not `valid` get id 0. */
export function segmentsFromStarts(g: Graph, starts: Value, valid: Value): Segments {
  const segmentStart = op.and(starts, valid);
  const segment = op.where(valid, op.cumSum(op.cast(segmentStart, 'int64'), 0), g.scalar('int64', 0));
  return { segmentStart, segment };
}

/** The rotary facts of a tower: head_dim (a multiple of 4) and the base θ (10000 upstream). */
export interface RotaryShape {
  readonly headDim: number;
  readonly ropeTheta: number;
}

/** Rotary tables for the rows of the graph, as the contrib RotaryEmbedding op takes them. */
export interface RotaryLayout {
  /** cos/sin of each patch's angles θ = [row·inv_freq, col·inv_freq], [N, head_dim/2] float32. */
  readonly cos: Value;
  readonly sin: Value;
  /** [1, N] int64: row p of the tables belongs to patch p. */
  readonly positions: Value;
}

/**
 * 2-D rotary angles θ = [row·inv_freq, col·inv_freq] → cos/sin tables [N, head_dim/2] float32.
 * `rowIndex` [N] int64 is 0..N−1: table row i serves graph row i.
 */
export function rotaryLayout(g: Graph, shape: RotaryShape, coords: Pick<PatchCoordinates, 'row' | 'col'>, rowIndex: Value): RotaryLayout {
  return g.scope('layout', () => {
    const invFreq = g.constant('float32', [1, shape.headDim / 4], rotaryInverseFrequencies(shape), 'rotary.inv_freq');
    const angles = (v: Value): Value => op.mul(op.unsqueeze(op.cast(v, 'float32'), [1]), invFreq); // [N, D/4]
    const theta = op.concat([angles(coords.row), angles(coords.col)], 1); // [N, D/2]
    return { cos: op.cos(theta), sin: op.sin(theta), positions: op.unsqueeze(rowIndex, [0]) }; // positions [1, N]: 0..N−1 in graph order
  });
}

/**
 * `VisionRotaryEmbedding.inv_freq` for dim = head_dim/2: θ^(−2j/dim), j < dim/2,
 * computed in float64 and rounded once to float32 (never rounded to bf16; spec §6.2.1).
 */
export function rotaryInverseFrequencies(shape: RotaryShape): number[] {
  const dim = shape.headDim / 2;
  return Array.from({ length: dim / 2 }, (_, j) => 1 / shape.ropeTheta ** ((2 * j) / dim));
}
