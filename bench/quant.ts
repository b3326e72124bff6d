// `npm run bench:quant`: float32 vs int8 vs int4 graphs of the 2B-shaped Qwen3-VL tower (random
// weights) on CPU at 448² and 1024², each case in its own process, beside llama.cpp's mmproj
// encoder (F32, F16, BF16, Q8_0) timed on the same machine and the same pixels by a llama.cpp
// anchor script that VITGRAPH_LLAMA_ANCHOR names (it builds llama.cpp, converts the checkpoint and
// times it; not part of this repository: without it the llama.cpp rows are left out, as with
// --no-llama). Writes bench/quant-results.md and .json.
//
//   node dist/bench/quant.js [--threads N] [--runs N] [--rounds N] [--sizes 448,1024] [--no-llama]
//
// Accuracy of every quantized output (image_embeds and each deepstack merger) is measured against
// the float32 graph on the same pixels: relative L2, max |Δ| and the smallest per-token cosine.

import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { exportModel, synthCheckpoint } from '../index.js';
import { PRECISION, type Precision } from '../src/contract.js';
import { describeLinearScheme, LINEAR_SCHEME_KEY } from '../src/onnx/linear-scheme.js';
import { readSafetensors } from '../src/weights/index.js';
import { outputAgreement } from './agreement.js';
import { agreement, exists, flagged, log, measure, option, root, run, work } from './common.js';
import { inputsFor } from './inputs.js';
import type { SessionResult } from './session-worker.js';

const threads = Number(option('--threads', '2'));
const runs = Number(option('--runs', '3'));
const rounds = Number(option('--rounds', '2'));
const sizes = option('--sizes', '448,1024').split(',').map(Number);
const ANCHOR = process.env.VITGRAPH_LLAMA_ANCHOR;
const withLlama = !flagged('--no-llama') && ANCHOR !== undefined;
if (!flagged('--no-llama') && ANCHOR === undefined) console.error('VITGRAPH_LLAMA_ANCHOR is not set: no llama.cpp rows');
const DTYPES: readonly Precision[] = ['float32', 'int8', 'int4'];

interface Case {
  side: string;
  dtype: string;
  median_ms: number;
  min_ms: number;
  load_ms: number;
  peak_rss_gb: number;
  rss_after_load_gb: number;
}

/** Where int8's memory goes at one size: RSS before load, after load, at peak; with and without ORT's prepacked weight copies. */
interface MemoryRow {
  size: number;
  dtype: string;
  prepack: boolean;
  weights_file_gb: number;
  before_load_gb: number;
  after_load_gb: number;
  peak_gb: number;
  median_ms: number;
}

interface Accuracy {
  size: number;
  dtype: string;
  output: string;
  rel_l2: number;
  max_abs: number;
  min_cosine: number;
}

interface LlamaRow {
  type: string;
  size: number;
  median_ms: number;
  best_ms: number;
  peak_rss_mb: number;
  accuracy?: { rel_l2: number; min_cosine: number };
}

async function prepareModels(): Promise<void> {
  const ckpt = join(work, 'ckpt-2b');
  if (!(await exists(join(ckpt, 'model.safetensors')))) {
    log('synthesizing the 2B-shaped checkpoint …');
    await synthCheckpoint(ckpt, '2b', { overwrite: true });
  }
  for (const dtype of DTYPES) {
    const out = join(work, `2b-${dtype}`);
    if (await exists(join(out, 'vitgraph.json'))) continue;
    log(`exporting the dynamic graph in ${dtype} …`);
    await exportModel({ model: ckpt, out, dtype, maxPatches: [], overwrite: true });
  }
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Every dtype at one size, interleaved over `rounds` processes each. */
async function timeSize(size: number, inputs: string): Promise<Case[]> {
  const results = new Map<string, SessionResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const dtype of DTYPES) {
      log(`  ${size}² ${dtype} (round ${round + 1}/${rounds})`);
      const r = await measure({
        model: join(work, `2b-${dtype}`, 'dynamic.onnx'),
        inputs,
        runs,
        warmup: 1,
        threads,
        prepack: dtype !== 'float32',
        ...(round === 0 ? { saveOutputs: join(work, `out-${dtype}-${size}.safetensors`) } : {}),
      });
      results.set(dtype, [...(results.get(dtype) ?? []), r]);
    }
  }
  return DTYPES.map((dtype) => {
    const rs = results.get(dtype)!;
    return {
      side: `vitgraph ${dtype}`,
      dtype,
      median_ms: median(rs.map((r) => r.median_ms)),
      min_ms: Math.min(...rs.map((r) => r.min_ms)),
      load_ms: median(rs.map((r) => r.load_ms)),
      peak_rss_gb: Math.max(...rs.map((r) => r.peak_rss_bytes)) / 2 ** 30,
      rss_after_load_gb: Math.max(...rs.map((r) => r.rss_after_load_bytes)) / 2 ** 30,
    };
  });
}

async function accuracy(size: number): Promise<Accuracy[]> {
  const want = await readSafetensors(join(work, `out-float32-${size}.safetensors`));
  const rows: Accuracy[] = [];
  for (const dtype of DTYPES.filter((d) => d !== 'float32')) {
    const got = await readSafetensors(join(work, `out-${dtype}-${size}.safetensors`));
    rows.push(...outputAgreement(got, want).map((a) => ({ size, dtype, ...a })));
  }
  return rows;
}

/** llama.cpp's rows from the anchor (build + convert + time), with its main embeddings against ours. */
async function llama(): Promise<LlamaRow[]> {
  const types = 'f32,f16,bf16,q8_0';
  log(`llama.cpp anchor: types ${types}, sizes ${sizes.join(',')}, ${threads} threads, ${runs} runs (builds on first use: ~3 min)`);
  const { stdout } = await run(
    'bash',
    [ANCHOR!, '--checkpoint', join(work, 'ckpt-2b'), '--work', join(work, 'llamacpp'), '--types', types, '--sizes', sizes.join(','), '--threads', String(threads), '--runs', String(runs)],
    { maxBuffer: 1 << 24 },
  );
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LlamaRow);
}

/** llama.cpp's main embeddings ([tokens, (1 + K)·O] rows, main first) against our float32 image_embeds. */
async function llamaAccuracy(row: LlamaRow): Promise<LlamaRow> {
  const embeddings = join(work, 'llamacpp', 'embeddings', `${row.type}-${row.size}.f32`);
  const ours = join(work, `out-float32-${row.size}.safetensors`);
  if (!(await exists(embeddings)) || !(await exists(ours))) return row;
  const reference = (await readSafetensors(ours)).get('image_embeds')!;
  const [tokens, width] = reference.shape as [number, number];
  const raw = await readFile(embeddings);
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const stride = all.length / tokens;
  const main = new Float32Array(tokens * width);
  for (let t = 0; t < tokens; t++) main.set(all.subarray(t * stride, t * stride + width), t * width);
  const a = agreement(main, reference.data as Float32Array, width);
  return { ...row, accuracy: { rel_l2: a.rel_l2, min_cosine: a.min_cosine } };
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  await prepareModels();
  const weightsGb = (await stat(join(work, '2b-float32', 'weights.data'))).size / 2 ** 30;
  const timedLlama = withLlama ? await llama() : [];
  const cases: Record<number, Case[]> = {};
  const accuracyRows: Accuracy[] = [];
  const memoryRows: MemoryRow[] = [];
  for (const size of sizes) {
    const inputs = await inputsFor(size);
    cases[size] = await timeSize(size, inputs);
    accuracyRows.push(...(await accuracy(size)));
    memoryRows.push(...(await memory(size, inputs)));
  }
  const llamaRows = await Promise.all(timedLlama.map(llamaAccuracy));
  const cpu = await cpuFlags();
  const result = {
    date: new Date().toISOString().slice(0, 10),
    machine: `${cpus()[0]?.model ?? 'CPU'} (${cpus().length} cores; ${cpu})`,
    threads,
    runs,
    rounds,
    weights_gb: weightsGb,
    cases,
    accuracy: accuracyRows,
    memory: memoryRows,
    llama: llamaRows,
  };
  await writeFile(join(root, 'bench', 'quant-results.json'), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(join(root, 'bench', 'quant-results.md'), report(result));
  log(`wrote bench/quant-results.md`);
}

/** The quantized graphs once more, each with and without prepacking: what the prepacked weight copies and the run (arena, activations) add. */
async function memory(size: number, inputs: string): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  for (const dtype of DTYPES.filter((d) => d !== 'float32')) {
    const weightsFileGb = (await stat(join(work, `2b-${dtype}`, 'weights.data'))).size / 2 ** 30;
    for (const prepack of [true, false]) {
      log(`  ${size}² ${dtype} memory, prepack ${prepack}`);
      const r = await measure({ model: join(work, `2b-${dtype}`, 'dynamic.onnx'), inputs, runs: 1, warmup: 1, threads, prepack });
      const gb = (bytes: number): number => bytes / 2 ** 30;
      rows.push({
        size,
        dtype,
        prepack,
        weights_file_gb: weightsFileGb,
        before_load_gb: gb(r.rss_before_load_bytes),
        after_load_gb: gb(r.rss_after_load_bytes),
        peak_gb: gb(r.peak_rss_bytes),
        median_ms: r.median_ms,
      });
    }
  }
  return rows;
}

async function cpuFlags(): Promise<string> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(' '));
  return ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16'].filter((f) => flags.has(f)).join(', ') || 'no AVX2';
}

function report(r: {
  date: string;
  machine: string;
  threads: number;
  runs: number;
  rounds: number;
  weights_gb: number;
  cases: Record<number, Case[]>;
  accuracy: Accuracy[];
  memory: MemoryRow[];
  llama: LlamaRow[];
}): string {
  const ms = (v: number): string => v.toFixed(0);
  const lines = [
    '# Quantized CPU graphs vs float32 and llama.cpp (2B-shaped Qwen3-VL tower, random weights)',
    '',
    `Generated by \`npm run bench:quant\` on ${r.date}: ${r.machine}; ${r.threads} threads; each vitgraph case in its own process, ${r.rounds} interleaved rounds × ${r.runs} timed runs after 1 warm-up (median of the rounds' medians). Float32 weights: ${r.weights_gb.toFixed(2)} GiB. llama.cpp: tools/mtmd built from node-llama-cpp 3.22.1's source by anchor.sh (\`-march=native\`), same checkpoint, same pixels, one warm-up + ${r.runs} runs; its time excludes loading.`,
    '',
    `int8's Linear scheme (metadata \`${LINEAR_SCHEME_KEY}\`): \`${describeLinearScheme(PRECISION.int8.linear)}\`.`,
    '',
  ];
  for (const size of Object.keys(r.cases).map(Number)) {
    const cases = r.cases[size]!;
    const f32 = cases.find((c) => c.dtype === 'float32')!;
    const llamaRows = r.llama.filter((l) => l.size === size);
    const q8 = llamaRows.find((l) => l.type === 'q8_0');
    const fastest = llamaRows.reduce<LlamaRow | undefined>((best, l) => (!best || l.median_ms < best.median_ms ? l : best), undefined);
    lines.push(
      `## ${size}² (${(size / 16) ** 2} patches)`,
      '',
      `| encoder | median ms | × vitgraph fp32 | × llama.cpp Q8_0 | × llama.cpp fastest (${fastest?.type ?? '—'}) | load ms | peak RSS GiB |`,
      '|---|---:|---:|---:|---:|---:|---:|',
    );
    for (const c of cases) {
      const ratio = (other: number | undefined): string => (other ? `${(other / c.median_ms).toFixed(2)}×` : '—');
      lines.push(`| vitgraph ${c.dtype} | ${ms(c.median_ms)} | ${ratio(f32.median_ms)} | ${ratio(q8?.median_ms)} | ${ratio(fastest?.median_ms)} | ${ms(c.load_ms)} | ${c.peak_rss_gb.toFixed(2)} |`);
    }
    for (const l of llamaRows) lines.push(`| llama.cpp ${l.type.toUpperCase()} | ${ms(l.median_ms)} | ${(f32.median_ms / l.median_ms).toFixed(2)}× | | | — | ${(l.peak_rss_mb / 1024).toFixed(2)} |`);
    lines.push('', "× = the other encoder's time / this one's: above 1 this row is faster.", '');
  }
  lines.push('## Accuracy against the float32 graph (same pixels)', '', '| size | dtype | output | rel L2 | max \\|Δ\\| | min token cosine |', '|---:|---|---|---:|---:|---:|');
  for (const a of r.accuracy) lines.push(`| ${a.size}² | ${a.dtype} | ${a.output} | ${a.rel_l2.toExponential(2)} | ${a.max_abs.toExponential(2)} | ${a.min_cosine.toFixed(5)} |`);
  for (const l of r.llama.filter((x) => x.accuracy))
    lines.push(`| ${l.size}² | llama.cpp ${l.type.toUpperCase()} | image_embeds | ${l.accuracy!.rel_l2.toExponential(2)} | | ${l.accuracy!.min_cosine.toFixed(5)} |`);
  lines.push(
    '',
    "## Where the quantized graphs' memory goes",
    '',
    "Each quantized graph once more in its own process (one warm-up, one run), with ORT's prepacking (as timed above) and without it. RSS before load is node, ORT's library and the inputs; load adds the weights ORT keeps resident (prepacked copies are private memory; external data is memory-mapped and counts once touched); the run adds the arena (activations, workspaces) and weight pages first touched then.",
    '',
    '| size | dtype | prepack | weights file GiB | RSS before load | + load | + run | peak RSS GiB | run ms |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const m of r.memory) {
    lines.push(
      `| ${m.size}² | ${m.dtype} | ${m.prepack ? 'yes' : 'no'} | ${m.weights_file_gb.toFixed(3)} | ${m.before_load_gb.toFixed(3)} | ${(m.after_load_gb - m.before_load_gb).toFixed(3)} | ${(m.peak_gb - m.after_load_gb).toFixed(3)} | ${m.peak_gb.toFixed(3)} | ${ms(m.median_ms)} |`,
    );
  }
  lines.push(
    '',
    'Random weights are not real weights: real checkpoints have outlier channels that per-channel int8 and 4-bit blocks handle worse, so these figures bound nothing for a real model. Check a real checkpoint with `vitgraph encode --dtype int8` against float32 before deploying.',
    '',
  );
  return lines.join('\n');
}

await main();
