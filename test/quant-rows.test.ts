// int8 with one activation scale per row (src/onnx/row-int8.ts) and the by-role Linear scheme
// (src/onnx/linear-scheme.ts): which ops a row-int8 Linear is made of, what it stores, how its
// metadata reads back, and its numbers in ORT against an exact emulation of the per-row
// quantization (to float32 rounding) and against float64 (within quantization error).

import test from 'ava';
import { VitgraphError } from '../src/errors.js';
import { GraphBuilder, describeLinearScheme, linear, parseLinearScheme, type LayerScheme, type LinearScheme, type ParameterSource } from '../src/onnx/index.js';
import { hostTensor } from '../src/tensor.js';
import { quantizeChannels } from '../src/onnx/quantize.js';
import { runGraph } from './helpers/onnx.js';
import { normal, rng } from './helpers/random.js';

const [M, K, N] = [9, 96, 12];
const gauss = (n: number, seed: number, scale = 1): Float32Array => {
  const next = normal(rng(seed));
  return Float32Array.from({ length: n }, () => scale * next());
};
const weight = gauss(N * K, 31, 0.05);
const bias = gauss(N, 32, 0.1);
/** Rows of very different ranges, one skewed (GELU-like, ≥ −0.17) and one all zero. */
const x = (() => {
  const v = gauss(M * K, 33);
  for (let i = 0; i < M; i++) for (let j = 0; j < K; j++) v[i * K + j]! *= 0.25 * 2 ** i;
  for (let j = 0; j < K; j++) v[3 * K + j] = Math.max(v[3 * K + j]!, -0.17);
  v.fill(0, 5 * K, 6 * K);
  return v;
})();
const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const source: ParameterSource = { take: (name) => async () => bytes(name === 'fc.weight' ? weight : bias) };

function build(scheme: LinearScheme, role?: 'mlp.in'): GraphBuilder {
  const g = new GraphBuilder({ params: source });
  const input = g.input('x', 'float32', ['M', K]);
  g.output(
    g.scope('fc', () => linear(g, input, N, scheme, role ? { role } : {})),
    'y',
  );
  return g;
}

const rows = (activations: 'symmetric' | 'asymmetric', kernel: 'matmul-integer' | 'matmul-integer-to-float', passes: 1 | 2 = 1): LayerScheme => ({
  kind: 'row-int8',
  activations,
  kernel,
  ...(passes === 2 ? { passes } : {}),
});

/** What the graph computes, emulated in float64: each row quantized as QuantizeLinear does, times the int8 weight. */
function emulate(scheme: Extract<LayerScheme, { kind: 'row-int8' }>): Float64Array {
  const q = quantizeChannels(weight, N, K);
  const y = new Float64Array(M * N);
  const passes = scheme.passes ?? 1;
  for (let i = 0; i < M; i++) {
    let row = Array.from(x.subarray(i * K, (i + 1) * K));
    for (let pass = 0; pass < passes; pass++) {
      const lo = Math.min(0, ...row);
      const hi = Math.max(0, ...row);
      const symmetric = scheme.activations === 'symmetric';
      const scale = Math.max(Math.fround(symmetric ? Math.fround(Math.max(hi, -lo) * Math.fround(1 / 127)) : Math.fround((hi - lo) * Math.fround(1 / 255))), 1e-30);
      const zp = symmetric ? 128 : Math.round(Math.fround(-lo / scale));
      const codes = row.map((v) => Math.min(255, Math.max(0, Math.round(Math.fround(v / scale)) + zp)) - zp);
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let p = 0; p < K; p++) acc += codes[p]! * q.codes[p * N + j]!;
        y[i * N + j]! += acc * q.scales[j]! * scale;
      }
      row = row.map((v, p) => v - codes[p]! * scale); // the rounding error, for the second pass
    }
    for (let j = 0; j < N; j++) y[i * N + j]! += bias[j]!;
  }
  return y;
}

function float64(): Float64Array {
  const y = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let sum = bias[j]!;
      for (let p = 0; p < K; p++) sum += x[i * K + p]! * weight[j * K + p]!;
      y[i * N + j] = sum;
    }
  return y;
}

const relL2 = (got: ArrayLike<number>, want: ArrayLike<number>): number => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i]! - want[i]!) ** 2;
    den += want[i]! ** 2;
  }
  return Math.sqrt(num / den);
};

test('a row-int8 Linear is per-row min/max → QuantizeLinear(axis 0) → an integer matmul → rescale, storing int8 [K, N] and per-column scales', (t) => {
  const ops = (scheme: LayerScheme): string[] => build(scheme).nodes.map((n) => n.opType);
  const asym = build(rows('asymmetric', 'matmul-integer-to-float'));
  t.deepEqual(
    asym.initializers.filter((i) => i.kind === 'param').map((i) => [i.name, i.dtype, i.shape]),
    [
      ['fc.weight.codes', 'int8', [K, N]],
      ['fc.weight.scales', 'float32', [N]],
      ['fc.weight.column_sums', 'float32', [N]],
      ['fc.bias', 'float32', [N]],
    ],
  );
  const quantize = asym.nodes.find((n) => n.opType === 'QuantizeLinear')!;
  t.is(quantize.attributes.get('axis'), 0, 'one scale per row');
  for (const op of ['ReduceMin', 'ReduceMax', 'QuantizeLinear', 'MatMulIntegerToFloat']) t.true(ops(rows('asymmetric', 'matmul-integer-to-float')).includes(op), op);
  t.true(ops(rows('symmetric', 'matmul-integer')).includes('MatMulInteger'));
  t.false(ops(rows('symmetric', 'matmul-integer')).includes('DynamicQuantizeLinear'), 'no per-tensor quantization');
  t.false(
    build(rows('symmetric', 'matmul-integer')).initializers.some((i) => i.name.endsWith('column_sums')),
    'symmetric rows need no column sums',
  );
  const twoPass = ops(rows('asymmetric', 'matmul-integer', 2));
  t.is(twoPass.filter((o) => o === 'QuantizeLinear').length, 2);
  t.is(twoPass.filter((o) => o === 'MatMulInteger').length, 1, 'both passes share one matmul (and one prepacked weight)');
  t.true(twoPass.includes('DequantizeLinear'));
});

for (const activations of ['symmetric', 'asymmetric'] as const) {
  for (const kernel of ['matmul-integer', 'matmul-integer-to-float'] as const) {
    for (const passes of [1, 2] as const) {
      const scheme = rows(activations, kernel, passes) as Extract<LayerScheme, { kind: 'row-int8' }>;
      test(`row-int8 in ORT equals its float64 emulation and stays within quantization error of float: ${describeLinearScheme(scheme)}`, async (t) => {
        const y = (await runGraph(build(scheme), { x: hostTensor('float32', [M, K], x) })).y!.data as Float32Array;
        const exact = relL2(y, emulate(scheme));
        const error = relL2(y, float64());
        t.log(`rel L2 vs emulation ${exact.toExponential(2)}, vs float64 ${error.toExponential(2)}`);
        t.true(exact <= 1e-5, `vs emulation ${exact}`); // float32 rounding only
        t.true(error <= (passes === 2 ? 1e-2 : 2e-2), `vs float64 ${error}`); // the int8 weight alone: ~7e-3 here
        t.true(
          y.subarray(5 * N, 6 * N).every((v, j) => Math.abs(v - bias[j]!) <= 1e-6),
          'an all-zero row gives the bias',
        );
      });
    }
  }
}

test('two passes leave only the weight error: at least 5× closer to float64 than one pass', async (t) => {
  const one = (await runGraph(build(rows('asymmetric', 'matmul-integer')), { x: hostTensor('float32', [M, K], x) })).y!.data as Float32Array;
  const two = (await runGraph(build(rows('asymmetric', 'matmul-integer', 2)), { x: hostTensor('float32', [M, K], x) })).y!.data as Float32Array;
  const [e1, e2] = [relL2(one, float64()), relL2(two, float64())];
  t.log(`one pass ${e1.toExponential(2)}, two ${e2.toExponential(2)}`);
  // both include the int8 weight error, so compare against the float64 matmul of the int8 weight
  const q = quantizeChannels(weight, N, K);
  const deq = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let sum = bias[j]!;
      for (let p = 0; p < K; p++) sum += x[i * K + p]! * q.codes[p * N + j]! * q.scales[j]!;
      deq[i * N + j] = sum;
    }
  t.true(relL2(two, deq) * 5 <= relL2(one, deq), `activation error: one pass ${relL2(one, deq)}, two ${relL2(two, deq)}`);
});

test('a by-role scheme stores each Linear as its role says, sensitive paths as their own scheme, and round-trips through metadata', (t) => {
  const float: LayerScheme = { kind: 'float' };
  const int8 = rows('symmetric', 'matmul-integer-to-float');
  const byRole: LinearScheme = {
    kind: 'by-role',
    roles: {
      'attention.qkv': int8,
      'attention.out': int8,
      'mlp.in': int8,
      'mlp.out': rows('asymmetric', 'matmul-integer-to-float'),
      'merger.in': rows('asymmetric', 'matmul-integer', 2),
      'merger.out': float,
    },
    sensitive: { prefixes: ['blocks.0.', 'fc.'], scheme: float },
  };
  const text = describeLinearScheme(byRole);
  t.regex(
    text,
    /^by-role attention\.qkv=row-int8,activations=symmetric,kernel=matmul-integer-to-float .* merger\.in=row-int8,activations=asymmetric,kernel=matmul-integer,passes=2 merger\.out=float sensitive=blocks\.0\.,fc\. sensitive_scheme=float$/,
  );
  t.deepEqual(parseLinearScheme(text), byRole);
  t.deepEqual(
    build(byRole, 'mlp.in').nodes.map((n) => n.opType),
    ['Gemm', 'Identity'],
    '"fc." is listed sensitive: float',
  );
  const notSensitive: LinearScheme = { ...byRole, sensitive: { prefixes: ['blocks.0.'], scheme: float } };
  t.true(build(notSensitive, 'mlp.in').nodes.some((n) => n.opType === 'MatMulIntegerToFloat'));
  t.throws(() => build(notSensitive), { instanceOf: VitgraphError, message: /role/ }, 'a by-role scheme needs the role');
  t.throws(() => parseLinearScheme(text.replace(/ merger\.out=float/, '')), { instanceOf: VitgraphError, message: /vitgraph\.linear_scheme/ });
  t.throws(() => parseLinearScheme('row-int8 activations=symmetric kernel=matmul-integer passes=3'), { instanceOf: VitgraphError });
  t.throws(() => parseLinearScheme('row-int8 activations=per-tensor kernel=matmul-integer'), { instanceOf: VitgraphError });
});
