// Segment-restricted attention formulations, shared by every tower. A segment is a frame group
// of one item (Qwen3-VL spec §3.4) or a window of one (Qwen2-VL spec §3.6): no attention across
// segments or into padding. Each builder returns a `SegmentAttention` taking rotated
// q, k, v [N, H] → [N, H].

import { oneFramePerRow, type Bucket, type GraphDevice } from '../../src/model.js';
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
      const o = op.cast(op.multiHeadAttention(half(rows(q)), half(rows(k)), half(rows(v)), { heads: shape.numHeads }), q.dtype); // [1, L, H]
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
  const kernel = kernelDType(dtype);
  const bias = g.scope('segments', () => {
    const same = op.equal(op.unsqueeze(segment, [1]), op.unsqueeze(segment, [0])); // [Nmax, Nmax]
    const lowest = kernel === 'float16' ? -65504 : -3.4028234663852886e38;
    return op.unsqueeze(op.where(same, g.scalar(kernel, 0), g.scalar(kernel, lowest)), [0, 1]); // [1, 1, Nmax, Nmax]
  });
  return (q, k, v) => {
    const batch = (x: Value): Value => op.unsqueeze(half(x), [0]); // [Nmax, H] → [1, Nmax, H]
    const o = op.multiHeadAttention(batch(q), batch(finiteOrZero(g, k)), batch(finiteOrZero(g, v)), { heads: shape.numHeads, attentionBias: bias });
    return op.cast(op.squeeze(o, [0]), q.dtype); // [Nmax, H]
  };
}

/**
 * The dtype attention kernels run in: ORT's fused attention takes float32 and float16 only, so
 * bfloat16 goes through float16: exact for the magnitudes of normalized, projected q, k, v
 * (|x| < 65504; bf16's 8-bit significand fits in fp16's 11), with float32 softmax inside.
 */
const kernelDType = (dtype: DataType): DataType => (dtype === 'bfloat16' ? 'float16' : dtype);
const half = (x: Value): Value => op.cast(x, kernelDType(x.dtype));

/** x with NaN and ±Inf replaced by 0 (Where(IsNaN ∨ IsInf, 0, x)); finite values pass bit for bit. */
function finiteOrZero(g: Graph, x: Value): Value {
  return g.scope('finite', () => op.where(op.or(op.isNaN(x), op.isInf(x)), g.scalar(x.dtype, 0), x));
}

/**
 * `q` turned to NaN everywhere unless `count` ([] int64) ≤ `limit`: a bucket given more segments
 * than its attention form serves gives NaN outputs (which every host check refuses) instead of
 * attending across segments. A value-level check, because a bucket's shapes may not depend on
 * its inputs (a CUDA graph replays fixed shapes, and a shape read back to the host breaks it).
 */
function nanUnlessAtMost(g: Graph, count: Value, limit: number): (q: Value) => Value {
  const ok = op.not(op.less(g.scalar('int64', limit), count)); // []
  return (q) => op.add(q, op.where(ok, g.scalar(q.dtype, 0), g.scalar(q.dtype, Number.NaN)));
}

/**
 * Bias-free attention for a bucket whose real rows are one segment (one item of one frame
 * group): MultiHeadAttention with the real row count as its key length, so every real query
 * attends to exactly its segment and never to the padding. Padding queries see the real keys
 * (finite, discarded). More than one segment among the real rows fails the run: the host
 * splits multi-frame items before packing (src/runtime/buckets.ts).
 */
export function singleSegmentAttention(g: Graph, shape: AttentionShape, segments: Segments): SegmentAttention {
  const { realRows, guard } = g.scope('segments', () => {
    const count = op.reduceSum(op.cast(segments.segmentStart, 'int64'), [0]); // [] segments among real rows
    const real = op.reshape(op.reduceSum(op.cast(op.less(g.scalar('int64', 0), segments.segment), 'int64'), [0]), [1]); // [1]
    return { realRows: op.cast(real, 'int32'), guard: g.scope('one_segment_per_bucket', () => nanUnlessAtMost(g, count, 1)) };
  });
  return (q, k, v) => {
    const batch = (x: Value): Value => op.unsqueeze(half(x), [0]); // [Nmax, H] → [1, Nmax, H]
    return op.cast(op.squeeze(op.multiHeadAttention(batch(guard(q)), batch(k), batch(v), { heads: shape.numHeads, keyLengths: realRows }), [0]), q.dtype); // [Nmax, H]
  };
}

/**
 * Variable-length attention over the bucket's segments (CUDA: PackedMultiHeadAttention, no
 * [Nmax, Nmax] bias): segment s (1..maxSegments) is sequence s − 1, the padding rows are the
 * last sequence, and no row attends outside its sequence, so items (and a non-finite item) stay
 * apart without any masking arithmetic. Segments must be contiguous runs numbered in row order
 * (patchCoordinates' are); more than `maxSegments` fails the run instead of mixing segments.
 */
export function varlenAttention(g: Graph, shape: AttentionShape, segments: Segments, maxSegments: number): SegmentAttention {
  const rows = segments.segment.dim(0) as number;
  const { cumulativeLengths, tokenOffset, guard } = g.scope('segments', () => {
    const int = (v: number): Value => g.scalar('int64', v);
    const ids = g.constant('int64', [1, maxSegments], Array.from({ length: maxSegments }, (_, i) => BigInt(i + 1)), 'segment_ids'); // [1, S]
    const real = op.less(int(0), segments.segment); // [Nmax]
    const upTo = op.and(op.unsqueeze(real, [1]), op.not(op.less(ids, op.unsqueeze(segments.segment, [1])))); // [Nmax, S]: 1 ≤ segment ≤ s
    const ends = op.reduceSum(op.cast(upTo, 'int64'), [0]); // [S] rows of segments 1..s
    const count = op.reduceMax(segments.segment, [0]); // [] segments in use
    const cu = op.concat([g.int64s([0]), ends, g.int64s([rows])], 0); // [S + 2]: the last sequence is the padding
    const guard = g.scope('at_most_max_segments', () => nanUnlessAtMost(g, count, maxSegments));
    return { cumulativeLengths: op.cast(cu, 'int32'), tokenOffset: packedTokenOffset(g, cu, maxSegments + 1, rows), guard };
  });
  return (q, k, v) => op.cast(op.packedMultiHeadAttention(half(guard(q)), half(k), half(v), { heads: shape.numHeads, tokenOffset, cumulativeLengths }), q.dtype); // [Nmax, H]
}

/**
 * token_offset [B, L] int32 of B sequences (boundaries `cu` [B + 1] int64) packed from a padded
 * [B, L] layout: first each row's padded position b·L + (row − cu[b]) in row order, then the
 * unused positions b·L + len[b] + j in order (RemovePadding's layout).
 */
function packedTokenOffset(g: Graph, cu: Value, sequences: number, longest: number): Value {
  const int = (v: number): Value => g.scalar('int64', v);
  const rows = iota(g, longest); // [T] (T = Nmax rows = longest)
  const starts = op.slice(cu, 0, 0, sequences); // [B]
  const ends = op.slice(cu, 0, 1, sequences + 1); // [B]
  const lengths = op.sub(ends, starts); // [B]
  // Sequence of each row: how many sequences end at or before it.
  const sequenceOf = (index: Value, bounds: Value): Value => op.min(op.reduceSum(op.cast(op.greaterOrEqual(op.unsqueeze(index, [1]), op.unsqueeze(bounds, [0])), 'int64'), [1]), int(sequences - 1));
  const b = sequenceOf(rows, ends); // [T]
  const used = op.add(op.mul(b, int(longest)), op.sub(rows, op.gather(starts, b))); // [T]
  // Unused positions: sequence b leaves L − len[b] of them; j-th unused overall → its position.
  const unusedCount = sequences * longest - longest;
  const unusedEnds = op.cumSum(op.sub(int(longest), lengths), 0); // [B]
  const j = iota(g, unusedCount); // [U]
  const ub = sequenceOf(j, unusedEnds); // [U]
  const before = op.sub(op.gather(unusedEnds, ub), op.sub(int(longest), op.gather(lengths, ub))); // [U] unused positions before sequence ub
  const unused = op.add(op.add(op.mul(ub, int(longest)), op.gather(lengths, ub)), op.sub(j, before)); // [U]
  return op.reshape(op.cast(op.concat([used, unused], 0), 'int32'), [sequences, longest]); // [B, L]
}

/** 0, 1, …, n − 1 as [n] int64, with static shapes only (no Range: padded graphs keep none). */
function iota(g: Graph, n: number): Value {
  return op.cumSum(op.constantOfShape(g.int64s([n]), 'int64', 1, [n]), 0, { exclusive: true });
}

/**
 * The attention of a padded bucket over `segments`: bias-free with a key length for a one-item
 * bucket (any device), variable-length for a CUDA multi-item bucket, else the block-diagonal bias. The
 * bias-free forms rely on one frame group per grid row (`oneFramePerRow`); `segmentsPerRow`
 * false means segments are finer than frames (Qwen2.5-VL's windows), which only the bias serves.
 */
export function paddedAttention(g: Graph, shape: AttentionShape, segments: Segments, bucket: Bucket, device: GraphDevice, dtype: DataType, segmentsPerRow = true): SegmentAttention {
  if (!segmentsPerRow || !oneFramePerRow(bucket, device)) return blockDiagonalAttention(g, shape, segments.segment, dtype);
  if (bucket.maxItems === 1) return singleSegmentAttention(g, shape, segments);
  return varlenAttention(g, shape, segments, bucket.maxItems);
}
