// Which ONNX Runtime CPU quantized matmul is fastest for the 2B tower's Linear layers?
// One single-op model per kernel and shape, built with vitgraph's builder, all timed in this
// process with 2 intra-op threads. Rounds interleave the kernels (one run of each per round),
// so load from other processes hits every kernel alike; ratios to fp32 Gemm are what count.
// Writes bench/quant-kernels.md.
//
//   node dist/bench/quant-kernels.js [--runs N] [--rows 784,4096] [--kernels <label part>,…]

import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { GraphBuilder, modelToBytes, op, type Value } from '../src/onnx/index.js';
import { uniformFloats } from '../src/random.js';
import { rowInt8MatMul, weightColumnSums, type RowActivations, type RowKernel } from '../src/onnx/row-int8.js';
import { quantizeBlocks, quantizeChannels, type BlockQuantScheme } from '../src/onnx/quantize.js';
import { agreement } from './agreement.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(flag('--runs') ?? 5);
const rowCounts = (flag('--rows') ?? '784,4096').split(',').map(Number);
/** `--kernels a,b`: only the kernels whose label contains one of these (fp32 Gemm always runs). */
const kernelFilter = flag('--kernels')?.split(',');
const threads = 2;
const OPSET = 21;

/** The 2B tower's Linear layers as [K → N] (Qwen3-VL-2B vision: hidden 1024, MLP 4096). */
const LAYERS = [
  { name: 'qkv', k: 1024, n: 3072 },
  { name: 'proj', k: 1024, n: 1024 },
  { name: 'fc1', k: 1024, n: 4096 },
  { name: 'fc2', k: 4096, n: 1024 },
] as const;

interface Kernel {
  label: string;
  /** Builds y = x @ wᵀ + bias from x [M, K]; w is float32 [N, K]. */
  build(g: GraphBuilder, x: Value, w: Float32Array, bias: Float32Array, n: number, k: number): Value;
}

const f32Bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const fp32Gemm: Kernel = {
  label: 'fp32 Gemm (transB)',
  build: (g, x, w, bias, n, k) => op.gemmTransB(x, g.initializer('w', 'float32', [n, k], f32Bytes(w)), g.initializer('b', 'float32', [n], f32Bytes(bias))),
};

function nbits(scheme: BlockQuantScheme, accuracyLevel: 0 | 4): Kernel {
  return {
    label: `MatMulNBits ${scheme.bits}-bit, block ${scheme.blockSize}, acc ${accuracyLevel}${scheme.symmetric ? '' : ', zero points'}`,
    build: (g, x, w, bias, n, k) => {
      const q = quantizeBlocks(w, n, k, scheme);
      const codes = g.initializer('w.codes', 'uint8', [n, q.blocks, (scheme.blockSize * scheme.bits) / 8], q.codes);
      const scales = g.initializer('w.scales', 'float32', [n * q.blocks], f32Bytes(q.scales));
      const zeroPoints = q.zeroPoints && g.initializer('w.zero_points', 'uint8', [q.zeroPoints.length], q.zeroPoints);
      return op.matMulNBits(x, codes, scales, {
        bits: scheme.bits,
        blockSize: scheme.blockSize,
        accuracyLevel,
        bias: g.initializer('b', 'float32', [n], f32Bytes(bias)),
        ...(zeroPoints ? { zeroPoints } : {}),
      });
    },
  };
}

const dynamicQuantizeMatMul: Kernel = {
  label: 'DynamicQuantizeMatMul (int8 per channel)',
  build: (g, x, w, bias, n, k) => {
    const q = quantizeChannels(w, n, k);
    return op.dynamicQuantizeMatMul(x, g.initializer('w.codes', 'int8', [k, n], bytesOf(q.codes)), g.initializer('w.scales', 'float32', [n], f32Bytes(q.scales)), {
      bias: g.initializer('b', 'float32', [n], f32Bytes(bias)),
    });
  },
};

const matMulInteger: Kernel = {
  label: 'DynamicQuantizeLinear + MatMulInteger (int8 per channel)',
  build: (g, x, w, bias, n, k) => {
    const q = quantizeChannels(w, n, k);
    const a = op.dynamicQuantizeLinear(x);
    const product = op.matMulInteger(a.y, g.initializer('w.codes', 'int8', [k, n], bytesOf(q.codes)), { a: a.zeroPoint }); // [M, N] int32
    const scale = op.mul(a.scale, g.initializer('w.scales', 'float32', [n], f32Bytes(q.scales))); // [N]
    return op.add(op.mul(op.cast(product, 'float32'), scale), g.initializer('b', 'float32', [n], f32Bytes(bias)));
  },
};

/** Per-row (per-token) activation scales around an ORT integer matmul (src/onnx/row-int8.ts). */
function rowInt8(activations: RowActivations, kernel: RowKernel, passes: 1 | 2 = 1): Kernel {
  return {
    label: `per-row ${activations} uint8 + ${kernel === 'matmul-integer' ? 'MatMulInteger' : 'MatMulIntegerToFloat'} (int8 per channel)${passes === 2 ? ', two passes' : ''}`,
    build: (g, x, w, bias, n, k) => {
      const q = quantizeChannels(w, n, k);
      const columnSums = activations === 'asymmetric' ? g.initializer('w.column_sums', 'float32', [n], f32Bytes(weightColumnSums(q))) : undefined;
      const weight = {
        codes: g.initializer('w.codes', 'int8', [k, n], bytesOf(q.codes)),
        scales: g.initializer('w.scales', 'float32', [n], f32Bytes(q.scales)),
        columnSums,
        bias: g.initializer('b', 'float32', [n], f32Bytes(bias)),
      };
      return rowInt8MatMul(x, weight, { activations, kernel, passes });
    },
  };
}

const KERNELS: Kernel[] = [
  fp32Gemm,
  ...([8, 4] as const).flatMap((bits) => [32, 64, 128].flatMap((blockSize) => ([4, 0] as const).map((acc) => nbits({ bits, blockSize, symmetric: true }, acc)))),
  nbits({ bits: 8, blockSize: 32, symmetric: false }, 4),
  nbits({ bits: 4, blockSize: 32, symmetric: false }, 4),
  dynamicQuantizeMatMul,
  matMulInteger,
  ...(['symmetric', 'asymmetric'] as const).flatMap((a) => (['matmul-integer', 'matmul-integer-to-float'] as const).map((k) => rowInt8(a, k))),
  rowInt8('asymmetric', 'matmul-integer-to-float', 2),
].filter((kernel, i) => i === 0 || !kernelFilter || kernelFilter.some((f) => kernel.label.includes(f)));

interface Cell {
  median_ms: number;
  /** ‖y − y_fp32‖ / ‖y_fp32‖ against the fp32 Gemm on the same input. */
  rel_l2: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** ‖got − want‖ / ‖want‖ over all values. */
const relL2 = (got: Float32Array, want: Float32Array): number => agreement(got, want, want.length).rel_l2;

/**
 * What the tower feeds each layer, roughly: normed rows (≈ N(0, 1) with a per-row gain between 0.5
 * and 2) into qkv, proj and fc1, and GELU of such rows into fc2 (skewed: ≥ −0.17).
 */
function layerInput(layer: string, m: number, k: number, seed: number): Float32Array {
  const [u1, u2, u3, gains] = [uniformFloats(m * k, seed), uniformFloats(m * k, seed + 1), uniformFloats(m * k, seed + 2), uniformFloats(m, seed + 3, -1, 1)];
  const x = new Float32Array(m * k);
  for (let i = 0; i < x.length; i++) {
    const z = (u1[i]! + u2[i]! + u3[i]!) * 2 ** gains[Math.floor(i / k)]!; // sum of three U(−1, 1): variance 1
    x[i] = layer === 'fc2' ? 0.5 * z * (1 + Math.tanh(0.7978845608 * (z + 0.044715 * z ** 3))) : z;
  }
  return x;
}

async function measureShape(m: number, layer: (typeof LAYERS)[number], seed: number): Promise<Cell[]> {
  const { k, n } = layer;
  const w = uniformFloats(n * k, seed, -0.05, 0.05);
  const bias = uniformFloats(n, seed + 1, -0.1, 0.1);
  const x = new ort.Tensor('float32', layerInput(layer.name, m, k, seed + 2), [m, k]);
  const sessions: ort.InferenceSession[] = [];
  for (const kernel of KERNELS) {
    const g = new GraphBuilder();
    g.output(kernel.build(g, g.input('x', 'float32', [m, k]), w, bias, n, k), 'y');
    const bytes = await modelToBytes(g, { opset: OPSET });
    sessions.push(await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' }));
  }
  const outputs: Float32Array[] = [];
  for (const s of sessions) outputs.push((await s.run({ x })).y!.data as Float32Array); // warm-up, prepacking
  const times: number[][] = sessions.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (const [i, s] of sessions.entries()) {
      const start = performance.now();
      await s.run({ x });
      times[i]!.push(performance.now() - start);
    }
  }
  await Promise.all(sessions.map((s) => s.release()));
  return times.map((t, i) => ({ median_ms: median(t), rel_l2: relL2(outputs[i]!, outputs[0]!) }));
}

async function cpuFlags(): Promise<string> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const flags = new Set(info.match(/^flags\s*:.*$/m)?.[0].split(/\s+/) ?? []);
  const wanted = ['avx2', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8'];
  return wanted.filter((f) => flags.has(f)).join(', ') || 'unknown';
}

async function main(): Promise<void> {
  const started = performance.now();
  const results = new Map<string, Cell[]>(); // `${m}|${layer}` → per kernel
  for (const m of rowCounts) {
    for (const [i, layer] of LAYERS.entries()) {
      process.stderr.write(`M = ${m}, ${layer.name} [${layer.k} → ${layer.n}] …\n`);
      results.set(`${m}|${layer.name}`, await measureShape(m, layer, 100 + i));
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = (await readFile('/proc/cpuinfo', 'utf8').catch(() => '')).match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown';
  const lines: string[] = [
    '# Quantized matmul kernels on this CPU (ONNX Runtime CPU EP)',
    '',
    `Generated by \`node dist/bench/quant-kernels.js\` (${new Date().toISOString().slice(0, 10)}, onnxruntime-node ${ort.env.versions.common}, ${threads} intra-op threads, median of ${runs} interleaved rounds, ${seconds.toFixed(0)} s in all).`,
    `CPU: ${cpu}; flags: ${await cpuFlags()}. The machine is shared with other processes, so absolute times drift; the ratios within one round are what count.`,
    "ISA: ORT's MLAS picks its u8s8 GEMM by CPU flags at run time: with avx512_vnni present (above) the integer kernels here (DynamicQuantizeMatMul, MatMulInteger, MatMulIntegerToFloat, MatMulNBits at accuracy_level 4) run its AVX-512 VNNI code (vpdpbusd); without VNNI, AVX2 (vpmaddubsw, whose int16 sums can saturate with u8·s8 codes near full scale). No AVX2-only machine was available to measure.",
    '',
    "The per-row kernels (src/onnx/row-int8.ts) quantize each row of x at run time (ReduceMin/ReduceMax → QuantizeLinear axis 0), multiply with the int8 weight, and apply row scale × column scale after (symmetric: codes around 128, one zero point; asymmetric: a zero point per row, corrected with the weight's column sums; two passes: the rows' rounding error quantized and multiplied again in the same batched product).",
    '',
    'Each cell: median ms, and speed-up over fp32 Gemm (the float32 graph\'s Linear) on the same shape. The weights are uniform random in ±0.05; the input of qkv, proj and fc1 is normed-like (≈ N(0, 1) rows, each with a gain in [0.5, 2]), fc2\'s is GELU of such rows (skewed, ≥ −0.17), as in the tower. "rel L2" is ‖y − y_fp32‖/‖y_fp32‖ (error of the quantization, on random weights) for fc1 (a normed input) and fc2 (a GELU input).',
    '',
  ];
  for (const m of rowCounts) {
    lines.push(`## M = ${m} rows (${m === 784 ? '448²' : m === 4096 ? '1024²' : `${m} patches`})`, '');
    lines.push(`| kernel | ${LAYERS.map((l) => `${l.name} [${l.k}→${l.n}]`).join(' | ')} | sum ms | × fp32 | rel L2 fc1 | rel L2 fc2 |`);
    lines.push(`|---|${LAYERS.map(() => '---:').join('|')}|---:|---:|---:|---:|`);
    const cells = LAYERS.map((l) => results.get(`${m}|${l.name}`)!);
    const baseline = cells.reduce((sum, c) => sum + c[0]!.median_ms, 0);
    for (const [i, kernel] of KERNELS.entries()) {
      const row = cells.map((c) => c[i]!);
      const sum = row.reduce((a, c) => a + c.median_ms, 0);
      const speed = row.map((c, j) => `${c.median_ms.toFixed(1)} (${(cells[j]![0]!.median_ms / c.median_ms).toFixed(2)}×)`);
      lines.push(
        `| ${kernel.label} | ${speed.join(' | ')} | ${sum.toFixed(1)} | **${(baseline / sum).toFixed(2)}×** | ${row.at(-2)!.rel_l2.toExponential(1)} | ${row.at(-1)!.rel_l2.toExponential(1)} |`,
      );
    }
    lines.push('');
  }
  const out = fileURLToPath(new URL('../../bench/quant-kernels.md', import.meta.url));
  await writeFile(out, `${lines.join('\n')}\n`);
  process.stderr.write(`wrote ${out}\n`);
}

await main();
