// Neural-network operators: LayerNormalization-17, Gelu-20, Softmax-13.

import { graphBuild } from '../../errors.js';
import { formatDims } from '../dims.js';
import type { Value } from '../graph.js';
import { expectDType, expectSameDType, FLOATS } from './check.js';

/**
 * LayerNormalization-17 over the last axis: (x − mean)/sqrt(var + eps)·γ + β, biased variance.
 * Statistics are computed in float32 whatever the input dtype (stash_type = 1).
 */
export function layerNorm(x: Value, gamma: Value, beta: Value, epsilon: number): Value {
  expectDType('LayerNormalization', x, FLOATS);
  expectSameDType('LayerNormalization', x, gamma, beta);
  const width = x.dim(-1);
  for (const p of [gamma, beta]) {
    if (p.rank !== 1 || p.dim(0) !== width) {
      throw graphBuild(x.graph.pendingNodeName('LayerNormalization'), `parameter ${p.name} ${formatDims(p.shape)} does not match the normalized width ${width}`);
    }
  }
  return x.graph.node('LayerNormalization', [x, gamma, beta], {
    outputs: [{ dtype: x.dtype, shape: x.shape }],
    attributes: { axis: -1, epsilon: { float: epsilon }, stash_type: 1 },
  })[0]!;
}

/** Gelu-20: `tanh` = 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), `none` = 0.5·x·(1 + erf(x/√2)). */
export function gelu(x: Value, approximate: 'none' | 'tanh'): Value {
  expectDType('Gelu', x, FLOATS);
  return x.graph.node('Gelu', [x], { outputs: [{ dtype: x.dtype, shape: x.shape }], attributes: { approximate } })[0]!;
}

/** Softmax-13 along `axis`. */
export function softmax(x: Value, axis = -1): Value {
  expectDType('Softmax', x, FLOATS);
  return x.graph.node('Softmax', [x], { outputs: [{ dtype: x.dtype, shape: x.shape }], attributes: { axis } })[0]!;
}

/**
 * Conv-11 without padding or dilation: x [B, C, *spatial], w [M, C, *kernel], bias [M]
 * → [B, M, *out] with out = ⌊(in − k)/stride⌋ + 1.
 */
export function conv(x: Value, w: Value, bias: Value | undefined, strides: readonly number[]): Value {
  const op = 'Conv';
  expectDType(op, x, FLOATS);
  expectSameDType(op, x, w, ...(bias ? [bias] : []));
  const spatial = x.rank - 2;
  if (w.rank !== x.rank || strides.length !== spatial || w.dim(1) !== x.dim(1)) {
    throw graphBuild(x.graph.pendingNodeName(op), `weight ${formatDims(w.shape)} and strides [${strides.join(', ')}] do not fit input ${formatDims(x.shape)}`);
  }
  const out = x.shape.slice(2).map((d, i) => {
    const k = w.dim(i + 2) as number;
    return typeof d === 'number' ? Math.floor((d - k) / strides[i]!) + 1 : `${d}_conv`;
  });
  return x.graph.node(op, [x, w, bias], {
    outputs: [{ dtype: x.dtype, shape: [x.dim(0), w.dim(0), ...out] }],
    attributes: { strides: [...strides], kernel_shape: w.shape.slice(2) as number[] },
  })[0]!;
}
