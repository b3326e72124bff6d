// Segment-restricted attention formulations, shared by every tower. A segment is a frame group
// of one item (Qwen3-VL spec §3.4) or a window of one (Qwen2-VL spec §3.6): no attention across
// segments or into padding. Each builder returns a `SegmentAttention` taking rotated
// q, k, v [N, H] → [N, H].

import type { DataType, Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { Segments } from './layout.js';

/** Attention restricted to segments: q, k, v [N, H] (rotated) → [N, H]. */
export type SegmentAttention = (q: Value, k: Value, v: Value) => Value;

/** The attention facts of a tower: width H = numHeads · headDim. */
export interface AttentionShape {
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly headDim: number;
}

/**
 * A Loop over segments running fused MultiHeadAttention on each one. ORT's CPU kernel tiles
 * the bias-free form (no [heads, S, S] buffer), so memory is linear in the segment length and
 * nothing is spent on cross-segment scores. Segments must be contiguous runs of rows, each
 * starting where `segmentStart` is true.
 */
export function loopedAttention(g: Graph, shape: AttentionShape, segments: Segments): SegmentAttention {
  const [starts, ends, count] = g.scope('segments', () => {
    const starts = op.squeeze(op.nonZero(segments.segmentStart, 'S'), [0]); // [S] first row of each segment
    const total = op.shapeOf(segments.segmentStart); // [1] = N
    const ends = op.concat([op.slice(starts, 0, 1, Number.MAX_SAFE_INTEGER), total], 0); // [S]
    return [starts, ends, op.squeeze(op.shapeOf(starts), [0])] as const;
  });
  const H = shape.hiddenSize;
  return (q, k, v) => {
    const empty = g.constant(q.dtype, [0, H], []); // [0, H] accumulator
    const [out] = op.loop(g, count, [empty], [[q.dim(0), H]], (i, [done]) => {
      const rows = (x: Value): Value => {
        const at = (bounds: Value): Value => op.unsqueeze(op.gather(bounds, i), [0]); // [1]
        return op.unsqueeze(op.sliceDynamic(x, 0, at(starts), at(ends), 'L'), [0]); // [1, L, H]
      };
      const o = op.multiHeadAttention(rows(q), rows(k), rows(v), { heads: shape.numHeads }); // [1, L, H]
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
export function denseMaskedAttention(g: Graph, shape: AttentionShape, segments: Segments): SegmentAttention {
  const mask = g.scope('segments', () => {
    const segment = segments.segment; // [N]
    const same = op.equal(op.unsqueeze(segment, [1]), op.unsqueeze(segment, [0])); // [N, N]
    return op.where(same, g.scalar('float32', 0), g.scalar('float32', -Infinity)); // [N, N]
  });
  const { numHeads: heads, headDim: D } = shape;
  return (q, k, v) => {
    const split = (x: Value): Value => op.transpose(op.reshape(x, [0, heads, D]), [1, 0, 2]); // [heads, N, D]
    const scores = op.add(op.mul(op.matmul(split(q), op.transpose(op.reshape(k, [0, heads, D]), [1, 2, 0])), g.scalar(q.dtype, 1 / Math.sqrt(D))), op.cast(mask, q.dtype)); // [heads, N, N]
    const o = op.matmul(op.softmax(scores, -1), split(v)); // [heads, N, D]
    return op.reshape(op.transpose(o, [1, 0, 2]), [0, shape.hiddenSize]); // [N, H]
  };
}

export type AttentionKind = 'looped' | 'dense';

export const ATTENTION: Readonly<Record<AttentionKind, (g: Graph, shape: AttentionShape, segments: Segments) => SegmentAttention>> = {
  looped: loopedAttention,
  dense: denseMaskedAttention,
};

/**
 * Fused MultiHeadAttention over a whole bucket with an additive bias [1, 1, Nmax, Nmax]: 0
 * within a segment, the dtype's lowest finite value across segments. Padding rows (segment 0)
 * form their own segment (finite, discarded). On CUDA the bias selects the memory-efficient
 * kernel, which reads the bias but never stores [heads, Nmax, Nmax] scores.
 *
 * Item isolation: non-finite values of K and V become 0 before the fused op, so a cross-segment
 * term is exactly q·0 + lowest (whose exp underflows to 0) times V = 0, never NaN: a NaN or Inf
 * in one item's pixels cannot reach another item's rows. Within the item itself, the rows whose
 * own values are non-finite stay NaN (their queries are); the item's other rows see those keys
 * as zeros, so they are finite but meaningless (the host runtime rejects non-finite pixels).
 */
export function blockDiagonalAttention(g: Graph, shape: AttentionShape, segment: Value, dtype: DataType): SegmentAttention {
  const bias = g.scope('segments', () => {
    const same = op.equal(op.unsqueeze(segment, [1]), op.unsqueeze(segment, [0])); // [Nmax, Nmax]
    const lowest = dtype === 'float16' ? -65504 : -3.4028234663852886e38;
    return op.unsqueeze(op.where(same, g.scalar(dtype, 0), g.scalar(dtype, lowest)), [0, 1]); // [1, 1, Nmax, Nmax]
  });
  return (q, k, v) => {
    const batch = (x: Value): Value => op.unsqueeze(x, [0]); // [Nmax, H] → [1, Nmax, H]
    const o = op.multiHeadAttention(batch(q), batch(finiteOrZero(g, k)), batch(finiteOrZero(g, v)), { heads: shape.numHeads, attentionBias: bias });
    return op.squeeze(o, [0]); // [Nmax, H]
  };
}

/** x with NaN and ±Inf replaced by 0 (Where(IsNaN ∨ IsInf, 0, x)); finite values pass bit for bit. */
function finiteOrZero(g: Graph, x: Value): Value {
  return g.scope('finite', () => op.where(op.or(op.isNaN(x), op.isInf(x)), g.scalar(x.dtype, 0), x));
}
