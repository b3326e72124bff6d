// The optional native backend: a thin N-API addon (src/runtime/native/*.cc) over the ONNX Runtime
// C API, for what onnxruntime-node cannot do: tensors bound once in device memory (IO binding),
// CUDA provider options, and CUDA-graph capture/replay per bound shape set (`gpu_graph_id`).
//
// - The addon opens ONNX Runtime at run time (dlopen): by default the very file onnxruntime-node
//   ships, so one ORT lives in the process; else `ortLibraryPath` or $VITGRAPH_ORT_LIB.
// - Each session owns one native worker thread. Every ORT and CUDA call of the session runs there,
//   in request order, so Node's event loop never blocks and captured CUDA graphs (kept per host
//   thread by ORT) are found again on replay.
// - The native surface is declared once, here; the rest of vitgraph imports only this module.
//   Without the addon, onnxruntime-node serves everything on CPU.

import './telemetry.js'; // first: before the addon opens ONNX Runtime
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { VitgraphError, formatShape, invalidArgument, notFound, runtimeError, unsupported } from '../errors.js';
import { dataTypeOfCode, onnxTypeCode } from '../onnx/dtypes.js';
import { hostTensor, numel, type DataType, type HostTensor, type TypedArrayOf } from '../tensor.js';
import type { Runner } from './runner.js';
import type { TensorInfo } from './session.js';

// ---------------------------------------------------------------------------------------------
// The addon's own surface (vitgraph_native.node), exactly as the C++ side defines it.

/** Error objects thrown or rejected by the addon carry the kind of failure. */
interface AddonError extends Error {
  kind?: 'unsupported' | 'argument' | 'closed' | 'runtime';
  ortCode?: number;
}

interface AddonRuntimeInfo {
  path: string;
  coreDir: string;
  version: string;
  apiVersion: number;
  providers: string[];
}

interface AddonValueInfo {
  name: string;
  type: number; // ONNX TensorProto.DataType code; -1 for non-tensors
  dims: (number | string)[];
}

interface AddonPortSpec {
  name: string;
  type: number;
  shape: number[];
}

/** How host data reaches bound tensors: plain host memory (CPU), or via pinned or pageable host memory (CUDA). */
export type NativeTransfer = 'host' | 'pinned' | 'pageable';
/**
 * How the CUDA EP was added: provider options through SessionOptionsAppendExecutionProvider_CUDA_V2
 * (cores built with CUDA support), or, where the core cannot create CUDA provider options (a CPU
 * core beside a separately shipped CUDA provider), RegisterExecutionProviderLibrary + EP options.
 */
export type NativeCudaApi = 'cuda-v2' | 'ep-library';

interface AddonSessionOptions {
  device: NativeDevice;
  deviceId: number;
  threads: number;
  optimization: number; // GraphOptimizationLevel
  logLevel: number; // OrtLoggingLevel, -1: ORT's default
  profilePrefix?: string;
  sessionConfig: Record<string, string>;
  cudaOptions: Record<string, string>;
}

interface AddonSessionHandle {
  open(): Promise<{ inputs: AddonValueInfo[]; outputs: AddonValueInfo[]; staging: NativeTransfer; cudaApi?: NativeCudaApi }>;
  bind(inputs: AddonPortSpec[], outputs: AddonPortSpec[], graphId?: number): Promise<{ id: number; staging: NativeTransfer }>;
  /** Copies `inputs` in, runs, copies into `outputs`; neither may change until the promise settles. */
  run(bindingId: number, inputs: NativeTensorData[], outputs: NativeTensorData[]): Promise<void>;
  releaseBinding(bindingId: number): Promise<void>;
  endProfiling(): Promise<string>;
  /** Rejects requests not yet started, waits for the running one, frees everything. Idempotent. */
  close(): Promise<void>;
  /** Requests submitted and not yet settled. */
  pending(): number;
}

interface Addon {
  /** ORT_API_VERSION of the headers the addon was built with. */
  apiVersion: number;
  loadRuntime(path: string): AddonRuntimeInfo;
  runtimeInfo(): AddonRuntimeInfo | null;
  NativeSessionHandle: new (modelPath: string, options: AddonSessionOptions) => AddonSessionHandle;
}

// ---------------------------------------------------------------------------------------------
// Public types

export type NativeDevice = 'cpu' | 'cuda';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
export type NativeLogLevel = 'verbose' | 'info' | 'warning' | 'error' | 'fatal';

/** Host data for one bound tensor: the typed array vitgraph uses for its dtype (see tensor.ts). */
export type NativeTensorData = TypedArrayOf[DataType];

export interface NativeSessionOptions {
  device: NativeDevice;
  /** ONNX Runtime core library; default $VITGRAPH_ORT_LIB, else onnxruntime-node's own file. */
  ortLibraryPath?: string;
  /** CUDA device ordinal (default 0). */
  deviceId?: number;
  /** Intra-op threads (default: ORT's choice, one per physical core). */
  threads?: number;
  /** Default 'all'. */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** CUDA only: capture each binding's run as a CUDA graph (provider option enable_cuda_graph=1). */
  cudaGraph?: boolean;
  /**
   * CUDA only: let float32 matmuls and convolutions use TF32 tensor cores (provider option
   * use_tf32). Default false: float32 stays float32, as exact as on CPU; TF32 keeps a 10-bit
   * significand in the products (README "GPU setup" has the measured error and speed-up).
   */
  tf32?: boolean;
  /** CUDA only: more CUDA provider options (arena_extend_strategy, use_tf32, cudnn_conv_algo_search, ...). */
  cudaOptions?: Record<string, string>;
  /** Session config entries, e.g. { 'session.disable_cpu_ep_fallback': '1' }. */
  sessionConfig?: Record<string, string>;
  /** Enables ORT profiling; the JSON file name starts with this prefix (see endProfiling). */
  profilePrefix?: string;
  /** Session log severity (default: the environment's, warning). */
  logLevel?: NativeLogLevel;
  /**
   * Most run() requests submitted to the worker at once (default 8). Further run() calls wait, in
   * order, for a free slot before they copy or submit anything; they do not reject.
   */
  maxQueue?: number;
}

export interface NativeTensorSpec<T extends DataType = DataType> {
  dtype: T;
  shape: readonly number[];
}

/** The static shapes one binding serves; every model input must be listed, outputs may be a subset. */
export interface NativeBindingSpec {
  inputs: Readonly<Record<string, NativeTensorSpec>>;
  outputs: Readonly<Record<string, NativeTensorSpec>>;
}

/** Typed arrays keyed like a spec's inputs or outputs, each of its tensor's dtype. */
export type NativeArrays<M extends Readonly<Record<string, NativeTensorSpec>>> = {
  [K in keyof M]: TypedArrayOf[M[K]['dtype']];
};

export interface NativeValueInfo {
  name: string;
  /** null for element types vitgraph does not move (strings, unsigned 16-64 bit) and non-tensors. */
  dtype: DataType | null;
  /** ONNX TensorProto.DataType code, -1 for a non-tensor value. */
  elementType: number;
  /** Symbolic dims as their names, unnamed dynamic dims as -1. */
  shape: (number | string)[];
}

export interface NativeRuntimeInfo {
  libraryPath: string;
  /** Where the library path came from. */
  source: 'option' | 'VITGRAPH_ORT_LIB' | 'onnxruntime-node';
  /** Directory of the loaded core library, where ORT looks for provider libraries. */
  coreDir: string;
  version: string;
  /** C API version requested (that of the headers the addon was built with). */
  apiVersion: number;
  /** Execution providers compiled into this ORT build (their libraries may still be missing). */
  providers: string[];
}

export interface NativeBindOptions {
  /**
   * CUDA-graph id for this binding (`gpu_graph_id` run option); only with cudaGraph. Default: the
   * next unused id from 1. Ids are single-use per session: ORT keeps a captured graph for the
   * session's lifetime, so an id is never handed to a second binding. -1 runs without capture.
   */
  graphId?: number;
}

// ---------------------------------------------------------------------------------------------
// Loading

const require = createRequire(import.meta.url);
const ADDON_NAME = 'vitgraph_native.node';
const SOURCE_BUILD = 'src/runtime/native/build/Release';
const BUILD_HINT =
  'Build it from source with `npm run build:native` (needs python3, make, g++, node-addon-api, node-gyp and the ONNX Runtime ' +
  'C API headers: see README "Native addon")';
const GPU_HINT =
  'See README "GPU setup": for CUDA 12, `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` puts the CUDA ' +
  "provider next to onnxruntime-node's library; for CUDA 13, set VITGRAPH_ORT_LIB to a core library with a matching " +
  'libonnxruntime_providers_cuda.so beside it';

/** Where a native addon file came from: $VITGRAPH_NATIVE_ADDON, the package's prebuilt binary, or a local source build. */
export type NativeAddonSource = 'VITGRAPH_NATIVE_ADDON' | 'prebuilt' | 'source build';

let addonState: { addon: Addon; file: NativeAddonFile } | { error: string } | undefined;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
}

/** The prebuilds/ folder name for this machine, e.g. linux-x64-glibc (scripts/build-native.mjs names it the same way). */
function platformKey(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `linux-${process.arch}-${header?.glibcVersionRuntime ? 'glibc' : 'musl'}`;
}

export interface NativeAddonFile {
  path: string;
  source: NativeAddonSource;
  built: boolean;
}

/**
 * The addon files to try, in order: $VITGRAPH_NATIVE_ADDON alone when set; else the prebuilt
 * binary shipped in the package (prebuilds/<platform>/), then the node-gyp source build.
 */
export function nativeAddonCandidates(): NativeAddonFile[] {
  const file = (path: string, source: NativeAddonSource): NativeAddonFile => ({ path, source, built: existsSync(path) });
  const override = process.env.VITGRAPH_NATIVE_ADDON;
  if (override) return [file(override, 'VITGRAPH_NATIVE_ADDON')];
  const root = packageRoot();
  return [file(join(root, 'prebuilds', platformKey(), ADDON_NAME), 'prebuilt'), file(join(root, SOURCE_BUILD, ADDON_NAME), 'source build')];
}

/** The addon file the loader uses first: the first candidate that exists, else the last one looked for. */
export function nativeAddonFile(): NativeAddonFile {
  const candidates = nativeAddonCandidates();
  return candidates.find((c) => c.built) ?? candidates[candidates.length - 1]!;
}

function loadAddon(): { addon: Addon; file: NativeAddonFile } | { error: string } {
  if (addonState) return addonState;
  const candidates = nativeAddonCandidates();
  const failures: string[] = [];
  if (process.platform !== 'linux') {
    addonState = { error: `the vitgraph native addon supports Linux only (this is ${process.platform})` };
    return addonState;
  }
  for (const file of candidates.filter((c) => c.built)) {
    try {
      addonState = { addon: require(file.path) as Addon, file };
      return addonState;
    } catch (error) {
      failures.push(`the ${file.source} addon at ${file.path} cannot be loaded: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  addonState = {
    error: failures.length > 0 ? failures.join('; ') : `no vitgraph native addon for ${platformKey()} (looked for ${candidates.map((c) => c.path).join(', ')}). ${BUILD_HINT}`,
  };
  return addonState;
}

function loaded(): { addon: Addon; file: NativeAddonFile } {
  const state = loadAddon();
  if ('error' in state) throw unsupported(`native backend: ${state.error}`);
  return state;
}

function addon(): Addon {
  return loaded().addon;
}

/** The ORT library the native backend would load: option, then $VITGRAPH_ORT_LIB, then onnxruntime-node's. */
export function resolveOrtLibrary(ortLibraryPath?: string): { path: string; source: NativeRuntimeInfo['source'] } {
  if (ortLibraryPath) return { path: resolve(ortLibraryPath), source: 'option' };
  const fromEnv = process.env.VITGRAPH_ORT_LIB;
  if (fromEnv) return { path: resolve(fromEnv), source: 'VITGRAPH_ORT_LIB' };
  let pkg: string;
  try {
    pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    throw unsupported(
      'native backend: onnxruntime-node is not installed, so there is no default ONNX Runtime library',
      'Install it (npm ci) or set VITGRAPH_ORT_LIB to a libonnxruntime.so',
    );
  }
  return { path: join(pkg, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime.so.1'), source: 'onnxruntime-node' };
}

/**
 * Loads ONNX Runtime into the native backend (once per process) and describes it.
 * Throws VitgraphError 'unsupported' when the addon is not built or the library cannot be loaded.
 */
export function loadNativeRuntime(ortLibraryPath?: string): NativeRuntimeInfo {
  const native = addon();
  const { path, source } = resolveOrtLibrary(ortLibraryPath);
  const origin = source === 'option' ? 'ortLibraryPath' : source === 'VITGRAPH_ORT_LIB' ? 'VITGRAPH_ORT_LIB' : "onnxruntime-node's install";
  if (!existsSync(path)) {
    throw unsupported(
      `native backend: ONNX Runtime library not found: ${path} (from ${origin})`,
      source === 'onnxruntime-node'
        ? 'Reinstall onnxruntime-node (npm ci) or set VITGRAPH_ORT_LIB to a libonnxruntime.so'
        : `Point ${origin} at an existing libonnxruntime.so, or unset it to use onnxruntime-node's library`,
    );
  }
  try {
    const info = native.loadRuntime(path);
    return { libraryPath: realpathSync(path), source, coreDir: info.coreDir, version: info.version, apiVersion: info.apiVersion, providers: info.providers };
  } catch (error) {
    throw fromAddon(error, 'native backend');
  }
}

/**
 * Whether the native backend can be used here (addon loadable and ORT loadable), and which addon
 * file loaded (the package's prebuilt binary or a local source build); never throws.
 */
export function nativeAvailable(options: { ortLibraryPath?: string } = {}): { ok: true; addon: NativeAddonFile; runtime: NativeRuntimeInfo } | { ok: false; reason: string } {
  try {
    const runtime = loadNativeRuntime(options.ortLibraryPath);
    return { ok: true, addon: loaded().file, runtime };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions

const OPTIMIZATION: Readonly<Record<GraphOptimizationLevel, number>> = { disabled: 0, basic: 1, extended: 2, all: 99 };
const LOG_LEVEL: Readonly<Record<NativeLogLevel, number>> = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 };
const ARRAY_TYPE: Readonly<Record<DataType, new (length: number) => NativeTensorData>> = {
  float32: Float32Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};
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
      if (requested !== undefined) throw invalidArgument('graphId', "no graph id unless the session has cudaGraph: true", requested);
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
        throw new VitgraphError(
          'invalid_argument',
          `input "${name}": not an input of this binding (it binds ${this.#inputNames.map((n) => `"${n}"`).join(', ')})`,
          { what: `input "${name}"`, expected: this.#inputNames },
        );
      }
    }
    const arrays = this.#inputNames.map((name) => checkData(name, this.spec.inputs[name]!, given[name]));
    const outs = await this.#ops.run(arrays, () =>
      this.#outputNames.map((name) => {
        const { dtype, shape } = this.spec.outputs[name]!;
        return new ARRAY_TYPE[dtype](numel(shape));
      }),
    );
    return Object.fromEntries(this.#outputNames.map((name, i) => [name, outs[i]])) as NativeArrays<S['outputs']>;
  }

  /** Frees the bound tensors after the requests already made; later run() calls reject. */
  release(): Promise<void> {
    if (!this.#released) {
      this.#released = this.#ops.closed() ? Promise.resolve() : this.#ops.release().catch((error: unknown) => {
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
  return new NativeRunner(session);
}

class NativeRunner implements Runner {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly #session: NativeSession;
  readonly #bindings = new Map<string, Promise<NativeBinding>>();

  constructor(session: NativeSession) {
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
    return Object.fromEntries(
      this.#session.outputs.map((o) => [o.name, hostTensor(o.dtype!, o.shape as number[], out[o.name]!)]),
    );
  }

  close(): Promise<void> {
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

function checkPorts(
  kind: 'input' | 'output',
  ports: Readonly<Record<string, NativeTensorSpec>>,
  model: readonly NativeValueInfo[],
  all: boolean,
): AddonPortSpec[] {
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
    return { name, type: onnxTypeCode(dtype), shape: [...shape] };
  });
}

function checkData(name: string, spec: NativeTensorSpec, data: NativeTensorData | undefined): NativeTensorData {
  const what = `input "${name}"`;
  const expected = numel(spec.shape);
  const Type = ARRAY_TYPE[spec.dtype];
  if (data === undefined) {
    throw new VitgraphError('invalid_argument', `${what}: missing (the binding needs ${expected} ${spec.dtype} elements)`, { what, expected });
  }
  if (!(data instanceof Type)) {
    throw invalidArgument(what, `a ${Type.name} (${spec.dtype})`, (data as object)?.constructor?.name ?? typeof data);
  }
  if (data.length !== expected) {
    throw new VitgraphError(
      'invalid_argument',
      `${what}: expected ${expected} elements (${spec.dtype} ${formatShape(spec.shape)}), got ${data.length} elements`,
      { what, expected, got: data.length },
    );
  }
  return data;
}

function valueInfo(info: AddonValueInfo): NativeValueInfo {
  return { name: info.name, dtype: dataTypeOfCode(info.type) ?? null, elementType: info.type, shape: info.dims };
}

function closedError(what: string): VitgraphError {
  return new VitgraphError('closed', `native ${what}: expected an open session, got a closed one. Load the model again`, { reason: 'closed' });
}

function fromAddon(error: unknown, context: string): VitgraphError {
  if (error instanceof VitgraphError) return error;
  const e = error as AddonError;
  switch (e?.kind) {
    case 'unsupported':
      return new VitgraphError('unsupported', e.message, {}, { cause: e });
    case 'argument':
      return new VitgraphError('invalid_argument', e.message, {}, { cause: e });
    case 'closed':
      return new VitgraphError('closed', `${context}: ${e.message}`, { reason: 'closed' }, { cause: e });
    default: {
      const mapped = runtimeError(context, e);
      return e?.ortCode === undefined ? mapped : new VitgraphError('runtime', mapped.message, { ortCode: e.ortCode }, { cause: e });
    }
  }
}
