// Reductions and scans: ReduceSum-13, ReduceMax-18, ReduceMin-18, CumSum-14.

import type { Dim } from '../dims.js';
import type { Value } from '../graph.js';
import { expectDType, NUMERIC, normalizeAxis } from './check.js';

function reduce(op: 'ReduceSum' | 'ReduceMax' | 'ReduceMin', x: Value, axes: readonly number[], keepDims: boolean): Value {
  expectDType(op, x, NUMERIC);
  const norm = axes.map((a) => normalizeAxis(op, x, a));
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!norm.includes(i)) shape.push(d);
    else if (keepDims) shape.push(1);
  });
  return x.graph.node(op, [x, x.graph.int64s(norm)], { outputs: [{ dtype: x.dtype, shape }], attributes: { keepdims: keepDims ? 1 : 0 } })[0]!;
}

export const reduceSum = (x: Value, axes: readonly number[], keepDims = false): Value => reduce('ReduceSum', x, axes, keepDims);
export const reduceMax = (x: Value, axes: readonly number[], keepDims = false): Value => reduce('ReduceMax', x, axes, keepDims);
export const reduceMin = (x: Value, axes: readonly number[], keepDims = false): Value => reduce('ReduceMin', x, axes, keepDims);

/** CumSum-14 along `axis`; `exclusive` starts each prefix sum at 0. */
export function cumSum(x: Value, axis: number, options: { exclusive?: boolean } = {}): Value {
  expectDType('CumSum', x, NUMERIC);
  const a = normalizeAxis('CumSum', x, axis);
  return x.graph.node('CumSum', [x, x.graph.constant('int64', [], [BigInt(a)])], {
    outputs: [{ dtype: x.dtype, shape: x.shape }],
    attributes: { exclusive: options.exclusive ? 1 : undefined },
  })[0]!;
}
