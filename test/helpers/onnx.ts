// Running graphs built in a test: serialize with modelToBytes and run with onnxruntime-node
// directly (no Session wrapper, so the builder is checked against ORT itself).

import ort from 'onnxruntime-node';
import { modelToBytes, type GraphBuilder } from '../../src/onnx/index.js';
import { hostTensor, type HostTensor, type TypedArrayOf } from '../../src/tensor.js';

export const TEST_OPSET = 21;

export async function ortSession(bytesOrPath: Uint8Array | string): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 };
  return typeof bytesOrPath === 'string' ? ort.InferenceSession.create(bytesOrPath, options) : ort.InferenceSession.create(bytesOrPath, options);
}

/** Serializes `g` (opset 21) and runs it once on `feeds`; returns every output as a host tensor. */
export async function runGraph(g: GraphBuilder, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const session = await ortSession(await modelToBytes(g, { opset: TEST_OPSET }));
  try {
    return await runOrt(session, feeds);
  } finally {
    await session.release();
  }
}

export async function runOrt(session: ort.InferenceSession, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const inputs: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, [...t.shape]);
  const results = await session.run(inputs);
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(results)) out[name] = hostTensor(t.type as 'float32', t.dims, t.data as TypedArrayOf['float32']);
  return out;
}

export const f32 = (shape: readonly number[], values: ArrayLike<number>): HostTensor<'float32'> => hostTensor('float32', shape, Float32Array.from(values));
export const i64 = (shape: readonly number[], values: readonly number[]): HostTensor<'int64'> => hostTensor('int64', shape, BigInt64Array.from(values.map(BigInt)));
