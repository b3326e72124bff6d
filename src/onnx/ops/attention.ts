// Fused attention operators.

import { graphBuild } from '../../errors.js';
import { formatDims } from '../dims.js';
import type { Value } from '../graph.js';
import { expectDType, expectRank, expectSameDType } from './check.js';

/**
 * com.microsoft MultiHeadAttention (contrib opset 1), self-attention with separate Q, K, V in
 * BSNH-flattened layout: q, k, v [B, S, heads·D] → [B, S, heads·D]; scale defaults to 1/√D.
 * Optional `attentionBias` [B|1, heads|1, S, S] is added to the scores before softmax.
 * Optional `keyLengths` [B] int32 (key_padding_mask of the 1-D kind): each query attends to the
 * first keyLengths[b] keys of its batch row only (right padding), with no [S, S] bias.
 * ORT CPU runs the bias-free form as a tiled (flash-style) kernel: no [heads, S, S] buffer.
 */
export function multiHeadAttention(q: Value, k: Value, v: Value, options: { heads: number; attentionBias?: Value; keyLengths?: Value; scale?: number }): Value {
  const op = 'MultiHeadAttention';
  expectDType(op, q, ['float32', 'float16']);
  expectSameDType(op, q, k, v);
  for (const t of [q, k, v]) expectRank(op, t, [3]);
  const hidden = q.dim(2);
  if (typeof hidden !== 'number' || hidden % options.heads !== 0) {
    throw graphBuild(q.graph.pendingNodeName(op), `hidden ${hidden} of ${formatDims(q.shape)} is not divisible by ${options.heads} heads`);
  }
  if (options.attentionBias) expectSameDType(op, q, options.attentionBias);
  if (options.keyLengths) {
    expectDType(op, options.keyLengths, ['int32']);
    expectRank(op, options.keyLengths, [1]);
  }
  return q.graph.node(op, [q, k, v, undefined, options.keyLengths, options.attentionBias], {
    domain: 'com.microsoft',
    outputs: [{ dtype: q.dtype, shape: q.shape }],
    attributes: { num_heads: options.heads, scale: options.scale === undefined ? undefined : { float: options.scale } },
  })[0]!;
}

/**
 * com.microsoft RotaryEmbedding (contrib opset 1), rotate-half (interleaved = 0):
 * x [B, S, heads·D] with per-position caches cos/sin [P, D/2] gathered by positionIds [B, S]
 * (int64) → [B, S, heads·D]. Component i < D/2 pairs with i + D/2 and both turn by angle i.
 */
export function rotaryEmbedding(x: Value, positionIds: Value, cosCache: Value, sinCache: Value, options: { heads: number }): Value {
  const op = 'RotaryEmbedding';
  expectDType(op, x, ['float32', 'float16', 'bfloat16']);
  expectRank(op, x, [3]);
  expectDType(op, positionIds, ['int64']);
  expectSameDType(op, x, cosCache, sinCache);
  const hidden = x.dim(2);
  if (typeof hidden !== 'number' || hidden % options.heads !== 0 || cosCache.dim(1) !== hidden / options.heads / 2) {
    throw graphBuild(x.graph.pendingNodeName(op), `caches ${formatDims(cosCache.shape)} do not match ${options.heads} heads of ${formatDims(x.shape)} (expects [P, head_dim/2])`);
  }
  return x.graph.node(op, [x, positionIds, cosCache, sinCache], {
    domain: 'com.microsoft',
    outputs: [{ dtype: x.dtype, shape: x.shape }],
    attributes: { interleaved: 0, num_heads: options.heads },
  })[0]!;
}
