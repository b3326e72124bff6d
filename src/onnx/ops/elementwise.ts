// Elementwise ONNX operators (ai.onnx, opset ≥ 13 semantics, numpy broadcasting).

import { graphBuild } from '../../errors.js';
import { broadcastShapes, formatDims, type Shape } from '../dims.js';
import { onnxTypeCode } from '../../dtype.js';
import type { DataType, Value } from '../graph.js';
import { expectDType, expectSameDType, FLOATS, graphOf, NUMERIC } from './check.js';

function broadcast(op: string, a: Value, b: Value): Shape {
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) throw graphBuild(a.graph.pendingNodeName(op), `cannot broadcast ${formatDims(a.shape)} with ${formatDims(b.shape)}`);
  return shape;
}

function binary(op: string, a: Value, b: Value, resultDType?: DataType): Value {
  expectSameDType(op, a, b);
  const shape = broadcast(op, a, b);
  return graphOf(op, a).node(op, [a, b], { outputs: [{ dtype: resultDType ?? a.dtype, shape }] })[0]!;
}

function unary(op: string, x: Value, allowed: readonly DataType[] = FLOATS): Value {
  expectDType(op, x, allowed);
  return x.graph.node(op, [x], { outputs: [{ dtype: x.dtype, shape: x.shape }] })[0]!;
}

// Arithmetic (Add-14, Sub-14, Mul-14, Div-14, Pow-15, Min-13, Max-13, Mod-13).
export const add = (a: Value, b: Value): Value => binary('Add', a, b);
export const sub = (a: Value, b: Value): Value => binary('Sub', a, b);
export const mul = (a: Value, b: Value): Value => binary('Mul', a, b);
export const div = (a: Value, b: Value): Value => binary('Div', a, b);
export const pow = (a: Value, b: Value): Value => binary('Pow', a, b);
export const min = (a: Value, b: Value): Value => binary('Min', a, b);
export const max = (a: Value, b: Value): Value => binary('Max', a, b);
/** Integer remainder with the sign of the divisor (Mod-13, fmod = 0). */
export const mod = (a: Value, b: Value): Value => binary('Mod', a, b);

// Comparisons and logic (Equal-19, Less-13, GreaterOrEqual-16, And-7, Or-7, Not-1) → bool.
export const equal = (a: Value, b: Value): Value => binary('Equal', a, b, 'bool');
export const less = (a: Value, b: Value): Value => binary('Less', a, b, 'bool');
export const greaterOrEqual = (a: Value, b: Value): Value => binary('GreaterOrEqual', a, b, 'bool');
export const and = (a: Value, b: Value): Value => {
  expectDType('And', a, ['bool']);
  return binary('And', a, b, 'bool');
};
export const or = (a: Value, b: Value): Value => {
  expectDType('Or', a, ['bool']);
  return binary('Or', a, b, 'bool');
};
export const not = (x: Value): Value => unary('Not', x, ['bool']);

// Float classification (IsNaN-20, IsInf-20 with both signs) → bool.
export const isNaN = (x: Value): Value => {
  expectDType('IsNaN', x, FLOATS);
  return x.graph.node('IsNaN', [x], { outputs: [{ dtype: 'bool', shape: x.shape }] })[0]!;
};
export const isInf = (x: Value): Value => {
  expectDType('IsInf', x, FLOATS);
  return x.graph.node('IsInf', [x], { outputs: [{ dtype: 'bool', shape: x.shape }] })[0]!;
};

// Unary math (Neg-13, Sqrt-13, Erf-13, Tanh-13, Sigmoid-13, Cos-7, Sin-7, Floor-13, Round-11, Exp-13, Abs-13).
export const neg = (x: Value): Value => unary('Neg', x, NUMERIC);
export const sqrt = (x: Value): Value => unary('Sqrt', x);
export const erf = (x: Value): Value => unary('Erf', x);
export const tanh = (x: Value): Value => unary('Tanh', x);
export const sigmoid = (x: Value): Value => unary('Sigmoid', x);
export const cos = (x: Value): Value => unary('Cos', x);
export const sin = (x: Value): Value => unary('Sin', x);
export const floor = (x: Value): Value => unary('Floor', x);
/** Round-11: to the nearest integer, halves to even. */
export const round = (x: Value): Value => unary('Round', x);
export const exp = (x: Value): Value => unary('Exp', x);

/** Cast-19 to `to` (no-op values are returned as they are). */
export function cast(x: Value, to: DataType): Value {
  if (x.dtype === to) return x;
  return x.graph.node('Cast', [x], { outputs: [{ dtype: to, shape: x.shape }], attributes: { to: onnxTypeCode(to) } })[0]!;
}

/** Where-16: cond ? a : b, broadcasting all three. */
export function where(cond: Value, a: Value, b: Value): Value {
  expectDType('Where', cond, ['bool']);
  expectSameDType('Where', a, b);
  const shape = broadcastShapes(cond.shape, broadcast('Where', a, b));
  if (!shape) throw graphBuild(cond.graph.pendingNodeName('Where'), `cannot broadcast condition ${formatDims(cond.shape)}`);
  return cond.graph.node('Where', [cond, a, b], { outputs: [{ dtype: a.dtype, shape }] })[0]!;
}
