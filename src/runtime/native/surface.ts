// The native addon's surface (vitgraph_native.node) declared once in TypeScript: the objects the
// C++ side hands over, exactly as it defines them, and the public types of the native backend.
// The loader (loader.ts) finds and loads the addon; the session (session.ts) drives it.

import { VitgraphError, runtimeError } from '../../errors.js';
import type { Device } from '../../contract.js';
import type { DataType, TypedArrayOf } from '../../dtype.js';
import type { GraphOptimizationLevel } from '../session.js';

// ---------------------------------------------------------------------------------------------
// The addon's own surface (vitgraph_native.node), exactly as the C++ side defines it.

/** Error objects thrown or rejected by the addon carry the kind of failure. */
export interface AddonError extends Error {
  kind?: 'unsupported' | 'argument' | 'closed' | 'runtime';
  ortCode?: number;
}

export interface AddonRuntimeInfo {
  path: string;
  coreDir: string;
  version: string;
  apiVersion: number;
  providers: string[];
}

export interface AddonValueInfo {
  name: string;
  type: number; // ONNX TensorProto.DataType code; -1 for non-tensors
  dims: (number | string)[];
}

export interface AddonPortSpec {
  name: string;
  /** ONNX TensorProto.DataType code, and its bytes per element: the addon keeps no dtype table of its own. */
  type: number;
  bytesPerElement: number;
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

export interface AddonSessionOptions {
  device: NativeDevice;
  deviceId: number;
  threads: number;
  optimization: number; // GraphOptimizationLevel
  logLevel: number; // OrtLoggingLevel, -1: ORT's default
  profilePrefix?: string;
  sessionConfig: Record<string, string>;
  cudaOptions: Record<string, string>;
}

export interface AddonSessionHandle {
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

export interface Addon {
  /** ORT_API_VERSION of the headers the addon was built with. */
  apiVersion: number;
  loadRuntime(path: string): AddonRuntimeInfo;
  runtimeInfo(): AddonRuntimeInfo | null;
  NativeSessionHandle: new (modelPath: string, options: AddonSessionOptions) => AddonSessionHandle;
}

// ---------------------------------------------------------------------------------------------
// Public types

export type NativeDevice = Device;
export type { GraphOptimizationLevel } from '../session.js';
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

/** The VitgraphError for an error the addon threw or rejected with. */
export function fromAddon(error: unknown, context: string): VitgraphError {
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
