// Shape and indexing operators (ai.onnx): Reshape-21, Transpose-21, Concat-13, Slice-13,
// Gather-13, Unsqueeze-21, Squeeze-21, Shape-21, Expand-13, Split-18, ConstantOfShape-21,
// Range-11, NonZero-13, Tile-13.

import { graphBuild } from '../../errors.js';
import { addDims, broadcastShapes, formatDims, inferReshapeDim, isStatic, numelOf, type Dim, type Shape } from '../dims.js';
import { encodeValues, type DataType, type Value } from '../graph.js';
import { expectDType, expectRank, expectSameDType, graphOf, normalizeAxis } from './check.js';

const INDEX: readonly DataType[] = ['int64', 'int32'];

/**
 * Reshape-21 to a static target: numbers, with `0` copying the input dim at that position and
 * one `-1` inferred (symbolically when the input is symbolic: [N, 64] → [-1, 256] gives [N/4, 256]).
 */
export function reshape(x: Value, target: readonly number[]): Value {
  const g = x.graph;
  const op = g.pendingNodeName('Reshape');
  if (target.filter((d) => d === -1).length > 1) throw graphBuild(op, `at most one -1 in target ${formatDims(target)}`);
  const copied: Dim[] = target.map((d, i) => (d === 0 ? x.dim(i) : d));
  const known = copied.filter((d): d is number => typeof d === 'number' && d !== -1);
  const copiedSymbolic = copied.filter((d): d is string => typeof d === 'string');
  let out: Dim[];
  if (copied.includes(-1)) {
    // Cancel dims copied unchanged before inferring -1 from the remaining element count.
    const remaining = [...x.shape];
    for (const s of copiedSymbolic) remaining.splice(remaining.indexOf(s), 1);
    const inferred = inferReshapeDim(remaining, known.length ? known : [1]);
    if (inferred === undefined) throw graphBuild(op, `cannot infer -1 in ${formatDims(target)} from ${formatDims(x.shape)}`);
    out = copied.map((d) => (d === -1 ? inferred : d));
  } else {
    out = copied;
    const a = numelOf(x.shape);
    const b = numelOf(out);
    if (a.factor !== b.factor || a.symbolic.join('*') !== b.symbolic.join('*')) {
      throw graphBuild(op, `element count differs: ${formatDims(x.shape)} → ${formatDims(out)}`);
    }
  }
  return g.node('Reshape', [x, g.int64s(target)], { outputs: [{ dtype: x.dtype, shape: out }] })[0]!;
}

/** Reshape-21 to a runtime shape (int64 [rank]); the caller states the result shape. */
export function reshapeDynamic(x: Value, shape: Value, result: Shape): Value {
  expectDType('Reshape', shape, ['int64']);
  expectRank('Reshape', shape, [1]);
  if (shape.dim(0) !== result.length) throw graphBuild(x.graph.pendingNodeName('Reshape'), `shape operand has ${shape.dim(0)} entries, result rank is ${result.length}`);
  return x.graph.node('Reshape', [x, shape], { outputs: [{ dtype: x.dtype, shape: result }] })[0]!;
}

/** Transpose-21 with an explicit permutation. */
export function transpose(x: Value, perm: readonly number[]): Value {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
    throw graphBuild(x.graph.pendingNodeName('Transpose'), `perm ${formatDims(perm)} is not a permutation of rank ${x.rank}`);
  }
  return x.graph.node('Transpose', [x], { outputs: [{ dtype: x.dtype, shape: perm.map((p) => x.dim(p)) }], attributes: { perm: [...perm] } })[0]!;
}

/** Concat-13 along `axis`. */
export function concat(values: readonly Value[], axis: number): Value {
  const g = graphOf('Concat', ...values);
  const first = values[0]!;
  expectSameDType('Concat', ...values);
  const a = normalizeAxis('Concat', first, axis);
  for (const v of values) {
    if (v.rank !== first.rank || v.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw graphBuild(g.pendingNodeName('Concat'), `shapes differ off axis ${a}: ${values.map((u) => formatDims(u.shape)).join(', ')}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = values.slice(1).reduce((acc, v) => addDims(acc, v.dim(a)), first.dim(a));
  return g.node('Concat', values, { outputs: [{ dtype: first.dtype, shape }], attributes: { axis: a } })[0]!;
}

/** Slice-13 with static bounds on one axis (end clamps; negative indexes count from the end). */
export function slice(x: Value, axis: number, start: number, end: number): Value {
  const a = normalizeAxis('Slice', x, axis);
  const d = x.dim(a);
  let length: Dim;
  if (typeof d === 'number') {
    const clamp = (i: number): number => Math.min(Math.max(i < 0 ? i + d : i, 0), d);
    length = Math.max(clamp(end) - clamp(start), 0);
  } else if (start >= 0 && end >= 0 && end !== Number.MAX_SAFE_INTEGER) {
    length = end - start; // assumes the symbolic dim is at least `end`
  } else {
    length = `${d}_slice${start}`;
  }
  const shape = [...x.shape];
  shape[a] = length;
  const g = x.graph;
  return g.node('Slice', [x, g.int64s([start]), g.int64s([end]), g.int64s([a])], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

/** Slice-13 with runtime bounds (int64 [1] each) on one axis; the caller names the result dim. */
export function sliceDynamic(x: Value, axis: number, start: Value, end: Value, length: Dim): Value {
  expectDType('Slice', start, ['int64']);
  expectDType('Slice', end, ['int64']);
  const a = normalizeAxis('Slice', x, axis);
  const shape = [...x.shape];
  shape[a] = length;
  return x.graph.node('Slice', [x, start, end, x.graph.int64s([a])], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

/** Gather-13: data[..., indices, ...] along `axis`. */
export function gather(data: Value, indices: Value, axis = 0): Value {
  expectDType('Gather', indices, INDEX);
  const a = normalizeAxis('Gather', data, axis);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return data.graph.node('Gather', [data, indices], { outputs: [{ dtype: data.dtype, shape }], attributes: { axis: a } })[0]!;
}

/** Unsqueeze-21: inserts size-1 axes (positions in the output). */
export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const rank = x.rank + axes.length;
  const norm = axes.map((ax) => normalizeAxis('Unsqueeze', x, ax, rank)).sort((p, q) => p - q);
  const shape: Dim[] = [...x.shape];
  for (const ax of norm) shape.splice(ax, 0, 1);
  return x.graph.node('Unsqueeze', [x, x.graph.int64s(norm)], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

/** Squeeze-21: removes the given size-1 axes. */
export function squeeze(x: Value, axes: readonly number[]): Value {
  const norm = axes.map((ax) => normalizeAxis('Squeeze', x, ax));
  for (const ax of norm) {
    if (x.dim(ax) !== 1) throw graphBuild(x.graph.pendingNodeName('Squeeze'), `axis ${ax} of ${formatDims(x.shape)} is not 1`);
  }
  const shape = x.shape.filter((_, i) => !norm.includes(i));
  return x.graph.node('Squeeze', [x, x.graph.int64s(norm)], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

/** Shape-21 (optionally one axis range [start, end)) → int64 [k]. */
export function shapeOf(x: Value, start = 0, end = x.rank): Value {
  return x.graph.node('Shape', [x], {
    outputs: [{ dtype: 'int64', shape: [end - start] }],
    attributes: { start: start === 0 ? undefined : start, end: end === x.rank ? undefined : end },
  })[0]!;
}

/** Expand-13 to a runtime shape; the caller states the result (checked to broadcast). */
export function expand(x: Value, shape: Value, result: Shape): Value {
  expectDType('Expand', shape, ['int64']);
  if (!broadcastShapes(x.shape, result)) throw graphBuild(x.graph.pendingNodeName('Expand'), `${formatDims(x.shape)} does not broadcast to ${formatDims(result)}`);
  return x.graph.node('Expand', [x, shape], { outputs: [{ dtype: x.dtype, shape: result }] })[0]!;
}

/** Split-18 into pieces of the given static sizes along `axis`. */
export function split(x: Value, axis: number, sizes: readonly number[]): Value[] {
  const a = normalizeAxis('Split', x, axis);
  const total = sizes.reduce((p, q) => p + q, 0);
  if (x.dim(a) !== total) throw graphBuild(x.graph.pendingNodeName('Split'), `sizes ${formatDims(sizes)} do not add up to dim ${a} of ${formatDims(x.shape)}`);
  return x.graph.node('Split', [x, x.graph.int64s(sizes)], {
    outputs: sizes.map((s) => {
      const shape = [...x.shape];
      shape[a] = s;
      return { dtype: x.dtype, shape };
    }),
    attributes: { axis: a },
  });
}

/** ConstantOfShape-21: a tensor of `result` shape (given at runtime by `shape`) filled with `value`. */
export function constantOfShape(shape: Value, dtype: DataType, value: number, result: Shape): Value {
  expectDType('ConstantOfShape', shape, ['int64']);
  const bytes = encodeValues(dtype, dtype === 'int64' ? [BigInt(value)] : [value], [1]);
  return shape.graph.node('ConstantOfShape', [shape], {
    outputs: [{ dtype, shape: result }],
    attributes: { value: { tensor: { dtype, dims: [1], bytes } } },
  })[0]!;
}

/** Range-11: [start, limit) by delta, scalars of one dtype; the caller names the length. */
export function range(start: Value, limit: Value, delta: Value, length: Dim): Value {
  expectSameDType('Range', start, limit, delta);
  for (const v of [start, limit, delta]) expectRank('Range', v, [0]);
  return start.graph.node('Range', [start, limit, delta], { outputs: [{ dtype: start.dtype, shape: [length] }] })[0]!;
}

/** NonZero-13 → int64 [rank, count]; the caller names the count. */
export function nonZero(x: Value, count: Dim): Value {
  return x.graph.node('NonZero', [x], { outputs: [{ dtype: 'int64', shape: [x.rank, count] }] })[0]!;
}

/** Tile-13 by static repeats. */
export function tile(x: Value, repeats: readonly number[]): Value {
  if (repeats.length !== x.rank) throw graphBuild(x.graph.pendingNodeName('Tile'), `repeats ${formatDims(repeats)} must match rank ${x.rank}`);
  const shape = x.shape.map((d, i) => (typeof d === 'number' ? d * repeats[i]! : repeats[i] === 1 ? d : `${repeats[i]}*${d}`));
  return x.graph.node('Tile', [x, x.graph.int64s(repeats)], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

export { isStatic };
