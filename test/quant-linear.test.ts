// The Linear switch point (src/onnx/linear.ts): float Gemm or MatMulNBits from one call, the
// quantized initializers derived lazily from the checkpoint weight (loaded once per write,
// strictly bound), and the scheme's metadata string round-tripping.

import test from 'ava';
import { VitgraphError } from '../src/errors.js';
import { GraphBuilder, describeLinearScheme, linear, modelToBytes, parseLinearScheme, type LinearScheme, type ParameterSource } from '../src/onnx/index.js';
import { hostTensor, type DataType } from '../src/tensor.js';
import { f16ToF32, f32ToF16 } from '../src/dtype.js';
import { dequantizeBlocks, quantizeBlocks, quantizeChannels } from '../src/onnx/quantize.js';
import { runGraph } from './helpers/onnx.js';
import { normal, rng } from './helpers/random.js';

const randomArray = (n: number, seed: number, scale = 1): Float32Array => {
  const gauss = normal(rng(seed));
  return Float32Array.from({ length: n }, () => scale * gauss());
};
const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const [M, K, N] = [6, 64, 10];
const weight = randomArray(N * K, 1, 0.05);
const bias = randomArray(N, 2);
const x = randomArray(M * K, 3);

/** A lazy source over fc.weight / fc.bias that counts loads and records claimed names. */
function countingSource(dtype: DataType = 'float32'): ParameterSource & { loads: Map<string, number>; claimed: string[] } {
  const values: Record<string, Float32Array> = { 'fc.weight': weight, 'fc.bias': bias };
  const loads = new Map<string, number>();
  const claimed: string[] = [];
  return {
    loads,
    claimed,
    take: (name) => {
      const v = values[name];
      if (!v) throw new Error(`unexpected parameter ${name}`);
      claimed.push(name);
      return async () => {
        loads.set(name, (loads.get(name) ?? 0) + 1);
        return dtype === 'float16' ? bytes(f32ToF16(v)) : bytes(v);
      };
    },
  };
}

function build(scheme: LinearScheme, source: ParameterSource, paramDType: 'float32' | 'float16' = 'float32'): GraphBuilder {
  const g = new GraphBuilder({ params: source, paramDType });
  const input = g.input('x', paramDType, ['M', K]);
  g.output(
    g.scope('fc', () => linear(g, input, N, scheme)),
    'y',
  );
  return g;
}

const NBITS8: LinearScheme = { kind: 'nbits', bits: 8, blockSize: 32, symmetric: true, accuracyLevel: 0 };
const NBITS4_ZP: LinearScheme = { kind: 'nbits', bits: 4, blockSize: 16, symmetric: false, accuracyLevel: 0 };

test('the float scheme is the Gemm the towers used: weight then bias, named by checkpoint key', (t) => {
  const source = countingSource();
  const g = build({ kind: 'float' }, source);
  t.deepEqual(
    g.nodes.map((n) => n.opType),
    ['Gemm', 'Identity'],
  );
  t.deepEqual(
    g.initializers.map((i) => i.name),
    ['fc.weight', 'fc.bias'],
  );
  t.deepEqual(source.claimed, ['fc.weight', 'fc.bias']);
});

test('an nbits Linear names its initializers after the weight and loads nothing while building', (t) => {
  const source = countingSource();
  const g = build(NBITS4_ZP, source);
  t.deepEqual(
    g.nodes.map((n) => `${n.domain}:${n.opType}`),
    ['com.microsoft:MatMulNBits', ':Identity'],
  );
  t.deepEqual(
    g.initializers.map((i) => [i.name, i.dtype, i.shape]),
    [
      ['fc.weight.codes', 'uint8', [N, 4, 8]],
      ['fc.weight.scales', 'float32', [N * 4]],
      ['fc.weight.zero_points', 'uint8', [N * 2]],
      ['fc.bias', 'float32', [N]],
    ],
  );
  t.true(g.initializers.every((i) => i.kind === 'param'));
  t.deepEqual(source.claimed, ['fc.weight', 'fc.bias'], 'the checkpoint weight is claimed once (strict binding sees it used)');
  t.is(source.loads.size, 0);
});

/** The weight [N, K] a scheme's kernel multiplies by (what the float64 reference uses). */
function dequantized(scheme: LinearScheme): Float32Array {
  if (scheme.kind === 'nbits') return dequantizeBlocks(quantizeBlocks(weight, N, K, scheme));
  if (scheme.kind === 'float') return weight;
  const q = quantizeChannels(weight, N, K);
  return Float32Array.from({ length: N * K }, (_, i) => q.codes[(i % K) * N + Math.floor(i / K)]! * q.scales[Math.floor(i / K)]!);
}

for (const [label, scheme, tolerance] of [
  ['8-bit symmetric', NBITS8, 1e-5],
  ['4-bit with zero points', NBITS4_ZP, 1e-5],
  ['dynamic int8 per channel', { kind: 'dynamic-int8' }, 1e-2], // activations are quantized to uint8 at run time
] as const) {
  test(`a quantized Linear runs in ORT and equals the dequantized weights' matmul: ${label}`, async (t) => {
    const source = countingSource();
    const g = build(scheme, source);
    const y = (await runGraph(g, { x: hostTensor('float32', [M, K], x) })).y!.data as Float32Array;
    t.is(source.loads.get('fc.weight'), 1, 'one load of the weight serves every derived part');
    const deq = dequantized(scheme);
    let num = 0;
    let den = 0;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let want = bias[j]!;
        for (let p = 0; p < K; p++) want += x[i * K + p]! * deq[j * K + p]!;
        num += (y[i * N + j]! - want) ** 2;
        den += want ** 2;
      }
    }
    const rel = Math.sqrt(num / den);
    t.log(`rel L2 vs float64 on the dequantized weights: ${rel.toExponential(2)} (tolerance ${tolerance})`);
    t.true(rel <= tolerance, `rel L2 ${rel} > ${tolerance}`);
  });
}

test('writing the model twice recomputes the derived parts (one load per write)', async (t) => {
  const source = countingSource();
  const g = build(NBITS8, source);
  const first = await modelToBytes(g, { opset: 21 });
  const second = await modelToBytes(g, { opset: 21 });
  t.deepEqual(first, second);
  t.is(source.loads.get('fc.weight'), 2);
});

test('a float16 graph quantizes the widened float16 weights and stores float16 scales', async (t) => {
  const g = build(NBITS8, countingSource('float16'), 'float16');
  const spec = g.initializers.find((i) => i.name === 'fc.weight.scales')!;
  t.is(spec.dtype, 'float16');
  const raw = typeof spec.data === 'function' ? await spec.data() : spec.data;
  const got = f16ToF32(new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
  const want = quantizeBlocks(f16ToF32(f32ToF16(weight)), N, K, { bits: 8, blockSize: 32, symmetric: true }).scales;
  for (let i = 0; i < got.length; i++) t.true(Math.abs(got[i]! - want[i]!) <= Math.abs(want[i]!) * 1e-3, `scale ${i}: ${got[i]} vs ${want[i]}`);
});

test('the scheme round-trips through its metadata string and bad strings are rejected', (t) => {
  for (const scheme of [{ kind: 'float' } as const, { kind: 'dynamic-int8' } as const, NBITS8, NBITS4_ZP]) t.deepEqual(parseLinearScheme(describeLinearScheme(scheme)), scheme);
  t.is(describeLinearScheme(NBITS8), 'nbits bits=8 block_size=32 symmetric=1 accuracy_level=0');
  t.deepEqual(parseLinearScheme(undefined), { kind: 'float' });
  t.throws(() => parseLinearScheme('nbits bits=3 block_size=32 symmetric=1 accuracy_level=4'), { instanceOf: VitgraphError, message: /vitgraph\.linear_scheme/ });
  t.throws(() => parseLinearScheme('int8'), { instanceOf: VitgraphError });
});
