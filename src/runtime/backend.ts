// Choosing a backend for graph files: onnxruntime-node (CPU, any graph) or vitgraph's native
// addon (CPU or CUDA, IO binding, CUDA graphs; static-shape graphs only). No silent fallback:
// asking for what a backend cannot do is an error that says what to use instead.

import type { Device } from '../contract.js';
import { invalidArgument } from '../errors.js';
import { createNativeRunner, type NativeSessionOptions } from './native/index.js';
import type { Runner } from './runner.js';
import { Session, type SessionOptions } from './session.js';

export type Backend = 'ort-node' | 'native';
export type { Device } from '../contract.js';

export interface BackendOptions extends SessionOptions {
  /** Default: 'native' for CUDA, 'ort-node' for CPU. */
  backend?: Backend;
  device?: Device;
  deviceId?: number;
  /** CUDA: capture one CUDA graph per bucket (default true on CUDA). */
  cudaGraph?: boolean;
  /** CUDA: allow TF32 tensor cores for float32 matmuls (default false: exact float32). */
  tf32?: boolean;
  /** Native backend: extra CUDA provider options and session config entries. */
  cudaOptions?: Record<string, string>;
  ortLibraryPath?: string;
  /** Check a package's files against the sha256 in its manifest when opening it (default true; a stamp makes later opens cheap). */
  verify?: boolean;
}

export function resolveBackend(options: BackendOptions): { backend: Backend; device: Device } {
  const device = options.device ?? 'cpu';
  const backend = options.backend ?? (device === 'cuda' ? 'native' : 'ort-node');
  if (backend === 'ort-node' && device === 'cuda') {
    throw invalidArgument('backend', 'the native backend for device "cuda"', 'ort-node', {
      fixes: [{ option: 'backend', action: 'pass', value: 'native' }],
      then: '(onnxruntime-node has no CUDA IO binding or CUDA graphs; see README "GPU setup")',
    });
  }
  return { backend, device };
}

/**
 * Whether a run uses a package's padded bucket graphs: asked for (`graphs: 'buckets'`), or the native
 * backend (CUDA's default), which binds fixed shapes and so runs bucket graphs only.
 */
export function useBuckets(options: BackendOptions & { readonly graphs?: 'dynamic' | 'buckets' | undefined }): boolean {
  return options.graphs === 'buckets' || resolveBackend(options).backend === 'native';
}

/** A factory that opens one graph file as a Runner on the chosen backend. */
export function runnerFactory(options: BackendOptions): (path: string) => Promise<Runner> {
  const { backend, device } = resolveBackend(options);
  if (options.tf32 && device !== 'cuda')
    throw invalidArgument('tf32', 'only with device "cuda" (TF32 is a CUDA tensor-core mode)', true, { fixes: [{ option: 'device', action: 'pass', value: 'cuda' }] });
  if (backend === 'ort-node') return (path) => Session.load(path, options);
  const native: NativeSessionOptions = {
    device,
    ...(options.threads ? { threads: options.threads } : {}),
    ...(options.graphOptimizationLevel ? { graphOptimizationLevel: options.graphOptimizationLevel } : {}),
    ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}),
    ...(device === 'cuda' ? { cudaGraph: options.cudaGraph ?? true, tf32: options.tf32 ?? false } : {}),
    ...(options.cudaOptions ? { cudaOptions: options.cudaOptions } : {}),
    ...(options.config ? { sessionConfig: options.config } : {}),
    ...(options.profilePrefix ? { profilePrefix: options.profilePrefix } : {}),
    ...(options.ortLibraryPath ? { ortLibraryPath: options.ortLibraryPath } : {}),
  };
  return (path) => createNativeRunner(path, native);
}
