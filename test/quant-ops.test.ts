// Quantized matmuls: the weight quantizer (src/onnx/quantize.ts) and the builder ops
// (src/onnx/ops/quant.ts) checked against onnxruntime-node. ORT's MatMulNBits with fp32 compute
// (accuracy_level 0) must equal a float64 matmul of the dequantized weights, which proves the
// code packing, scale layout and zero-point packing the quantizer writes.

import test, { type ExecutionContext } from 'ava';
import { VitgraphError } from '../src/errors.js';
import { GraphBuilder, op, type Value } from '../src/onnx/index.js';
import { hostTensor } from '../src/tensor.js';
import { dequantizeBlocks, quantizeBlocks, quantizeChannels, type BlockQuantScheme } from '../src/onnx/quantize.js';
import { normal, rng } from './helpers/random.js';
import { runGraph } from './helpers/onnx.js';
import { agreement } from '../bench/agreement.js';

const randomArray = (n: number, seed: number, scale = 1): Float32Array => {
  const gauss = normal(rng(seed));
  return Float32Array.from({ length: n }, () => scale * gauss());
};
const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** y = x @ wᵀ + bias in float64, x [M, K], w [N, K]. */
function linear64(x: Float32Array, w: Float32Array, bias: Float32Array, m: number, k: number, n: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias[j]!;
      for (let p = 0; p < k; p++) sum += x[i * k + p]! * w[j * k + p]!;
      y[i * n + j] = sum;
    }
  }
  return y;
}

/** ‖got − want‖ / ‖want‖ over all values. */
const relL2 = (got: ArrayLike<number>, want: ArrayLike<number>): number => agreement(got, want, want.length).rel_l2;

const SCHEMES: BlockQuantScheme[] = [
  { bits: 8, blockSize: 32, symmetric: true },
  { bits: 8, blockSize: 16, symmetric: false },
  { bits: 4, blockSize: 32, symmetric: true },
  { bits: 4, blockSize: 64, symmetric: false },
];
const label = (s: BlockQuantScheme): string => `${s.bits}-bit block ${s.blockSize} ${s.symmetric ? 'symmetric' : 'asymmetric'}`;

// ---- the quantizer --------------------------------------------------------------------------------

test('dequantized weights lie within half a quantization step of the originals', (t) => {
  const n = 24;
  const k = 80; // not a multiple of 32 or 64: the last block is partial
  const w = randomArray(n * k, 1, 0.05);
  w[5] = 0.4; // an outlier in one block
  w.fill(0, 2 * k, 3 * k); // an all-zero row
  for (const scheme of SCHEMES) {
    const q = quantizeBlocks(w, n, k, scheme);
    const back = dequantizeBlocks(q);
    let worst = 0; // max |Δ| / step over all weights
    for (let row = 0; row < n; row++) {
      for (let i = 0; i < k; i++) {
        const step = Math.abs(q.scales[row * q.blocks + Math.floor(i / scheme.blockSize)]!);
        const delta = Math.abs(back[row * k + i]! - w[row * k + i]!);
        worst = Math.max(worst, step === 0 ? (delta === 0 ? 0 : Infinity) : delta / step);
      }
    }
    t.log(`${label(scheme)}: max |Δ| = ${worst.toFixed(4)} step`);
    t.true(worst <= 0.5 + 1e-5, `${label(scheme)}: max |Δ| is ${worst} steps`);
    t.is(q.zeroPoints === undefined, scheme.symmetric, 'zero points only when asymmetric');
  }
});

test('4-bit codes pack two per byte, low nibble first; symmetric codes centre on 8', (t) => {
  // One row, one block of 16. w = i − 8 (largest magnitude −8) quantizes with scale 1, and
  // w = 8 − i (largest magnitude +8) with scale −1: both to codes i = 0 … 15.
  const packed = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => (2 * j) | ((2 * j + 1) << 4));
  for (const [sign, scale] of [
    [1, 1],
    [-1, -1],
  ] as const) {
    const w = Float32Array.from({ length: 16 }, (_, i) => sign * (i - 8));
    const q = quantizeBlocks(w, 1, 16, { bits: 4, blockSize: 16, symmetric: true });
    t.is(q.scales[0], scale);
    t.deepEqual([...q.codes], packed);
  }
  // Asymmetric 4-bit zero points pack the same way: row of 3 blocks → 2 bytes.
  const w = Float32Array.from({ length: 48 }, (_, i) => (i < 16 ? i : i < 32 ? i - 40 : 1));
  const q = quantizeBlocks(w, 1, 48, { bits: 4, blockSize: 16, symmetric: false });
  t.deepEqual([...(q.zeroPoints ?? [])], [0 | (15 << 4), 0], 'block 0 (≥ 0): zp 0; block 1 (≤ 0): zp 15; block 2: zp 0');
});

test('per-channel int8 keeps each column within half a step and transposes to [K, N]', (t) => {
  const n = 6;
  const k = 10;
  const w = randomArray(n * k, 2);
  const q = quantizeChannels(w, n, k);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) {
      const delta = Math.abs(q.codes[i * n + row]! * q.scales[row]! - w[row * k + i]!);
      t.true(delta <= q.scales[row]! / 2 + 1e-7, `w[${row}, ${i}] off by ${delta}`);
    }
  }
});

test('the quantizer rejects bad block sizes, bit widths and weight sizes', (t) => {
  const w = new Float32Array(64);
  t.throws(() => quantizeBlocks(w, 2, 32, { bits: 4, blockSize: 24, symmetric: true }), { instanceOf: VitgraphError, message: /block size.*power of two ≥ 16.*24/ });
  t.throws(() => quantizeBlocks(w, 2, 32, { bits: 2 as 4, blockSize: 32, symmetric: true }), { instanceOf: VitgraphError, message: /bits.*4 or 8/ });
  t.throws(() => quantizeBlocks(w, 3, 32, { bits: 8, blockSize: 32, symmetric: true }), { instanceOf: VitgraphError, message: /3·32 float32 values/ });
});

// ---- ORT runs ---------------------------------------------------------------------------------------

/** Runs MatMulNBits on x [M, K] with w quantized by `scheme`; returns ORT's y and the float64 reference on the dequantized weights. */
async function runNBits(scheme: BlockQuantScheme, accuracyLevel: 0 | 4, m: number, k: number, n: number): Promise<{ got: Float32Array; want: Float64Array; exact: Float64Array }> {
  const w = randomArray(n * k, 10 + k, 0.05);
  const bias = randomArray(n, 11);
  const x = randomArray(m * k, 12);
  const q = quantizeBlocks(w, n, k, scheme);
  const g = new GraphBuilder();
  const codes = g.initializer('w.codes', 'uint8', [n, q.blocks, (scheme.blockSize * scheme.bits) / 8], q.codes);
  const scales = g.initializer('w.scales', 'float32', [n * q.blocks], bytes(q.scales));
  const zeroPoints = q.zeroPoints && g.initializer('w.zero_points', 'uint8', [q.zeroPoints.length], q.zeroPoints);
  const y = op.matMulNBits(g.input('x', 'float32', ['M', k]), codes, scales, {
    bits: scheme.bits,
    blockSize: scheme.blockSize,
    accuracyLevel,
    bias: g.initializer('b', 'float32', [n], bytes(bias)),
    ...(zeroPoints ? { zeroPoints } : {}),
  });
  g.output(y, 'y');
  const out = await runGraph(g, { x: hostTensor('float32', [m, k], x) });
  return { got: out.y!.data as Float32Array, want: linear64(x, dequantizeBlocks(q), bias, m, k, n), exact: linear64(x, w, bias, m, k, n) };
}

async function checkNBits(t: ExecutionContext, scheme: BlockQuantScheme, k: number): Promise<void> {
  const { got, want, exact } = await runNBits(scheme, 0, 5, k, 12);
  const err = relL2(got, want);
  t.log(`${label(scheme)}, K = ${k}: rel L2 vs dequantized float64 ${err.toExponential(2)}; quantization error vs float weights ${relL2(got, exact).toExponential(2)}`);
  t.true(err <= 1e-5, `${label(scheme)}: rel L2 ${err}`);
}

for (const scheme of SCHEMES) {
  test(`MatMulNBits (fp32 compute) equals a float64 matmul of the dequantized weights: ${label(scheme)}`, async (t) => {
    await checkNBits(t, scheme, 128);
  });
}

test('MatMulNBits handles K that is not a multiple of the block size (zero-padded last block)', async (t) => {
  await checkNBits(t, { bits: 4, blockSize: 32, symmetric: false }, 80);
  await checkNBits(t, { bits: 8, blockSize: 32, symmetric: true }, 80);
});

test('MatMulNBits with int8 compute (accuracy_level 4) stays within activation-quantization error', async (t) => {
  for (const scheme of [SCHEMES[0]!, SCHEMES[2]!]) {
    const { got, want } = await runNBits(scheme, 4, 16, 256, 32);
    const err = relL2(got, want);
    t.log(`${label(scheme)}, accuracy_level 4: rel L2 vs dequantized float64 ${err.toExponential(2)}`);
    t.true(err <= 2e-2, `${label(scheme)}: rel L2 ${err}`); // int8 activations per block: ~1/256 per element
  }
});

test('DynamicQuantizeMatMul and MatMulInteger match the dequantized float64 matmul within activation-quantization error', async (t) => {
  const [m, k, n] = [7, 64, 9];
  const w = randomArray(n * k, 20, 0.05);
  const bias = randomArray(n, 21);
  const x = randomArray(m * k, 22);
  const q = quantizeChannels(w, n, k);
  const deq = new Float32Array(n * k);
  for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) deq[j * k + i] = q.codes[i * n + j]! * q.scales[j]!;
  const want = linear64(x, deq, bias, m, k, n);

  const g = new GraphBuilder();
  const input = g.input('x', 'float32', [m, k]);
  const codes = g.initializer('w.codes', 'int8', [k, n], bytes(q.codes));
  const scales = g.initializer('w.scales', 'float32', [n], bytes(q.scales));
  const b = g.initializer('b', 'float32', [n], bytes(bias));
  g.output(op.dynamicQuantizeMatMul(input, codes, scales, { bias: b }), 'fused');
  const a = op.dynamicQuantizeLinear(input);
  const product: Value = op.matMulInteger(a.y, codes, { a: a.zeroPoint });
  g.output(op.add(op.mul(op.cast(product, 'float32'), op.mul(a.scale, scales)), b), 'unfused');
  const out = await runGraph(g, { x: hostTensor('float32', [m, k], x) });
  for (const name of ['fused', 'unfused']) {
    const err = relL2(out[name]!.data as Float32Array, want);
    t.log(`${name}: rel L2 ${err.toExponential(2)}`);
    t.true(err <= 1e-2, `${name}: rel L2 ${err}`);
  }
});

// ---- build-time checks ------------------------------------------------------------------------------

test('quantized ops infer shapes and reject mis-shaped weights at build time', (t) => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [2, 'S', 64]);
  const codes = g.input('codes', 'uint8', [16, 2, 32]);
  const scales = g.input('scales', 'float32', [32]);
  const y = op.matMulNBits(x, codes, scales, { bits: 8, blockSize: 32 });
  t.deepEqual([y.dtype, y.shape], ['float32', [2, 'S', 16]]);
  t.deepEqual(g.nodes.at(-1)?.attributes.get('K'), 64);
  t.is(g.nodes.at(-1)?.domain, 'com.microsoft');
  const fail = (build: () => unknown, problem: RegExp): void => {
    const error = t.throws(build, { instanceOf: VitgraphError });
    t.is(error?.code, 'graph_build');
    t.regex(error?.message ?? '', problem);
  };
  fail(() => op.matMulNBits(x, codes, scales, { bits: 4, blockSize: 32 }), /b \[16, 2, 32\] does not hold K = 64 in 4-bit blocks of 32 \(expects \[16, 2, 16\]\)/);
  fail(() => op.matMulNBits(x, codes, g.input('s2', 'float32', [16]), { bits: 8, blockSize: 32 }), /expected \[N·blocks\] = \[32\], got \[16\]/);
  fail(() => op.matMulNBits(x, codes, scales, { bits: 8, blockSize: 48 }), /power of two ≥ 16, got 48/);
  fail(() => op.matMulNBits(x, g.input('c8', 'int8', [16, 2, 32]), scales, { bits: 8, blockSize: 32 }), /expected dtype uint8, got int8/);
  const w = g.input('w', 'int8', [64, 10]);
  t.deepEqual(op.dynamicQuantizeMatMul(x, w, g.input('ws', 'float32', [10])).shape, [2, 'S', 10]);
  fail(() => op.dynamicQuantizeMatMul(x, g.input('wt', 'int8', [10, 64]), g.input('ws2', 'float32', [10])), /expects \[K, N\] with K = 64/);
  fail(() => op.dynamicQuantizeMatMul(x, w, g.input('ws3', 'float32', [3])), /b_scale \[3\] must be \[1 or N = 10\]/);
});
