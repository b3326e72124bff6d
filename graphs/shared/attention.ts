// Segment-restricted attention formulations, shared by every tower. A segment is a frame group
// of one item (Qwen3-VL spec §3.4) or a window of one (Qwen2-VL spec §3.6): no attention across
// segments or into padding. Each builder returns a `SegmentAttention` taking rotated
// q, k, v [N, H] → [N, H].

import type { Device } from '../../src/contract.js';
import type { Bucket } from '../../src/model.js';
import type { DataType, Graph, Value } from '../../src/onnx/index.js';
import { op } from '../../src/onnx/index.js';
import type { Segments } from './layout.js';

/** Attention restricted to segments: q, k, v [1, N, H] (rotated) → [1, N, H], the layout of the fused ops. */
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
    const empty = g.constant(q.dtype, [1, 0, H], []); // [1, 0, H] accumulator
    const [out] = op.loop(g, count, [empty], [[1, q.dim(1), H]], (i, [done]) => {
      const rows = (x: Value): Value => {
        const at = (bounds: Value): Value => op.unsqueeze(op.gather(bounds, i), [0]); // [1]
        return op.sliceDynamic(x, 1, at(starts), at(ends), 'L'); // [1, L, H]
      };
      const o = op.cast(op.multiHeadAttention(half(rows(q)), half(rows(k)), half(rows(v)), { heads: shape.numHeads }), q.dtype); // [1, L, H]
      return [op.concat([done!, o], 1)]; // [1, rows so far + L, H]
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
    const split = (x: Value): Value => op.transpose(op.reshape(x, [-1, heads, D]), [1, 0, 2]); // [1, N, H] → [heads, N, D]
    const scores = op.add(op.mul(op.matmul(split(q), op.transpose(op.reshape(k, [-1, heads, D]), [1, 2, 0])), g.scalar(q.dtype, 1 / Math.sqrt(D))), op.cast(mask, q.dtype)); // [heads, N, N]
    const o = op.matmul(op.softmax(scores, -1), split(v)); // [heads, N, D]
    return op.reshape(op.transpose(o, [1, 0, 2]), [1, -1, shape.hiddenSize]); // [1, N, H]
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
  return (q, k, v) => op.cast(op.multiHeadAttention(half(q), half(finiteOrZero(g, k)), half(finiteOrZero(g, v)), { heads: shape.numHeads, attentionBias: bias }), q.dtype); // [1, Nmax, H]
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
 * The item slots of a slotted bucket (src/contract.ts `slotPatches`): item i's rows sit at
 * i·size ..< i·size + lengths[i]; `fits` is false when an item has several frames or more rows
 * than its slot (the attention then poisons the outputs rather than mix rows).
 */
export interface ItemSlots {
  readonly size: number;
  readonly lengths: Value; // [Imax] int64: t·h·w of each grid row
  readonly fits: Value; // [] bool
}

/**
 * Attention over a slotted bucket: [1, Nmax, H] seen as [Imax, S, H], one sequence per item with
 * its row count as key length, so no row attends outside its item and there is no [Nmax, Nmax]
 * bias. Empty slots get key length 1 (their rows are discarded); a misfit grid poisons the first
 * block's queries (see `fits`).
 */
export function slottedAttention(g: Graph, shape: AttentionShape, slots: ItemSlots): SegmentAttention {
  const H = shape.hiddenSize;
  const { keyLengths, guard } = g.scope('slots', () => ({
    keyLengths: op.cast(op.max(slots.lengths, g.scalar('int64', 1)), 'int32'), // [Imax]
    guard: nanUnlessAtMost(g, op.cast(op.not(slots.fits), 'int64'), 0),
  }));
  let guarded = false;
  return (q, k, v) => {
    const query = guarded ? q : guard(q);
    guarded = true;
    const items = (x: Value): Value => op.reshape(half(x), [-1, slots.size, H]); // [1, Nmax, H] → [Imax, S, H]
    const o = op.multiHeadAttention(items(query), items(k), items(v), { heads: shape.numHeads, keyLengths });
    return op.cast(op.reshape(o, [1, -1, H]), q.dtype); // [1, Nmax, H]
  };
}

/**
 * The attention of a padded bucket over `segments`. A slotted bucket (src/contract.ts: one item, or
 * several built for CUDA) is bias-free: each item is one segment, so MultiHeadAttention with a key
 * length per item serves (ORT runs it as a tiled kernel on CPU and as cuDNN flash attention on CUDA
 * in half precision). A one-item float32 bucket built for CUDA keeps the bias: ORT 1.29's CUDA
 * provider runs float32 attention with a key length as its unfused kernel (a [heads, N, N] buffer:
 * out of memory at 2048², measured on an H200), and with a bias as the memory-efficient one; with
 * several slots that buffer is per item. Multi-item CPU buckets carry the block-diagonal bias.
 */
export function paddedAttention(g: Graph, shape: AttentionShape, segments: Segments, bucket: Bucket, device: Device, dtype: DataType, slots?: ItemSlots): SegmentAttention {
  const unfusedFloat32 = device === 'cuda' && dtype === 'float32' && bucket.maxItems === 1;
  return slots && !unfusedFloat32 ? slottedAttention(g, shape, slots) : blockDiagonalAttention(g, shape, segments.segment, dtype);
}
