// Segment-restricted attention formulations (spec §3.4: one segment per frame group of each
// item; no attention across items, frame groups or padding). Each returns a
// `SegmentAttention` taking rotated q, k, v [N, H] → [N, H].

import type { Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { VisionConfig } from './config.js';
import type { PatchCoordinates } from './layout.js';
import type { SegmentAttention } from './vision.js';

/**
 * A Loop over segments running fused MultiHeadAttention on each one. ORT's CPU kernel tiles
 * the bias-free form (no [heads, S, S] buffer), so memory is linear in the segment length and
 * nothing is spent on cross-segment scores. `segmentStart` marks each segment's first row.
 */
export function loopedAttention(g: Graph, config: VisionConfig, coords: PatchCoordinates): SegmentAttention {
  const [starts, ends, count] = g.scope('segments', () => {
    const starts = op.squeeze(op.nonZero(coords.segmentStart, 'S'), [0]); // [S] first row of each segment
    const total = op.shapeOf(coords.segmentStart); // [1] = N
    const ends = op.concat([op.slice(starts, 0, 1, Number.MAX_SAFE_INTEGER), total], 0); // [S]
    return [starts, ends, op.squeeze(op.shapeOf(starts), [0])] as const;
  });
  const H = config.hiddenSize;
  return (q, k, v) => {
    const empty = g.constant(q.dtype, [0, H], []); // [0, H] accumulator
    const [out] = op.loop(g, count, [empty], [[q.dim(0), H]], (i, [done]) => {
      const rows = (x: Value): Value => {
        const at = (bounds: Value): Value => op.unsqueeze(op.gather(bounds, i), [0]); // [1]
        return op.unsqueeze(op.sliceDynamic(x, 0, at(starts), at(ends), 'L'), [0]); // [1, L, H]
      };
      const o = op.multiHeadAttention(rows(q), rows(k), rows(v), { heads: config.numHeads }); // [1, L, H]
      return [op.concat([done!, op.squeeze(o, [0])], 0)]; // [rows so far + L, H]
    });
    return out!;
  };
}

/**
 * Plain decomposition with a dense additive block-diagonal mask: MatMul → scale + mask →
 * Softmax → MatMul over all N rows at once. Holds [heads, N, N] scores; the baseline the
 * benchmark compares against (it is what a straightforward exporter emits), and fine for tiny N.
 */
export function denseMaskedAttention(g: Graph, config: VisionConfig, coords: PatchCoordinates): SegmentAttention {
  const mask = g.scope('segments', () => {
    const segment = coords.segment; // [N]
    const same = op.equal(op.unsqueeze(segment, [1]), op.unsqueeze(segment, [0])); // [N, N]
    return op.where(same, g.scalar('float32', 0), g.scalar('float32', -Infinity)); // [N, N]
  });
  const { numHeads: heads, headDim: D } = config;
  return (q, k, v) => {
    const split = (x: Value): Value => op.transpose(op.reshape(x, [0, heads, D]), [1, 0, 2]); // [heads, N, D]
    const scores = op.add(op.mul(op.matmul(split(q), op.transpose(op.reshape(k, [0, heads, D]), [1, 2, 0])), g.scalar(q.dtype, 1 / Math.sqrt(D))), op.cast(mask, q.dtype)); // [heads, N, N]
    const o = op.matmul(op.softmax(scores, -1), split(v)); // [heads, N, D]
    return op.reshape(op.transpose(o, [1, 0, 2]), [0, config.hiddenSize]); // [N, H]
  };
}

export type AttentionKind = 'looped' | 'dense';

export const ATTENTION: Readonly<Record<AttentionKind, (g: Graph, config: VisionConfig, coords: PatchCoordinates) => SegmentAttention>> = {
  looped: loopedAttention,
  dense: denseMaskedAttention,
};
