// The optional native backend: a thin N-API addon (src/runtime/native/*.cc) over the ONNX Runtime
// C API, for what onnxruntime-node cannot do: tensors bound once in device memory (IO binding),
// CUDA provider options, and CUDA-graph capture/replay per bound shape set (`gpu_graph_id`).
//
// - The addon opens ONNX Runtime at run time (dlopen): by default the very file onnxruntime-node
//   ships, so one ORT lives in the process; else `ortLibraryPath` or $VITGRAPH_ORT_LIB.
// - Each session owns one native worker thread. Every ORT and CUDA call of the session runs there,
//   in request order, so Node's event loop never blocks and captured CUDA graphs (kept per host
//   thread by ORT) are found again on replay.
// - The native surface is declared once, in surface.ts; loader.ts loads the addon; this file holds
//   the session, its bindings and the Runner over them. The rest of vitgraph imports index.ts.
//   Without the addon, onnxruntime-node serves everything on CPU.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

import { DTYPES, dataTypeOfCode, onnxTypeCode } from '../../dtype.js';
import { VitgraphError, formatShape, invalidArgument, notFound, unsupported } from '../../errors.js';
import { hostTensor, numel, type HostTensor } from '../../tensor.js';
import type { Runner } from '../runner.js';
import type { TensorInfo } from '../session.js';
import { addon, GPU_HINT, loadNativeRuntime } from './loader.js';
import {
  fromAddon,
  type AddonPortSpec,
  type AddonSessionHandle,
  type AddonSessionOptions,
  type AddonValueInfo,
  type GraphOptimizationLevel,
  type NativeBindingSpec,
  type NativeBindOptions,
  type NativeCudaApi,
  type NativeDevice,
  type NativeLogLevel,
  type NativeArrays,
  type NativeRuntimeInfo,
  type NativeSessionOptions,
  type NativeTensorData,
  type NativeTensorSpec,
  type NativeTransfer,
  type NativeValueInfo,
} from './surface.js';

// ---------------------------------------------------------------------------------------------
// Sessions

const OPTIMIZATION: Readonly<Record<GraphOptimizationLevel, number>> = { disabled: 0, basic: 1, extended: 2, all: 99 };
const LOG_LEVEL: Readonly<Record<NativeLogLevel, number>> = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 };
/** Provider options the typed session options own. */
const OWNED_CUDA_OPTIONS: Readonly<Record<string, string>> = { device_id: 'deviceId', enable_cuda_graph: 'cudaGraph', use_tf32: 'tf32' };

/** A model loaded into the native backend; create with NativeSession.create, finish with close(). */
export class NativeSession {
  readonly modelPath: string;
  readonly device: NativeDevice;
  readonly cudaGraph: boolean;
  readonly runtime: NativeRuntimeInfo;
  readonly inputs: readonly NativeValueInfo[];
  readonly outputs: readonly NativeValueInfo[];
  /** How host data reaches bound tensors: 'host' (CPU), 'pinned' or 'pageable' staging (CUDA). */
  readonly transfer: NativeTransfer;
  /** CUDA only: how the CUDA EP was added to the session. */
  readonly cudaApi: NativeCudaApi | undefined;

  readonly #handle: AddonSessionHandle;
  readonly #maxQueue: number;
  #inFlight = 0;
  readonly #waiting: { grant: () => void; refuse: (error: Error) => void }[] = [];
  #closing: Promise<void> | undefined;
  readonly #graphIds = new Set<number>();

  private constructor(init: {
    modelPath: string;
    options: NativeSessionOptions;
    runtime: NativeRuntimeInfo;
    handle: AddonSessionHandle;
    meta: Awaited<ReturnType<AddonSessionHandle['open']>>;
  }) {
    this.modelPath = init.modelPath;
    this.device = init.options.device;
    this.cudaGraph = init.options.cudaGraph ?? false;
    this.runtime = init.runtime;
    this.#handle = init.handle;
    this.#maxQueue = init.options.maxQueue ?? 8;
    this.inputs = init.meta.inputs.map(valueInfo);
    this.outputs = init.meta.outputs.map(valueInfo);
    this.transfer = init.meta.staging;
    this.cudaApi = init.meta.cudaApi;
  }

  /**
   * Opens `modelPath` (external data resolves next to it) on a new worker thread.
   * Throws 'unsupported' when the addon, the ORT library, the CUDA provider or a GPU is missing,
   * 'not_found' for a missing model, 'invalid_argument' for bad options, 'runtime' when ORT fails.
   */
  static async create(modelPath: string, options: NativeSessionOptions): Promise<NativeSession> {
    const addonOptions = checkOptions(options);
    const runtime = loadNativeRuntime(options.ortLibraryPath);
    const path = resolve(modelPath);
    if (!existsSync(path)) throw notFound('ONNX model', path);
    const handle = new (addon().NativeSessionHandle)(path, addonOptions);
    try {
      const meta = await handle.open();
      return new NativeSession({ modelPath: path, options, runtime, handle, meta });
    } catch (error) {
      await handle.close();
      const mapped = fromAddon(error, `native session ${path}`);
      if (options.device === 'cuda' && mapped.code === 'unsupported') throw unsupported(mapped.message, GPU_HINT);
      throw mapped;
    }
  }

  get inputNames(): string[] {
    return this.inputs.map((v) => v.name);
  }

  get outputNames(): string[] {
    return this.outputs.map((v) => v.name);
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Allocates the spec's tensors once (host memory on CPU; device memory from the session's CUDA
   * allocator on CUDA) and binds them. Checks names, dtypes and fixed dims against the model.
   */
  async bind<const S extends NativeBindingSpec>(spec: S, options: NativeBindOptions = {}): Promise<NativeBinding<S>> {
    this.#assertOpen('bind');
    const inputs = checkPorts('input', spec.inputs, this.inputs, true);
    const outputs = checkPorts('output', spec.outputs, this.outputs, false);
    const graphId = this.#graphId(options.graphId);
    try {
      const bound = await this.#handle.bind(inputs, outputs, graphId);
      return new NativeBinding(spec, graphId, bound.staging, {
        run: (ins, outs) => this.#run(bound.id, ins, outs),
        release: () => this.#handle.releaseBinding(bound.id),
        closed: () => this.closed,
      });
    } catch (error) {
      throw fromAddon(error, 'native bind');
    }
  }

  /** Ends ORT profiling (profilePrefix) and returns the profile file's path. */
  async endProfiling(): Promise<string> {
    this.#assertOpen('endProfiling');
    try {
      return await this.#handle.endProfiling();
    } catch (error) {
      throw fromAddon(error, 'native endProfiling');
    }
  }

  /**
   * Rejects waiting and queued requests with a 'closed' error (details.reason 'closed'), lets the
   * running one finish, then frees bindings, device memory, the session and its thread.
   * Calling it again returns the same promise.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      for (const waiter of this.#waiting.splice(0)) waiter.refuse(closedError('run'));
      this.#closing = this.#handle.close();
    }
    return this.#closing;
  }

  #assertOpen(what: string): void {
    if (this.#closing) throw closedError(what);
  }

  #graphId(requested: number | undefined): number | undefined {
    if (!this.cudaGraph) {
      if (requested !== undefined) throw invalidArgument('graphId', 'no graph id unless the session has cudaGraph: true', requested);
      return undefined;
    }
    if (requested === -1) return -1;
    if (requested !== undefined) {
      if (!Number.isSafeInteger(requested) || requested < 1) throw invalidArgument('graphId', 'an integer ≥ 1, or -1', requested);
      if (this.#graphIds.has(requested)) {
        throw invalidArgument('graphId', 'an id no other binding of this session used (captured graphs live as long as the session)', requested);
      }
      this.#graphIds.add(requested);
      return requested;
    }
    let id = 1;
    while (this.#graphIds.has(id)) id++;
    this.#graphIds.add(id);
    return id;
  }

  async #run(bindingId: number, inputs: NativeTensorData[], outputs: () => NativeTensorData[]): Promise<NativeTensorData[]> {
    const slot = this.#acquire();
    if (slot) await slot;
    try {
      const outs = outputs();
      await this.#handle.run(bindingId, inputs, outs);
      return outs;
    } catch (error) {
      throw fromAddon(error, 'native run');
    } finally {
      this.#releaseSlot();
    }
  }

  /** Takes a queue slot: undefined when one is free now (so submission stays in call order). */
  #acquire(): Promise<void> | undefined {
    if (this.#closing) return Promise.reject(closedError('run'));
    if (this.#inFlight < this.#maxQueue && this.#waiting.length === 0) {
      this.#inFlight++;
      return undefined;
    }
    return new Promise((grant, refuse) => this.#waiting.push({ grant, refuse }));
  }

  #releaseSlot(): void {
    const next = this.#waiting.shift();
    if (next) next.grant();
    else this.#inFlight--;
  }
}

/** Tensors bound once for one set of static shapes (one CUDA graph under cudaGraph). */
export class NativeBinding<S extends NativeBindingSpec = NativeBindingSpec> {
  readonly spec: S;
  /** The `gpu_graph_id` this binding runs with; undefined without cudaGraph. */
  readonly graphId: number | undefined;
  readonly transfer: NativeTransfer;
  readonly #inputNames: string[];
  readonly #outputNames: string[];
  readonly #ops: NativeBindingOps;
  #released: Promise<void> | undefined;

  /** @internal Made by NativeSession.bind. */
  constructor(spec: S, graphId: number | undefined, transfer: NativeTransfer, ops: NativeBindingOps) {
    this.spec = spec;
    this.graphId = graphId;
    this.transfer = transfer;
    this.#inputNames = Object.keys(spec.inputs);
    this.#outputNames = Object.keys(spec.outputs);
    this.#ops = ops;
  }

  /**
   * Copies `inputs` into the bound tensors, runs, and returns fresh arrays copied out of the bound
   * outputs. Requests run one at a time, in call order. `inputs` are read on the worker thread:
   * do not modify them until the promise settles.
   * Throws 'invalid_argument' naming the input for a missing/unknown name, wrong array type or
   * element count; 'runtime' when ORT fails; 'closed' when the session/binding was closed.
   */
  async run(inputs: NativeArrays<S['inputs']>): Promise<NativeArrays<S['outputs']>> {
    if (this.#released) throw new VitgraphError('closed', 'native run: expected a bound binding, got one that was released', { reason: 'closed' });
    if (this.#ops.closed()) throw closedError('run');
    const given = inputs as Readonly<Record<string, NativeTensorData>>;
    for (const name of Object.keys(given)) {
      if (!(name in this.spec.inputs)) {
        throw new VitgraphError('invalid_argument', `input "${name}": not an input of this binding (it binds ${this.#inputNames.map((n) => `"${n}"`).join(', ')})`, {
          what: `input "${name}"`,
          expected: this.#inputNames,
        });
      }
    }
    const arrays = this.#inputNames.map((name) => checkData(name, this.spec.inputs[name]!, given[name]));
    const outs = await this.#ops.run(arrays, () =>
      this.#outputNames.map((name) => {
        const { dtype, shape } = this.spec.outputs[name]!;
        return new DTYPES[dtype].array(numel(shape));
      }),
    );
    return Object.fromEntries(this.#outputNames.map((name, i) => [name, outs[i]])) as NativeArrays<S['outputs']>;
  }

  /** Frees the bound tensors after the requests already made; later run() calls reject. */
  release(): Promise<void> {
    if (!this.#released) {
      this.#released = this.#ops.closed()
        ? Promise.resolve()
        : this.#ops.release().catch((error: unknown) => {
            const mapped = fromAddon(error, 'native release');
            if (mapped.details.reason !== 'closed') throw mapped;
          });
    }
    return this.#released;
  }
}

/** What a binding needs from its session (the session's private run queue). */
interface NativeBindingOps {
  run: (inputs: NativeTensorData[], outputs: () => NativeTensorData[]) => Promise<NativeTensorData[]>;
  release: () => Promise<void>;
  closed: () => boolean;
}

// ---------------------------------------------------------------------------------------------
// The Runner the model layer takes (src/runtime/runner.ts)

/**
 * A Runner over the native backend. Outputs are pre-allocated, so every graph output needs a static
 * shape (padded bucket graphs); inputs may have symbolic dims. Each distinct set of input shapes
 * gets its own binding, made on first use and kept (and, with cudaGraph, its own CUDA graph).
 * Throws 'unsupported' for a graph with a dynamic output, besides NativeSession.create's errors.
 */
export async function createNativeRunner(modelPath: string, options: NativeSessionOptions): Promise<Runner> {
  const session = await NativeSession.create(modelPath, options);
  for (const o of session.outputs) {
    const problem =
      o.dtype === null
        ? `has element type ${o.elementType}, which vitgraph does not move`
        : o.shape.some((d) => typeof d !== 'number' || d < 0)
          ? `has the dynamic shape ${formatShape(o.shape)}`
          : undefined;
    if (problem) {
      await session.close();
      throw unsupported(
        `native backend: output "${o.name}" of ${session.modelPath} ${problem}`,
        'It binds pre-allocated outputs, so it serves graphs with static output shapes (padded bucket graphs); run dynamic graphs on the CPU path',
      );
    }
  }
  return new NativeRunner(session, options.profilePrefix !== undefined);
}

class NativeRunner implements Runner {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly #session: NativeSession;
  readonly #bindings = new Map<string, Promise<NativeBinding>>();

  constructor(
    session: NativeSession,
    /** Write the ORT profile when closing, as onnxruntime-node sessions do. */
    private readonly profiling = false,
  ) {
    this.#session = session;
    const info = (v: NativeValueInfo): TensorInfo => ({ name: v.name, dtype: v.dtype ?? `onnx type ${v.elementType}`, shape: v.shape });
    this.inputs = session.inputs.map(info);
    this.outputs = session.outputs.map(info);
  }

  async run(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>> {
    const inputs: Record<string, NativeTensorSpec> = {};
    const data: Record<string, NativeTensorData> = {};
    for (const { name } of this.#session.inputs) {
      const t = feeds[name];
      if (!t) throw invalidArgument(`input "${name}"`, 'a tensor', undefined, `Graph inputs: ${this.#session.inputNames.join(', ')}`);
      inputs[name] = { dtype: t.dtype, shape: t.shape };
      data[name] = t.data;
    }
    const key = JSON.stringify(Object.values(inputs).map((i) => i.shape));
    let binding = this.#bindings.get(key);
    if (!binding) {
      const outputs = Object.fromEntries(this.#session.outputs.map((o) => [o.name, { dtype: o.dtype!, shape: o.shape as number[] }]));
      binding = this.#session.bind({ inputs, outputs });
      this.#bindings.set(key, binding);
      binding.catch(() => this.#bindings.delete(key));
    }
    const out = await (await binding).run(data);
    return Object.fromEntries(this.#session.outputs.map((o) => [o.name, hostTensor(o.dtype!, o.shape as number[], out[o.name]!)]));
  }

  async close(): Promise<void> {
    if (this.profiling) await this.#session.endProfiling().catch(() => undefined); // writes <profilePrefix>_<date>.json
    return this.#session.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Checks and conversions

function checkOptions(options: NativeSessionOptions): AddonSessionOptions {
  const { device } = options;
  if (device !== 'cpu' && device !== 'cuda') throw invalidArgument('device', '"cpu" or "cuda"', device);
  const count = (what: string, value: number | undefined, min: number, fallback: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < min) throw invalidArgument(what, `an integer ≥ ${min}`, value);
    return value;
  };
  const deviceId = count('deviceId', options.deviceId, 0, 0);
  count('maxQueue', options.maxQueue, 1, 8);
  if (device === 'cpu') {
    if (options.cudaGraph) throw invalidArgument('cudaGraph', 'false with device "cpu" (CUDA graphs need device "cuda")', true);
    if (options.cudaOptions) throw invalidArgument('cudaOptions', 'none with device "cpu"', Object.keys(options.cudaOptions));
    if (options.deviceId !== undefined) throw invalidArgument('deviceId', 'none with device "cpu"', options.deviceId);
    if (options.tf32) throw invalidArgument('tf32', 'false with device "cpu" (TF32 is a CUDA tensor-core mode)', true);
  }
  const level = options.graphOptimizationLevel ?? 'all';
  if (!(level in OPTIMIZATION)) throw invalidArgument('graphOptimizationLevel', Object.keys(OPTIMIZATION).join(' | '), level);
  const logLevel = options.logLevel;
  if (logLevel !== undefined && !(logLevel in LOG_LEVEL)) throw invalidArgument('logLevel', Object.keys(LOG_LEVEL).join(' | '), logLevel);
  const cudaOptions = { ...options.cudaOptions };
  for (const [key, owner] of Object.entries(OWNED_CUDA_OPTIONS)) {
    if (key in cudaOptions) throw invalidArgument(`cudaOptions.${key}`, `absent (set the ${owner} option instead)`, cudaOptions[key]);
  }
  if (device === 'cuda') {
    cudaOptions.device_id = String(deviceId);
    cudaOptions.enable_cuda_graph = options.cudaGraph ? '1' : '0';
    cudaOptions.use_tf32 = options.tf32 ? '1' : '0'; // the provider's own default is on
  }
  return {
    device,
    deviceId,
    threads: count('threads', options.threads, 0, 0),
    optimization: OPTIMIZATION[level],
    logLevel: logLevel === undefined ? -1 : LOG_LEVEL[logLevel],
    ...(options.profilePrefix ? { profilePrefix: options.profilePrefix } : {}),
    sessionConfig: { ...options.sessionConfig },
    cudaOptions,
  };
}

function checkPorts(kind: 'input' | 'output', ports: Readonly<Record<string, NativeTensorSpec>>, model: readonly NativeValueInfo[], all: boolean): AddonPortSpec[] {
  const known = new Map(model.map((v) => [v.name, v]));
  const names = Object.keys(ports);
  for (const name of names) {
    if (!known.has(name)) {
      throw invalidArgument(`binding ${kind} "${name}"`, `one of the model's ${kind}s (${[...known.keys()].join(', ')})`, name);
    }
  }
  if (all) {
    const missing = model.filter((v) => !(v.name in ports)).map((v) => v.name);
    if (missing.length > 0) throw invalidArgument(`binding ${kind}s`, `every model ${kind}`, `no spec for ${missing.join(', ')}`);
  } else if (names.length === 0) {
    throw invalidArgument(`binding ${kind}s`, `at least one of ${[...known.keys()].join(', ')}`, undefined);
  }
  return names.map((name) => {
    const info = known.get(name)!;
    const { dtype, shape } = ports[name]!;
    const what = `binding ${kind} "${name}"`;
    if (info.dtype !== dtype) throw invalidArgument(`${what} dtype`, `the model's ${info.dtype ?? `element type ${info.elementType}`}`, dtype);
    if (shape.length !== info.shape.length || shape.some((d, i) => !Number.isSafeInteger(d) || d < 0 || (typeof info.shape[i] === 'number' && info.shape[i] !== -1 && info.shape[i] !== d))) {
      throw invalidArgument(`${what} shape`, `non-negative integers fitting the model's ${formatShape(info.shape)}`, formatShape(shape));
    }
    return { name, type: onnxTypeCode(dtype), bytesPerElement: DTYPES[dtype].bytes, shape: [...shape] };
  });
}

function checkData(name: string, spec: NativeTensorSpec, data: NativeTensorData | undefined): NativeTensorData {
  const what = `input "${name}"`;
  const expected = numel(spec.shape);
  const Type = DTYPES[spec.dtype].array;
  if (data === undefined) {
    throw new VitgraphError('invalid_argument', `${what}: missing (the binding needs ${expected} ${spec.dtype} elements)`, { what, expected });
  }
  if (!(data instanceof Type)) {
    throw invalidArgument(what, `a ${Type.name} (${spec.dtype})`, (data as object)?.constructor?.name ?? typeof data);
  }
  if (data.length !== expected) {
    throw new VitgraphError('invalid_argument', `${what}: expected ${expected} elements (${spec.dtype} ${formatShape(spec.shape)}), got ${data.length} elements`, { what, expected, got: data.length });
  }
  return data;
}

function valueInfo(info: AddonValueInfo): NativeValueInfo {
  return { name: info.name, dtype: dataTypeOfCode(info.type) ?? null, elementType: info.type, shape: info.dims };
}

function closedError(what: string): VitgraphError {
  return new VitgraphError('closed', `native ${what}: expected an open session, got a closed one. Load the model again`, { reason: 'closed' });
}
