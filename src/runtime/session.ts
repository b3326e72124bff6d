// A model-agnostic session over onnxruntime-node: graph inputs fed by name from host tensors,
// every output returned as a host tensor. Runs are queued one at a time per session, so
// concurrent callers are safe and each run gets the intra-op thread pool to itself.

import './telemetry.js'; // first: before onnxruntime-node creates its environment
import type ort from 'onnxruntime-node';
import { closedError, invalidArgument, runtimeError } from '../errors.js';
import { regularFileStats, requirePath } from '../fs/confined.js';
import { DATA_TYPES, type DataType } from '../dtype.js';
import { hostTensor, type HostTensor, type TypedArrayOf } from '../tensor.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** Intra-op threads (default: ORT's choice, all cores). */
  threads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** Write an ORT profile (JSON trace) with this file-name prefix. */
  profilePrefix?: string;
  /** Session config entries (ORT `AddSessionConfigEntry`), e.g. { 'session.intra_op.allow_spinning': '0' }. */
  config?: Record<string, string>;
  /**
   * Let kernels copy constant weights into their own packed layout at load (ORT prepacking).
   * Default false: float Gemm runs as fast from the stored weights (0.996× the CPU time on the
   * 2B tower), and without the copies external-data weights stay memory-mapped: the 2B tower
   * loads in 0.4–0.6 s instead of 2.3 s at 0.1 GB of private memory instead of 1.6 GB.
   * Quantized graphs need it: MatMulNBits runs 2.4× and DynamicQuantizeMatMul 1.3× slower unpacked.
   */
  prepackWeights?: boolean;
}

type Ort = typeof ort;
let ortModule: Promise<Ort> | undefined;

/**
 * onnxruntime-node, imported on first use: the native (CUDA) path and the builder never load it,
 * so they run where only the addon and its ORT library are present (scripts/gpu-check.sh).
 */
export function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node').then((m) => (m as { default?: Ort }).default ?? (m as unknown as Ort));
  return ortModule;
}

/** onnxruntime-node session options for `options` (CPU EP). */
export function ortSessionOptions(options: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    executionProviders: ['cpu'],
    ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
    ...(options.profilePrefix ? { enableProfiling: true, profileFilePrefix: options.profilePrefix } : {}),
    extra: { 'session.disable_prepacking': options.prepackWeights ? '0' : '1', ...options.config },
  };
}

export interface TensorInfo {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly (number | string)[];
}

export class Session {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly ort: Ort,
    private readonly session: ort.InferenceSession,
    readonly path: string,
    private readonly profiling: boolean,
  ) {}

  static async load(path: string, options: SessionOptions = {}): Promise<Session> {
    requirePath(path, 'ONNX model path');
    await regularFileStats(path, 'ONNX model'); // not_found, or a FIFO / directory refused before ORT opens it
    const runtime = await loadOrt();
    try {
      return new Session(runtime, await runtime.InferenceSession.create(path, ortSessionOptions(options)), path, options.profilePrefix !== undefined);
    } catch (error) {
      throw runtimeError(`ONNX Runtime could not load ${path}`, error);
    }
  }

  get inputs(): TensorInfo[] {
    return this.session.inputMetadata.map(describe);
  }

  get outputs(): TensorInfo[] {
    return this.session.outputMetadata.map(describe);
  }

  /**
   * Runs the graph. `feeds` must hold every graph input (extra entries are ignored); returns
   * every graph output. Calls are serialized in arrival order.
   */
  run(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>> {
    const next = this.queue.then(() => this.runNow(feeds));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>> {
    if (this.closed) throw closedError(`session ${this.path}`);
    const inputs: Record<string, ort.Tensor> = {};
    for (const info of this.inputs) {
      const t = feeds[info.name];
      if (!t) throw invalidArgument(`input "${info.name}"`, `a ${info.dtype} tensor of shape [${info.shape.join(', ')}]`, undefined, `Graph inputs: ${this.inputs.map((i) => i.name).join(', ')}`);
      checkSignature(info, t);
      inputs[info.name] = toOrt(this.ort, t);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(inputs);
    } catch (error) {
      throw runtimeError(`ONNX Runtime failed running ${this.path}`, error);
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, tensor] of Object.entries(results)) out[name] = fromOrt(tensor);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    if (this.profiling) this.session.endProfiling(); // writes <profilePrefix>_<date>.json
    await this.session.release();
  }
}

function describe(meta: ort.InferenceSession.ValueMetadata): TensorInfo {
  if (!meta.isTensor) return { name: meta.name, dtype: 'non-tensor', shape: [] };
  return { name: meta.name, dtype: meta.type, shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) };
}

function checkSignature(info: TensorInfo, t: HostTensor): void {
  if (info.dtype !== t.dtype) throw invalidArgument(`input "${info.name}" dtype`, info.dtype, t.dtype);
  const fixed = info.shape.length === t.shape.length && info.shape.every((d, i) => typeof d !== 'number' || d === t.shape[i]);
  if (!fixed) throw invalidArgument(`input "${info.name}" shape`, `[${info.shape.join(', ')}]`, [...t.shape]);
}

/** Every DataType but bfloat16, which onnxruntime-node's tensors do not carry. */
const ORT_TYPES: Partial<Record<DataType, ort.Tensor.Type>> = Object.fromEntries(DATA_TYPES.filter((t) => t !== 'bfloat16').map((t) => [t, t]));

function toOrt(runtime: Ort, t: HostTensor): ort.Tensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw invalidArgument('tensor dtype', Object.keys(ORT_TYPES).join('|'), t.dtype);
  return new runtime.Tensor(type, t.data as ort.Tensor.DataType, [...t.shape]);
}

function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = Object.entries(ORT_TYPES).find(([, v]) => v === t.type)?.[0] as DataType | undefined;
  if (!dtype) throw runtimeError(`unsupported output tensor type ${t.type}`);
  return hostTensor(dtype, t.dims, t.data as TypedArrayOf[typeof dtype]);
}
