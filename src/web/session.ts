// The encoder graph on onnxruntime-web: WebGPU where the browser offers an adapter and the WebGPU
// session agrees with WASM on a probe input, else WASM with threads where the page is cross-origin
// isolated (SharedArrayBuffer), else single-threaded WASM.
//
// Why the probe: on Chromium's SwiftShader adapter, onnxruntime-web 1.31's WebGPU
// com.microsoft::MultiHeadAttention returns wrong values once a sequence reaches 32 tokens (max |Δ|
// ≈ 0.8 against WASM; fine below), which every image crosses; whether hardware adapters share it was
// not tested here. A session that disagrees is not used.

import * as ort from 'onnxruntime-web/webgpu';
import { runtimeError } from '../errors.js';
import { INPUTS, type EncoderIO } from '../contract.js';
import type { WebPackage } from './package.js';

export type BackendPreference = 'auto' | 'webgpu' | 'wasm';

export interface BackendInfo {
  backend: 'webgpu' | 'wasm';
  /** WASM threads (1 without cross-origin isolation; 0 on WebGPU, where WASM only hosts the runtime). */
  threads: number;
  /** Why WebGPU was not used, when it was asked for ('auto') and not used. */
  fallback?: string;
  /** Under 'auto': max |Δ| between the WebGPU and WASM sessions on the probe input. */
  agreement?: number;
}

/** Largest |Δ| on any output between WebGPU and WASM on the probe input that still counts as agreement. */
export const WEBGPU_AGREEMENT = 1e-2;

export interface SessionOptions {
  backend?: BackendPreference;
  /** WASM threads when cross-origin isolated (default min(4, hardwareConcurrency)). */
  threads?: number;
  /** Where onnxruntime-web's .mjs/.wasm files are served (default: beside the script that imports it). */
  wasmPaths?: string;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  info: BackendInfo;
}

/** Creates the session on the best backend `options.backend` allows; WebGPU failing falls back to WASM under 'auto'. */
export async function openSession(pkg: WebPackage, options: SessionOptions = {}): Promise<OpenedSession> {
  const preference = options.backend ?? 'auto';
  if (options.wasmPaths) ort.env.wasm.wasmPaths = options.wasmPaths;
  const isolated = globalThis.crossOriginIsolated === true;
  const threads = isolated ? Math.max(1, options.threads ?? Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  ort.env.wasm.numThreads = threads;

  let fallback: string | undefined;
  if (preference !== 'wasm') {
    const adapter = await webgpuAdapter();
    if (adapter === undefined) {
      fallback = 'no WebGPU adapter in this browser';
    } else {
      let gpu: ort.InferenceSession | undefined;
      try {
        gpu = await create(pkg, 'webgpu');
      } catch (error) {
        if (preference === 'webgpu') throw runtimeError('WebGPU session creation failed', error);
        fallback = `WebGPU session failed: ${(error as Error).message}`;
      }
      if (gpu && preference === 'webgpu') return { session: gpu, info: { backend: 'webgpu', threads: 0 } };
      if (gpu) {
        const wasm = await createWasm(pkg);
        const agreement = await disagreement(gpu, wasm, pkg.io);
        if (agreement <= WEBGPU_AGREEMENT) {
          await wasm.release();
          return { session: gpu, info: { backend: 'webgpu', threads: 0, agreement } };
        }
        await gpu.release();
        fallback = `WebGPU disagrees with WASM on a probe input (max |Δ| ${agreement.toExponential(2)} > ${WEBGPU_AGREEMENT})`;
        return { session: wasm, info: { backend: 'wasm', threads, fallback, agreement } };
      }
    }
    if (preference === 'webgpu') throw runtimeError(`WebGPU asked for, but ${fallback}`);
  }
  return { session: await createWasm(pkg), info: { backend: 'wasm', threads, ...(fallback ? { fallback } : {}) } };
}

async function createWasm(pkg: WebPackage): Promise<ort.InferenceSession> {
  try {
    return await create(pkg, 'wasm');
  } catch (error) {
    throw runtimeError('onnxruntime-web WASM session creation failed', error);
  }
}

/**
 * Max |Δ| over every output of two sessions of one graph, on a probe image of (4m)² patches: 64 for
 * merge 2, past the 32-token length where the MultiHeadAttention fault starts. Values are a fixed
 * pattern in [−1, 1], the range of normalised pixels.
 */
async function disagreement(a: ort.InferenceSession, b: ort.InferenceSession, io: EncoderIO): Promise<number> {
  const side = 4 * io.spatialMergeSize;
  const rows = side * side;
  const pixels = Float32Array.from({ length: rows * io.patchDim }, (_, i) => Math.sin(i * 0.37)); // [rows, patchDim]
  const feeds = (): Record<string, ort.Tensor> => ({
    [INPUTS.pixelValues]: new ort.Tensor('float32', pixels, [rows, io.patchDim]),
    [INPUTS.gridThw]: new ort.Tensor('int64', BigInt64Array.from([1n, BigInt(side), BigInt(side)]), [1, 3]),
  });
  const [x, y] = [await a.run(feeds()), await b.run(feeds())];
  let max = 0;
  for (const { name } of io.outputs) {
    const [p, q] = [(await x[name]!.getData()) as Float32Array, (await y[name]!.getData()) as Float32Array];
    if (p.length !== q.length) return Infinity;
    for (let i = 0; i < p.length; i++) max = Math.max(max, Math.abs(p[i]! - q[i]!));
  }
  return Number.isNaN(max) ? Infinity : max;
}

function create(pkg: WebPackage, backend: 'webgpu' | 'wasm'): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(pkg.graph.data, {
    executionProviders: [backend],
    graphOptimizationLevel: 'all',
    ...(pkg.weights ? { externalData: [{ path: pkg.weights.file, data: pkg.weights.data }] } : {}),
  });
}

/** The WebGPU adapter's presence (navigator.gpu is not in TypeScript's DOM library). */
async function webgpuAdapter(): Promise<unknown> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter: () => Promise<unknown> } }).gpu;
  if (!gpu) return undefined;
  try {
    return (await gpu.requestAdapter()) ?? undefined;
  } catch {
    return undefined;
  }
}

export { ort };
