// Fused attention operators.

import { graphBuild } from '../../errors.js';
import { formatDims } from '../dims.js';
import type { Value } from '../graph.js';
import { expectDType, expectRank, expectSameDType } from './check.js';

/**
 * com.microsoft MultiHeadAttention (contrib opset 1), self-attention with separate Q, K, V in
 * BSNH-flattened layout: q, k, v [B, S, heads·D] → [B, S, heads·D]; scale defaults to 1/√D.
 * Optional `attentionBias` [B|1, heads|1, S, S] is added to the scores before softmax.
 * ORT CPU runs the bias-free form as a tiled (flash-style) kernel: no [heads, S, S] buffer.
 */
export function multiHeadAttention(q: Value, k: Value, v: Value, options: { heads: number; attentionBias?: Value; scale?: number }): Value {
  const op = 'MultiHeadAttention';
  expectDType(op, q, ['float32', 'float16']);
  expectSameDType(op, q, k, v);
  for (const t of [q, k, v]) expectRank(op, t, [3]);
  const hidden = q.dim(2);
  if (typeof hidden !== 'number' || hidden % options.heads !== 0) {
    throw graphBuild(q.graph.pendingNodeName(op), `hidden ${hidden} of ${formatDims(q.shape)} is not divisible by ${options.heads} heads`);
  }
  if (options.attentionBias) expectSameDType(op, q, options.attentionBias);
  return q.graph.node(op, [q, k, v, undefined, undefined, options.attentionBias], {
    domain: 'com.microsoft',
    outputs: [{ dtype: q.dtype, shape: q.shape }],
    attributes: { num_heads: options.heads, scale: options.scale === undefined ? undefined : { float: options.scale } },
  })[0]!;
}
