// Build-time operand checks shared by the op wrappers.

import { graphBuild } from '../../errors.js';
import { formatDims, type Dim } from '../dims.js';
import type { DataType, Graph, Value } from '../graph.js';

export const FLOATS: readonly DataType[] = ['float32', 'float16', 'bfloat16', 'float64'];
export const INTEGERS: readonly DataType[] = ['int64', 'int32', 'int8', 'uint8'];
export const NUMERIC: readonly DataType[] = [...FLOATS, ...INTEGERS];

/** The graph all operands live in (they must share one model). */
export function graphOf(op: string, ...values: Value[]): Graph {
  const g = values[0]?.graph;
  if (!g) throw graphBuild(op, 'needs at least one operand');
  return g;
}

export function expectDType(op: string, v: Value, allowed: readonly DataType[]): void {
  if (!allowed.includes(v.dtype)) {
    throw graphBuild(v.graph.pendingNodeName(op), `operand ${v.name}: expected dtype ${allowed.join('|')}, got ${v.dtype}`);
  }
}

export function expectSameDType(op: string, ...values: Value[]): DataType {
  const dtype = values[0]!.dtype;
  for (const v of values) {
    if (v.dtype !== dtype) {
      throw graphBuild(v.graph.pendingNodeName(op), `operands must share a dtype: ${values.map(String).join(', ')}`);
    }
  }
  return dtype;
}

export function expectRank(op: string, v: Value, ranks: readonly number[]): void {
  if (!ranks.includes(v.rank)) {
    throw graphBuild(v.graph.pendingNodeName(op), `operand ${v.name}: expected rank ${ranks.join(' or ')}, got ${formatDims(v.shape)}`);
  }
}

export function expectDim(op: string, v: Value, axis: number, expected: Dim): void {
  const got = v.dim(axis);
  if (got !== expected) {
    throw graphBuild(v.graph.pendingNodeName(op), `operand ${v.name}: expected dim ${axis} = ${expected}, got ${formatDims(v.shape)}`);
  }
}

export const normalizeAxis = (op: string, v: Value, axis: number, rank = v.rank): number => {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw graphBuild(v.graph.pendingNodeName(op), `axis ${axis} out of range for rank ${rank}`);
  return a;
};
