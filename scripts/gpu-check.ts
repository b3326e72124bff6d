// The one-burst device check of the native backend (run by scripts/gpu-check.sh on a lent GPU, or
// here with --device cpu). For each case from a case source (see gpu-check.models.ts) it reports:
// - the session was created with session.disable_cpu_ep_fallback=1 (every node on CUDA), or why not;
// - golden outputs within the case's tolerance (fp32 and fp16 cases);
// - CUDA-graph replay gives the eager numbers (one gpu_graph_id per bound shape set);
// - end-to-end run() latency (copy in, run, copy out), eager vs CUDA graph, per image size;
// - on CPU, agreement with onnxruntime-node for the same model and data.
// Writes gpu-check.json and gpu-check.md into --out (default $OUT). Exit: 0 all passed, 1 a check
// failed, 2 cannot start (addon/ORT missing), 3 --device cuda asked but CUDA is unusable.
//
// node dist/scripts/gpu-check.js [--device cuda|cpu|auto] [--models synthetic|<module.js>]
//   [--sizes 224,448,1024,2048] [--dtypes float32,float16,bfloat16] [--runs N] [--warmup N]
//   [--budget-s S] [--only REGEX] [--skip REGEX] [--profile [REGEX]] [--work-dir DIR] [--out DIR]

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

import { VitgraphError } from '../src/errors.js';
import { NativeSession, nativeAvailable, type NativeBinding, type NativeRuntimeInfo, type NativeSessionOptions, type NativeTensorData } from '../src/runtime/native/index.js';
import type { DataType } from '../src/tensor.js';
import { bf16ToF32, f16ToF32 } from '../src/dtype.js';
import { profileMarkdown, summarizeProfile, type ProfileSummary } from '../src/runtime/profile.js';
import { syntheticSource, type CheckCase, type CheckCaseEntry, type CheckCaseSource, type CheckDtype, type CheckSessionVariant } from './gpu-check.models.js';

export const DEFAULT_MODELS_MODULE = 'dist/scripts/gpu-check.cases.js';
const FALLBACK_KEY = 'session.disable_cpu_ep_fallback';
const DEFAULT_SIZES: Readonly<Record<'cpu' | 'cuda', number[]>> = { cuda: [224, 448, 1024, 2048], cpu: [224, 448] };
const GRAPH_WARMUP = 2; // ORT captures on the 3rd run of a gpu_graph_id
/** ORT's CreateSession message when the fallback guard meets a node assigned to the CPU EP. */
const CPU_FALLBACK_REFUSED = /fallback to CPU EP has been explicitly disabled/;

export interface CheckOptions {
  device: 'cpu' | 'cuda' | 'auto';
  /** 'synthetic', or a module path exporting `checkSource`; default DEFAULT_MODELS_MODULE if built, else synthetic. */
  models?: string;
  sizes?: number[];
  dtypes?: CheckDtype[];
  /** Timed runs per latency measurement. */
  runs?: number;
  warmup?: number;
  /** Cases not started after this many seconds are skipped. */
  budgetS?: number;
  /** Directory for model files (default: a temp dir, removed at the end); kept when given, so a second pass reuses the exports. */
  workDir?: string;
  /** Only the cases whose name matches, and none whose name matches `skip`. */
  only?: RegExp;
  skip?: RegExp;
  /** Called after each case with the report so far (written out, so a crash keeps what ran). */
  onCase?: (report: CheckReport) => Promise<void>;
  /** Also write ORT's profile of each latency case (or those whose name matches) and report time by op type and the top nodes. */
  profile?: boolean | RegExp;
  log?: (line: string) => void;
}

export interface Stats {
  runs: number;
  minMs: number;
  medianMs: number;
  p90Ms: number;
  meanMs: number;
}

export interface Comparison {
  output: string;
  maxAbs: number;
  bitExact: boolean;
  pass: boolean;
}

export interface CaseReport {
  name: string;
  kind: 'golden' | 'latency';
  dtype: CheckDtype;
  imageSize?: number;
  model?: string;
  shapes?: Record<string, readonly number[]>;
  prepareMs?: number;
  /** CUDA: created with disable_cpu_ep_fallback=1 (true), only without it (false); CPU: null. */
  allNodesOnDevice?: boolean | null;
  fallbackError?: string;
  golden?: Comparison[];
  /** CPU: the native result against onnxruntime-node's for the same model and inputs. */
  reference?: Comparison[];
  /** CUDA: the capture run and a replay against the eager result. */
  graphReplay?: Comparison[];
  latency?: { eager: Stats; graph?: Stats };
  /** Images per run (latency). */
  images?: number;
  /** ORT's profile of the eager session (host-side node times; see gpu-profile notes). */
  profile?: ProfileSummary;
  /** Golden comparison reported but not required (e.g. TF32). */
  informational?: boolean;
  skipped?: string;
  error?: string;
  pass: boolean;
}

export interface CheckReport {
  startedAt: string;
  wallS: number;
  device: 'cpu' | 'cuda';
  status: 'passed' | 'failed' | 'cuda-unavailable' | 'cannot-start';
  notes: string[];
  environment: {
    node: string;
    platform: string;
    gpu?: string;
    runtime?: NativeRuntimeInfo;
    transfer?: string;
    cudaApi?: string;
    /** CUDA_LAUNCH_BLOCKING=1: every kernel waited for, so profile times are GPU times per node. */
    serialized: boolean;
  };
  source: string;
  cases: CaseReport[];
}

/** Runs the check; never throws for a failing case (it is reported), only for unusable options. */
export async function runCheck(options: CheckOptions): Promise<CheckReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const report: CheckReport = {
    startedAt: new Date().toISOString(),
    wallS: 0,
    device: options.device === 'cuda' ? 'cuda' : 'cpu',
    status: 'passed',
    notes: [],
    environment: { node: process.version, platform: `${process.platform}-${process.arch}`, serialized: process.env.CUDA_LAUNCH_BLOCKING === '1' },
    source: '',
    cases: [],
  };
  const note = (line: string): void => {
    report.notes.push(line);
    log(line);
  };
  const finish = (): CheckReport => {
    report.wallS = round((performance.now() - started) / 1000, 1);
    return report;
  };

  const gpu = nvidiaSmi();
  if (gpu) report.environment.gpu = gpu;
  const available = nativeAvailable();
  if (!available.ok) {
    report.status = 'cannot-start';
    note(`native backend unavailable: ${available.reason}`);
    return finish();
  }
  report.environment.runtime = available.runtime;
  log(`ONNX Runtime ${available.runtime.version} from ${available.runtime.libraryPath} (${available.runtime.source}); providers: ${available.runtime.providers.join(', ')}`);
  log(`GPU: ${gpu ?? 'none found (nvidia-smi unavailable)'}`);

  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'vitgraph-gpu-check-')));
  await mkdir(workDir, { recursive: true });
  try {
    const dtypes = options.dtypes ?? ['float32', 'float16'];
    const casesFor = async (device: 'cpu' | 'cuda'): Promise<CheckCaseEntry[]> =>
      (await source.cases({ device, sizes: options.sizes ?? DEFAULT_SIZES[device], dtypes })).filter((c) => (!options.only || options.only.test(c.name)) && !options.skip?.test(c.name));
    let source: CheckCaseSource;
    let device: 'cpu' | 'cuda' = options.device === 'cpu' ? 'cpu' : 'cuda';
    let entries: CheckCaseEntry[];
    try {
      source = await loadSource(options.models, note);
      report.source = source.name;
      log(`case source: ${source.name}`);
      entries = await casesFor(device);
      // Decide the device: a CUDA session on the first case's model is the real probe.
      const reason = device === 'cuda' ? await cudaUnusable(entries, workDir) : undefined;
      if (reason && options.device === 'cuda') {
        report.status = 'cuda-unavailable';
        note(`CUDA checks skipped: ${reason}`);
        return finish();
      }
      if (reason) {
        note(`no usable CUDA (${reason}); running the CPU parts only`);
        device = 'cpu';
        entries = await casesFor(device);
      }
    } catch (error) {
      report.status = 'cannot-start';
      note(`case source failed: ${error instanceof Error ? error.message : String(error)}`);
      return finish();
    }
    report.device = device;
    if (device === 'cpu') note('CUDA-graph replay and CUDA latency: skipped (device cpu)');
    if (device === 'cpu' && available.runtime.source !== 'onnxruntime-node') {
      note(`comparison with onnxruntime-node: skipped (the native backend runs ${available.runtime.libraryPath}, not its library)`);
    }

    const runs = options.runs ?? (device === 'cuda' ? 20 : 5);
    const warmup = options.warmup ?? (device === 'cuda' ? 3 : 1);
    const budgetMs = (options.budgetS ?? 240) * 1000;
    const pool = new SessionPool(device);
    try {
      for (const entry of entries) {
        if (performance.now() - started > budgetMs) {
          report.cases.push({ name: entry.name, kind: entry.kind, dtype: entry.dtype, skipped: `time budget of ${budgetMs / 1000} s used up`, pass: true });
          log(`- ${entry.name}: skipped (time budget used up)`);
          continue;
        }
        const profile = options.profile instanceof RegExp ? options.profile.test(entry.name) : options.profile === true;
        log(`> ${entry.name}`);
        report.cases.push(await runCase(entry, { device, runtime: available.runtime, workDir, runs, warmup, pool, log, profile }));
        await options.onCase?.(report);
        report.environment.transfer ??= pool.transfer;
        report.environment.cudaApi ??= pool.cudaApi;
      }
    } finally {
      await pool.closeAll();
    }
    if (report.cases.some((c) => !c.pass)) report.status = 'failed';
    return finish();
  } finally {
    if (!options.workDir) await rm(workDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// One case

interface CaseContext {
  device: 'cpu' | 'cuda';
  runtime: NativeRuntimeInfo;
  workDir: string;
  runs: number;
  warmup: number;
  pool: SessionPool;
  log: (line: string) => void;
  profile: boolean;
}

async function runCase(entry: CheckCaseEntry, ctx: CaseContext): Promise<CaseReport> {
  const out: CaseReport = { name: entry.name, kind: entry.kind, dtype: entry.dtype, pass: true };
  if (entry.imageSize) out.imageSize = entry.imageSize;
  if (entry.images) out.images = entry.images;
  if (entry.informational) out.informational = true;
  const bindings: NativeBinding[] = [];
  try {
    const t0 = performance.now();
    const c = await entry.prepare(ctx.workDir);
    out.prepareMs = round(performance.now() - t0, 0);
    out.model = basename(c.modelPath);
    out.shapes = Object.fromEntries(Object.entries(c.spec.inputs).map(([k, v]) => [k, v.shape]));

    const eager = await ctx.pool.eager(c.modelPath, entry.session);
    out.allNodesOnDevice = eager.allOnDevice;
    if (eager.fallbackError) out.fallbackError = eager.fallbackError;
    const binding = await eager.session.bind(c.spec);
    bindings.push(binding);
    const first = await binding.run(c.inputs);

    const types = Object.fromEntries(Object.entries(c.spec.outputs).map(([k, v]) => [k, v.dtype]));
    if (c.expected) out.golden = compareAll(c.gather ? c.gather(first) : first, c.expected, types, c.tolerance ?? { atol: 0, rtol: 0 });
    // Bit-exact only holds for the very library onnxruntime-node runs (and two ORTs in one process are a risk).
    if (ctx.device === 'cpu' && ctx.runtime.source === 'onnxruntime-node') out.reference = await compareWithOnnxruntimeNode(c, first, types);

    let graphBinding: NativeBinding | undefined;
    if (ctx.device === 'cuda') {
      const graph = await ctx.pool.graph(c.modelPath, eager.allOnDevice === true, entry.session);
      graphBinding = await graph.bind(c.spec);
      bindings.push(graphBinding);
      let last: Record<string, NativeTensorData> = {};
      for (let i = 0; i <= GRAPH_WARMUP; i++) last = await graphBinding.run(c.inputs); // run 3 captures
      const eagerOut = widenAll(first, types);
      const captured = compareAll(last, eagerOut, types, { atol: 0, rtol: 0 });
      const replayed = compareAll(await graphBinding.run(c.inputs), eagerOut, types, { atol: 0, rtol: 0 });
      out.graphReplay = [...captured.map((x) => ({ ...x, output: `${x.output} (capture run)` })), ...replayed.map((x) => ({ ...x, output: `${x.output} (replay)` }))];
    }

    if (entry.kind === 'latency') {
      out.latency = { eager: await time(binding, c, ctx.warmup, ctx.runs) };
      if (graphBinding) out.latency.graph = await time(graphBinding, c, 0, ctx.runs);
      if (ctx.profile) out.profile = await profileCase(c, ctx, entry.session);
    }
    const golden = out.informational ? [] : (out.golden ?? []);
    out.pass = [golden, out.reference, out.graphReplay].every((list) => (list ?? []).every((x) => x.pass)) && out.allNodesOnDevice !== false;
  } catch (error) {
    out.error = error instanceof Error ? error.message : String(error);
    out.pass = false;
  } finally {
    for (const b of bindings) await b.release().catch(() => undefined);
  }
  ctx.log(caseLine(out));
  return out;
}

async function time(binding: NativeBinding, c: CheckCase, warmup: number, runs: number): Promise<Stats> {
  for (let i = 0; i < warmup; i++) await binding.run(c.inputs);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await binding.run(c.inputs);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number): number => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!;
  return { runs, minMs: round(ms[0]!, 3), medianMs: round(at(0.5), 3), p90Ms: round(at(0.9), 3), meanMs: round(ms.reduce((a, b) => a + b, 0) / ms.length, 3) };
}

/** ORT's profile of a few eager runs of the case (a session of its own, closed after). */
async function profileCase(c: CheckCase, ctx: CaseContext, variant: CheckSessionVariant | undefined): Promise<ProfileSummary> {
  const prefix = join(ctx.workDir, `profile-${basename(c.modelPath, '.onnx')}`);
  const options: NativeSessionOptions = ctx.device === 'cuda' ? { ...cudaOptions(false, false, variant), profilePrefix: prefix } : { device: 'cpu', profilePrefix: prefix };
  const session = await NativeSession.create(c.modelPath, options);
  try {
    const binding = await session.bind(c.spec);
    for (let i = 0; i < 2 + PROFILED_RUNS; i++) await binding.run(c.inputs);
    await binding.release();
    const file = await session.endProfiling();
    return summarizeProfile(JSON.parse(await readFile(file, 'utf8')) as unknown, { skipRuns: 2 });
  } finally {
    await session.close();
  }
}

const PROFILED_RUNS = 3;

/** Sessions per model file and session variant: one eager, one CUDA-graph; a new one closes the previous pair. */
class SessionPool {
  #model: string | undefined;
  #eager: { session: NativeSession; allOnDevice: boolean | null; fallbackError?: string } | undefined;
  #graph: NativeSession | undefined;

  constructor(readonly device: 'cpu' | 'cuda') {}

  /** How host data reaches the bound tensors of the current eager session. */
  get transfer(): string | undefined {
    return this.#eager?.session.transfer;
  }

  /** How the CUDA EP was added to the current eager session. */
  get cudaApi(): string | undefined {
    return this.#eager?.session.cudaApi;
  }

  async eager(modelPath: string, variant?: CheckSessionVariant): Promise<{ session: NativeSession; allOnDevice: boolean | null; fallbackError?: string }> {
    const key = poolKey(modelPath, variant);
    if (this.#model !== key) await this.#switch(key);
    if (!this.#eager) {
      if (this.device === 'cpu') {
        this.#eager = { session: await NativeSession.create(modelPath, { device: 'cpu' }), allOnDevice: null };
      } else {
        try {
          this.#eager = { session: await NativeSession.create(modelPath, cudaOptions(false, true, variant)), allOnDevice: true };
        } catch (error) {
          if (!(error instanceof VitgraphError) || !CPU_FALLBACK_REFUSED.test(error.message)) throw error;
          // Some node would fall back to CPU: report it, and keep measuring without the guard.
          this.#eager = { session: await NativeSession.create(modelPath, cudaOptions(false, false, variant)), allOnDevice: false, fallbackError: error.message };
        }
      }
    }
    return this.#eager;
  }

  async graph(modelPath: string, guard: boolean, variant?: CheckSessionVariant): Promise<NativeSession> {
    const key = poolKey(modelPath, variant);
    if (this.#model !== key) await this.#switch(key);
    this.#graph ??= await NativeSession.create(modelPath, cudaOptions(true, guard, variant));
    return this.#graph;
  }

  async closeAll(): Promise<void> {
    await this.#eager?.session.close();
    await this.#graph?.close();
    this.#eager = undefined;
    this.#graph = undefined;
  }

  async #switch(modelPath: string): Promise<void> {
    await this.closeAll();
    this.#model = modelPath;
  }
}

const poolKey = (modelPath: string, variant: CheckSessionVariant | undefined): string => `${modelPath}\0${JSON.stringify(variant ?? {})}`;

/** CUDA session options: no option = the defaults every user gets (TF32 off). */
function cudaOptions(cudaGraph: boolean, guard: boolean, variant: CheckSessionVariant = {}): NativeSessionOptions {
  // The arena grows by exactly what is asked, so allocations after warm-up show up as failures.
  const provider = { ...(cudaGraph ? { arena_extend_strategy: 'kSameAsRequested' } : {}), ...variant.cudaOptions };
  return {
    device: 'cuda',
    cudaGraph,
    ...(variant.tf32 ? { tf32: true } : {}),
    ...(Object.keys(provider).length > 0 ? { cudaOptions: provider } : {}),
    ...(guard ? { sessionConfig: { [FALLBACK_KEY]: '1' } } : {}),
  };
}

/**
 * Why CUDA cannot serve here ('unsupported' opening the first case's model on CUDA), or undefined.
 * Other failures are left for that case to report.
 */
async function cudaUnusable(entries: CheckCaseEntry[], workDir: string): Promise<string | undefined> {
  const first = entries[0];
  if (!first) return 'the case source has no cases';
  try {
    const c = await first.prepare(workDir);
    const session = await NativeSession.create(c.modelPath, { device: 'cuda' });
    await session.close();
  } catch (error) {
    if (error instanceof VitgraphError && error.code === 'unsupported') return error.message;
  }
  return undefined;
}

async function loadSource(models: string | undefined, note: (line: string) => void): Promise<CheckCaseSource> {
  if (models === 'synthetic') return syntheticSource;
  const path = resolve(models ?? DEFAULT_MODELS_MODULE);
  if (!existsSync(path)) {
    if (models) throw new VitgraphError('not_found', `case source module not found: ${path}`);
    note(`case source ${DEFAULT_MODELS_MODULE} not built; using the synthetic stand-in (numbers are NOT the encoder's)`);
    return syntheticSource;
  }
  const mod = (await import(pathToFileURL(path).href)) as { checkSource?: CheckCaseSource };
  if (!mod.checkSource || typeof mod.checkSource.cases !== 'function') {
    throw new VitgraphError('invalid_argument', `case source module ${path}: expected an export "checkSource" with cases(), got none`);
  }
  return mod.checkSource;
}

// ---------------------------------------------------------------------------------------------
// Comparisons

function widen(data: NativeTensorData, dtype: DataType): Float64Array | Float32Array {
  if (dtype === 'float16') return f16ToF32(data as Uint16Array);
  if (dtype === 'bfloat16') return bf16ToF32(data as Uint16Array);
  if (data instanceof Float32Array) return data;
  return Float64Array.from(data as ArrayLike<number | bigint>, (v) => Number(v));
}

type Dtypes = Readonly<Record<string, DataType>>;

function widenAll(outputs: Record<string, NativeTensorData>, types: Dtypes): Record<string, Float32Array | Float64Array> {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, widen(v, types[k] ?? 'float32')]));
}

function compareAll(got: Record<string, NativeTensorData>, want: Record<string, Float32Array | Float64Array>, types: Dtypes, tol: { atol: number; rtol: number }): Comparison[] {
  return Object.entries(want).map(([name, expected]) => {
    const raw = got[name];
    if (!raw) return { output: `${name} (missing)`, maxAbs: Infinity, bitExact: false, pass: false };
    const actual = widen(raw, types[name] ?? 'float32');
    if (actual.length !== expected.length) return { output: `${name} (length ${actual.length} ≠ ${expected.length})`, maxAbs: Infinity, bitExact: false, pass: false };
    let maxAbs = 0;
    let bitExact = true;
    let pass = true;
    for (let i = 0; i < expected.length; i++) {
      const a = actual[i]!;
      const e = expected[i]!;
      if (!Object.is(a, e)) bitExact = false;
      const d = Math.abs(a - e);
      if (!(d <= tol.atol + tol.rtol * Math.abs(e))) pass = false;
      if (!(d <= maxAbs)) maxAbs = d; // NaN propagates as a failure
    }
    return { output: name, maxAbs, bitExact, pass };
  });
}

async function compareWithOnnxruntimeNode(c: CheckCase, native: Record<string, NativeTensorData>, types: Dtypes): Promise<Comparison[]> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(c.modelPath);
  try {
    const feeds = Object.fromEntries(
      Object.entries(c.spec.inputs).map(([name, { dtype, shape }]) => {
        if (dtype === 'bfloat16') throw new VitgraphError('unsupported', `input "${name}": onnxruntime-node takes no bfloat16 tensors`);
        // the typed array matches dtype by NativeArrays' construction; ort's overloads cannot see that
        return [name, new ort.Tensor(dtype, c.inputs[name] as never, [...shape])];
      }),
    );
    const result = await session.run(feeds);
    const want = Object.fromEntries(Object.keys(c.spec.outputs).map((name) => [name, widen(result[name]!.data as NativeTensorData, result[name]!.type as DataType)]));
    return compareAll(native, want, types, { atol: 0, rtol: 0 });
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

function caseLine(c: CaseReport): string {
  const parts = [`- ${c.name}: ${c.pass ? 'ok' : 'FAILED'}`];
  if (c.error) parts.push(`error: ${c.error}`);
  if (c.allNodesOnDevice === false) parts.push(`not all nodes on CUDA (${c.fallbackError ?? ''})`);
  if (c.golden) parts.push(`golden max|Δ| ${fmt(c.golden)}`);
  if (c.reference) parts.push(`vs onnxruntime-node max|Δ| ${fmt(c.reference)}`);
  if (c.graphReplay) parts.push(`graph vs eager max|Δ| ${fmt(c.graphReplay)}`);
  if (c.latency) parts.push(`eager ${c.latency.eager.medianMs} ms${c.latency.graph ? `, graph ${c.latency.graph.medianMs} ms` : ''} (median)`);
  return parts.join('; ');
}

const fmt = (list: Comparison[]): string => list.map((x) => `${x.output}=${x.maxAbs.toExponential(2)}${x.bitExact ? ' (bit-exact)' : ''}`).join(', ');

export function reportMarkdown(r: CheckReport): string {
  const lines = [
    `# vitgraph native device check — ${r.status}`,
    '',
    `- started ${r.startedAt}, ${r.wallS} s, device **${r.device}**`,
    `- GPU: ${r.environment.gpu ?? 'none'}`,
    `- ONNX Runtime: ${r.environment.runtime ? `${r.environment.runtime.version} (${r.environment.runtime.libraryPath}, ${r.environment.runtime.source}); providers ${r.environment.runtime.providers.join(', ')}` : 'not loaded'}`,
    `- host↔device transfer: ${r.environment.transfer ?? 'n/a'}; CUDA EP added via: ${r.environment.cudaApi ?? 'n/a'}`,
    `- node ${r.environment.node}, ${r.environment.platform}; case source: ${r.source || 'n/a'}`,
    ...r.notes.map((n) => `- note: ${n}`),
    '',
    '| case | result | all nodes on device | golden max\\|Δ\\| | vs onnxruntime-node | graph replay == eager | eager median ms | graph median ms | speed-up |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const c of r.cases) {
    const eager = c.latency?.eager.medianMs;
    const graph = c.latency?.graph?.medianMs;
    lines.push(
      `| ${c.name} | ${c.skipped ? `skipped: ${c.skipped}` : c.informational ? 'measured' : c.pass ? 'ok' : `FAILED${c.error ? `: ${c.error.replaceAll('|', '/')}` : ''}`} | ${c.allNodesOnDevice === undefined ? '' : c.allNodesOnDevice === null ? 'n/a (cpu)' : c.allNodesOnDevice ? 'yes' : 'NO'} | ${c.golden ? fmt(c.golden) : ''} | ${c.reference ? fmt(c.reference) : ''} | ${c.graphReplay ? (c.graphReplay.every((x) => x.bitExact) ? 'bit-exact' : fmt(c.graphReplay)) : ''} | ${eager ?? ''} | ${graph ?? ''} | ${eager && graph ? `${round(eager / graph, 2)}×` : ''} |`,
    );
  }
  const latency = r.cases.filter((c) => c.latency);
  if (latency.length > 0) {
    lines.push(
      '',
      'Latency is end-to-end `run()` (host→device copy, run, device→host copy), ms over the timed runs:',
      '',
      '| case | mode | runs | min | median | p90 | mean | images/s |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const c of latency) {
      for (const [mode, s] of Object.entries(c.latency!))
        lines.push(`| ${c.name} | ${mode} | ${s.runs} | ${s.minMs} | ${s.medianMs} | ${s.p90Ms} | ${s.meanMs} | ${round((1000 * (c.images ?? 1)) / s.medianMs, 1)} |`);
    }
    lines.push(...batchingGain(latency));
  }
  for (const c of r.cases.filter((x) => x.profile)) {
    lines.push('', profileMarkdown(c.profile!, `Profile: ${c.name} (${r.environment.serialized ? 'CUDA_LAUNCH_BLOCKING=1: GPU time per node' : 'host time per node; CUDA kernels are asynchronous'})`));
  }
  return `${lines.join('\n')}\n`;
}

/** Images/s of each batched case against the same side and dtype run one image at a time (best mode of each). */
function batchingGain(latency: readonly CaseReport[]): string[] {
  const best = (c: CaseReport): number => Math.min(c.latency!.eager.medianMs, c.latency!.graph?.medianMs ?? Infinity);
  const rows: string[] = [];
  for (const batch of latency.filter((c) => (c.images ?? 1) > 1)) {
    const single = latency.find((c) => (c.images ?? 1) === 1 && c.imageSize === batch.imageSize && c.dtype === batch.dtype && c.name.endsWith(batch.name.split(' ').slice(3).join(' ')));
    if (!single) continue;
    const gain = batch.images! / best(batch) / (1 / best(single));
    rows.push(`| ${batch.name} vs ${single.name} | ${round((batch.images! * 1000) / best(batch), 1)} vs ${round(1000 / best(single), 1)} images/s | ${round(gain, 2)}× |`);
  }
  return rows.length > 0 ? ['', '| batching | throughput | gain |', '|---|---|---|', ...rows] : [];
}

function nvidiaSmi(): string | undefined {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 15000 });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim().replaceAll('\n', '; ') : undefined;
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------
// CLI

function parseArgs(argv: string[]): CheckOptions & { out: string } {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const list = (flag: string): string[] | undefined => get(flag)?.split(',').filter(Boolean);
  const device = get('--device') ?? 'auto';
  if (device !== 'cpu' && device !== 'cuda' && device !== 'auto') throw new VitgraphError('invalid_argument', `--device: expected cpu, cuda or auto, got ${device}`);
  const num = (flag: string): number | undefined => (get(flag) === undefined ? undefined : Number(get(flag)));
  const opts: CheckOptions & { out: string } = { device, out: get('--out') ?? process.env.OUT ?? 'gpu-check-out' };
  const models = get('--models');
  if (models) opts.models = models;
  const sizes = list('--sizes');
  if (sizes) opts.sizes = sizes.map(Number);
  const dtypes = list('--dtypes');
  if (dtypes) opts.dtypes = dtypes as CheckDtype[];
  const runs = num('--runs');
  if (runs !== undefined) opts.runs = runs;
  const warmup = num('--warmup');
  if (warmup !== undefined) opts.warmup = warmup;
  const budget = num('--budget-s');
  if (budget !== undefined) opts.budgetS = budget;
  const only = get('--only');
  if (only) opts.only = new RegExp(only);
  const skip = get('--skip');
  if (skip) opts.skip = new RegExp(skip);
  const work = get('--work-dir');
  if (work) opts.workDir = resolve(work);
  const profile = argv.indexOf('--profile');
  if (profile >= 0) {
    const filter = argv[profile + 1];
    opts.profile = filter && !filter.startsWith('--') ? new RegExp(filter) : true;
  }
  return opts;
}

const EXIT: Readonly<Record<CheckReport['status'], number>> = { passed: 0, failed: 1, 'cannot-start': 2, 'cuda-unavailable': 3 };

async function main(): Promise<void> {
  const { out, ...options } = parseArgs(process.argv.slice(2));
  await mkdir(out, { recursive: true });
  const write = async (report: CheckReport): Promise<string> => {
    await writeFile(join(out, 'gpu-check.json'), `${JSON.stringify(report, null, 2)}\n`);
    const md = reportMarkdown(report);
    await writeFile(join(out, 'gpu-check.md'), md);
    return md;
  };
  const report = await runCheck({ ...options, onCase: async (r) => void (await write(r)) });
  const md = await write(report);
  console.log(`\n${md}`);
  process.exitCode = EXIT[report.status];
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  });
}
