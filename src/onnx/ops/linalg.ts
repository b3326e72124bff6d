// Matrix products: MatMul-13 (batched, numpy semantics) and Gemm-13 (2-D with bias).

import { graphBuild } from '../../errors.js';
import { broadcastShapes, formatDims } from '../dims.js';
import type { Value } from '../graph.js';
import { expectDType, expectRank, expectSameDType, FLOATS, graphOf } from './check.js';

/** MatMul-13: [..., M, K] @ [..., K, N] → [..., M, N]. */
export function matmul(a: Value, b: Value): Value {
  const g = graphOf('MatMul', a, b);
  expectSameDType('MatMul', a, b);
  if (a.rank < 2 || b.rank < 2) throw graphBuild(g.pendingNodeName('MatMul'), `operands need rank ≥ 2, got ${formatDims(a.shape)} and ${formatDims(b.shape)}`);
  const k = a.dim(-1);
  if (k !== b.dim(-2)) throw graphBuild(g.pendingNodeName('MatMul'), `inner dims differ: ${formatDims(a.shape)} @ ${formatDims(b.shape)}`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (!batch) throw graphBuild(g.pendingNodeName('MatMul'), `batch dims do not broadcast: ${formatDims(a.shape)} @ ${formatDims(b.shape)}`);
  return g.node('MatMul', [a, b], { outputs: [{ dtype: a.dtype, shape: [...batch, a.dim(-2), b.dim(-1)] }] })[0]!;
}

/**
 * Gemm-13 as a linear layer: y = x @ wᵀ + bias with x [M, K], w [N, K] (PyTorch layout,
 * so checkpoint weights are used as stored), bias [N] → y [M, N].
 */
export function gemmTransB(x: Value, w: Value, bias?: Value): Value {
  const g = graphOf('Gemm', x, w);
  expectDType('Gemm', x, FLOATS);
  expectSameDType('Gemm', x, w, ...(bias ? [bias] : []));
  expectRank('Gemm', x, [2]);
  expectRank('Gemm', w, [2]);
  if (x.dim(1) !== w.dim(1)) throw graphBuild(g.pendingNodeName('Gemm'), `x ${formatDims(x.shape)} does not match weight ${formatDims(w.shape)} (expects [N, K] with K = ${x.dim(1)})`);
  if (bias && (bias.rank !== 1 || bias.dim(0) !== w.dim(0))) throw graphBuild(g.pendingNodeName('Gemm'), `bias ${formatDims(bias.shape)} does not match weight ${formatDims(w.shape)}`);
  return g.node('Gemm', [x, w, bias], { outputs: [{ dtype: x.dtype, shape: [x.dim(0), w.dim(0)] }], attributes: { transB: 1 } })[0]!;
}
