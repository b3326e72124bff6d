// The native backend on the CPU execution provider, against onnxruntime-node on the same models
// (same ORT library file, so results must be bit-identical). Models are written with onnx-proto
// into a temp dir by scripts/gpu-check.models.ts: y = x·W + b with a symbolic batch, and a
// two-input/two-output model with an int64 input and output.
// Skips only when the addon is not built (say `npm run build:native`).

import anyTest, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

import { VitgraphError, type ErrorCode } from '../src/errors.js';
import { NativeSession, createNativeRunner, loadNativeRuntime, nativeAddonFile, nativeAvailable, type NativeSessionOptions } from '../src/runtime/native/index.js';
import { hostTensor } from '../src/tensor.js';
import { affineReference, seededFloats, writeAffineModel, writeMlpModel, writeTwoInOutModel, type AffineModel } from '../scripts/gpu-check.models.js';

const addonFile = nativeAddonFile();
const test = addonFile.built ? anyTest : anyTest.skip;
if (!addonFile.built) console.log(`native tests skipped: the addon is not built (${addonFile.path}); run npm run build:native`);

let dir = '';
let affine: AffineModel;
let twoInOut = '';

anyTest.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vitgraph-native-'));
  affine = await writeAffineModel(dir, 64, 48, 7);
  twoInOut = await writeTwoInOutModel(dir);
});
anyTest.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function open(t: ExecutionContext, path: string, options: Partial<NativeSessionOptions> = {}): Promise<NativeSession> {
  const session = await NativeSession.create(path, { device: 'cpu', threads: 2, ...options });
  t.teardown(() => session.close());
  return session;
}

async function ortRun(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 2 });
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

function expectError(t: ExecutionContext, error: unknown, code: ErrorCode, ...patterns: RegExp[]): void {
  t.true(error instanceof VitgraphError, `expected a VitgraphError, got ${String(error)}`);
  const e = error as VitgraphError;
  t.is(e.code, code, e.message);
  for (const p of patterns) t.regex(e.message, p);
}

const affineSpec = (batch: number) =>
  ({
    inputs: { x: { dtype: 'float32', shape: [batch, 64] } },
    outputs: { y: { dtype: 'float32', shape: [batch, 48] } },
  }) as const;

test('loads the same ONNX Runtime file as onnxruntime-node', (t) => {
  const available = nativeAvailable();
  if (!available.ok) return t.fail(available.reason);
  const info = available.runtime;
  const ortNodeVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  t.is(info.version, ortNodeVersion);
  t.is(info.apiVersion, 29);
  t.true(info.providers.includes('CPUExecutionProvider'));
  if (!process.env.VITGRAPH_ORT_LIB) {
    t.is(info.source, 'onnxruntime-node');
    t.regex(info.libraryPath, /onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime\.so\.1$/);
  }
  t.deepEqual(loadNativeRuntime(), info, 'loading again returns the same runtime');
});

test('reports input and output names, element types and shapes (symbolic dims by name)', async (t) => {
  const a = await open(t, affine.path);
  t.deepEqual(a.inputNames, ['x']);
  t.deepEqual(a.outputNames, ['y']);
  t.deepEqual(a.inputs, [{ name: 'x', dtype: 'float32', elementType: 1, shape: ['batch', 64] }]);
  t.deepEqual(a.outputs, [{ name: 'y', dtype: 'float32', elementType: 1, shape: ['batch', 48] }]);
  t.is(a.transfer, 'host');
  const b = await open(t, twoInOut);
  t.deepEqual(b.inputs, [
    { name: 'x', dtype: 'float32', elementType: 1, shape: ['batch', 4] },
    { name: 'ids', dtype: 'int64', elementType: 7, shape: ['batch'] },
  ]);
  t.deepEqual(b.outputs, [
    { name: 'scaled', dtype: 'float32', elementType: 1, shape: ['batch', 4] },
    { name: 'shifted', dtype: 'int64', elementType: 7, shape: ['batch'] },
  ]);
});

test('a run matches onnxruntime-node bit for bit (float32 and int64)', async (t) => {
  const session = await open(t, affine.path);
  const binding = await session.bind(affineSpec(16));
  const x = seededFloats(16 * 64, 11);
  const { y } = await binding.run({ x });
  const want = await ortRun(affine.path, { x: new ort.Tensor('float32', x, [16, 64]) });
  t.true(y instanceof Float32Array);
  t.deepEqual(y, want.y!.data as Float32Array);
  const ref = affineReference(affine, x);
  t.true(
    y.every((v, i) => Math.abs(v - ref[i]!) <= 1e-5),
    'and agrees with the float64 reference within 1e-5',
  );

  const two = await open(t, twoInOut);
  const tb = await two.bind({
    inputs: { x: { dtype: 'float32', shape: [3, 4] }, ids: { dtype: 'int64', shape: [3] } },
    outputs: { scaled: { dtype: 'float32', shape: [3, 4] }, shifted: { dtype: 'int64', shape: [3] } },
  });
  const tx = seededFloats(12, 5);
  const ids = new BigInt64Array([-3n, 0n, 9007199254740993n]);
  const out = await tb.run({ x: tx, ids });
  const ortOut = await ortRun(twoInOut, { x: new ort.Tensor('float32', tx, [3, 4]), ids: new ort.Tensor('int64', ids, [3]) });
  t.deepEqual(out.scaled, ortOut.scaled!.data as Float32Array);
  t.deepEqual(out.shifted, new BigInt64Array([4n, 7n, 9007199254741000n]));
  t.deepEqual(out.shifted, ortOut.shifted!.data as BigInt64Array);
});

test('20 back-to-back runs with different inputs through one binding each give their own numbers', async (t) => {
  const session = await open(t, affine.path);
  const binding = await session.bind(affineSpec(4));
  const reference = await ort.InferenceSession.create(affine.path, { intraOpNumThreads: 2 });
  t.teardown(() => reference.release());
  let previous: Float32Array | undefined;
  for (let i = 0; i < 20; i++) {
    const x = seededFloats(4 * 64, 1000 + i);
    const { y } = await binding.run({ x });
    const want = (await reference.run({ x: new ort.Tensor('float32', x, [4, 64]) })).y!.data as Float32Array;
    t.deepEqual(y, want, `run ${i}`);
    t.not(y, previous, 'each run returns a fresh array');
    if (previous) t.notDeepEqual(y, previous, `run ${i} differs from run ${i - 1}`);
    previous = y;
  }
});

test('concurrent run() calls give the serial results, in order, with a small queue', async (t) => {
  const session = await open(t, affine.path, { maxQueue: 3 });
  const binding = await session.bind(affineSpec(8));
  const inputs = Array.from({ length: 40 }, (_, i) => seededFloats(8 * 64, 50 + i));
  const serial: Float32Array[] = [];
  for (const x of inputs) serial.push((await binding.run({ x })).y);
  const order: number[] = [];
  const concurrent = await Promise.all(
    inputs.map((x, i) =>
      binding.run({ x }).then((out) => {
        order.push(i);
        return out.y;
      }),
    ),
  );
  t.deepEqual(concurrent, serial);
  t.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
    'requests settle in FIFO order',
  );
});

test('runs happen off the event loop', async (t) => {
  const mlp = await writeMlpModel(dir, { width: 1536, hidden: 256, layers: 4, dtype: 'float32' });
  const session = await open(t, mlp, { threads: 1 });
  const binding = await session.bind({ inputs: { x: { dtype: 'float32', shape: [4096, 1536] } }, outputs: { y: { dtype: 'float32', shape: [4096, 256] } } });
  const x = seededFloats(4096 * 1536, 3);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const started = performance.now();
  for (let i = 0; i < 3; i++) await binding.run({ x });
  const elapsed = performance.now() - started;
  clearInterval(timer);
  t.log(`3 runs took ${elapsed.toFixed(0)} ms; the 1 ms timer fired ${ticks} times meanwhile`);
  t.true(ticks >= Math.min(5, elapsed / 20), 'timers keep firing while the worker computes');
});

test('bindings of several static shapes share one session', async (t) => {
  const session = await open(t, affine.path);
  const small = await session.bind(affineSpec(1));
  const large = await session.bind(affineSpec(7));
  const x1 = seededFloats(64, 1);
  const x7 = seededFloats(7 * 64, 2);
  const [a, b] = await Promise.all([small.run({ x: x1 }), large.run({ x: x7 })]);
  t.is(a.y.length, 48);
  t.is(b.y.length, 7 * 48);
  t.deepEqual(a.y, (await ortRun(affine.path, { x: new ort.Tensor('float32', x1, [1, 64]) })).y!.data as Float32Array);
  t.deepEqual(b.y, (await ortRun(affine.path, { x: new ort.Tensor('float32', x7, [7, 64]) })).y!.data as Float32Array);
});

test('wrong input size, unknown or missing name, and wrong array type are invalid_argument', async (t) => {
  const session = await open(t, affine.path);
  const binding = await session.bind(affineSpec(2));
  expectError(t, await t.throwsAsync(binding.run({ x: new Float32Array(127) })), 'invalid_argument', /input "x"/, /expected 128 elements/, /got 127 elements/);
  const unknown = { x: new Float32Array(128), pixels: new Float32Array(1) } as unknown as { x: Float32Array };
  expectError(t, await t.throwsAsync(binding.run(unknown)), 'invalid_argument', /input "pixels"/, /"x"/);
  expectError(t, await t.throwsAsync(binding.run({} as { x: Float32Array })), 'invalid_argument', /input "x": missing/);
  const wrongType = { x: new Float64Array(128) } as unknown as { x: Float32Array };
  expectError(t, await t.throwsAsync(binding.run(wrongType)), 'invalid_argument', /input "x"/, /Float32Array/, /Float64Array/);
  t.is((await binding.run({ x: new Float32Array(128) })).y.length, 96, 'the binding still works after rejected calls');
});

test('binding specs are checked against the model', async (t) => {
  const session = await open(t, twoInOut);
  const outputs = { scaled: { dtype: 'float32', shape: [2, 4] } } as const;
  expectError(t, await t.throwsAsync(session.bind({ inputs: { x: { dtype: 'float32', shape: [2, 4] } }, outputs })), 'invalid_argument', /every model input/, /ids/);
  expectError(t, await t.throwsAsync(session.bind({ inputs: { x: { dtype: 'float32', shape: [2, 4] }, ids: { dtype: 'int32', shape: [2] } }, outputs })), 'invalid_argument', /"ids" dtype/, /int64/);
  expectError(
    t,
    await t.throwsAsync(session.bind({ inputs: { x: { dtype: 'float32', shape: [2, 5] }, ids: { dtype: 'int64', shape: [2] } }, outputs })),
    'invalid_argument',
    /"x" shape/,
    /\[batch, 4\]/,
    /\[2, 5\]/,
  );
  expectError(
    t,
    await t.throwsAsync(session.bind({ inputs: { x: { dtype: 'float32', shape: [2, 4] }, ids: { dtype: 'int64', shape: [2] } }, outputs: { nope: { dtype: 'float32', shape: [1] } } })),
    'invalid_argument',
    /output "nope"/,
  );
  // outputs may be a subset
  const only = await session.bind({ inputs: { x: { dtype: 'float32', shape: [1, 4] }, ids: { dtype: 'int64', shape: [1] } }, outputs: { shifted: { dtype: 'int64', shape: [1] } } });
  t.deepEqual(await only.run({ x: new Float32Array(4), ids: new BigInt64Array([1n]) }), { shifted: new BigInt64Array([8n]) });
});

test('closing rejects queued and later calls with a clear error; double close is harmless', async (t) => {
  const session = await NativeSession.create(affine.path, { device: 'cpu', threads: 1, maxQueue: 2 });
  const binding = await session.bind(affineSpec(64));
  const x = seededFloats(64 * 64, 9);
  const calls = Array.from({ length: 12 }, () => binding.run({ x }));
  const closing = session.close();
  t.is(session.close(), closing, 'a second close returns the same promise');
  const settled = await Promise.allSettled(calls);
  await closing;
  const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  t.true(rejected.length >= 10, `calls beyond the running ones are rejected (${rejected.length} of 12)`);
  for (const r of rejected) expectError(t, r.reason, 'closed', /closed/);
  for (const s of settled) if (s.status === 'fulfilled') t.is(s.value.y.length, 64 * 48);
  t.true(session.closed);
  expectError(t, await t.throwsAsync(binding.run({ x })), 'closed', /expected an open session, got a closed one/);
  expectError(t, await t.throwsAsync(session.bind(affineSpec(1))), 'closed', /expected an open session, got a closed one/);
  await t.notThrowsAsync(binding.release());
  await t.notThrowsAsync(session.close());
});

test('a released binding rejects runs; the session keeps serving others', async (t) => {
  const session = await open(t, affine.path);
  const a = await session.bind(affineSpec(1));
  const b = await session.bind(affineSpec(1));
  await a.release();
  await a.release();
  expectError(t, await t.throwsAsync(a.run({ x: new Float32Array(64) })), 'closed', /released/);
  t.is((await b.run({ x: new Float32Array(64) })).y.length, 48);
});

test('bad options and paths', async (t) => {
  expectError(t, await t.throwsAsync(NativeSession.create(join(dir, 'absent.onnx'), { device: 'cpu' })), 'not_found', /absent\.onnx/);
  expectError(t, await t.throwsAsync(NativeSession.create(affine.path, { device: 'cpu', cudaGraph: true })), 'invalid_argument', /cudaGraph/);
  expectError(t, await t.throwsAsync(NativeSession.create(affine.path, { device: 'tpu' as 'cpu' })), 'invalid_argument', /device/);
  expectError(t, await t.throwsAsync(NativeSession.create(affine.path, { device: 'cpu', maxQueue: 0 })), 'invalid_argument', /maxQueue/);
  expectError(t, await t.throwsAsync(NativeSession.create(affine.path, { device: 'cuda', cudaOptions: { device_id: '1' } })), 'invalid_argument', /cudaOptions\.device_id/, /deviceId/);
  const broken = join(dir, 'broken.onnx');
  await (await import('node:fs/promises')).writeFile(broken, 'not a model');
  expectError(t, await t.throwsAsync(NativeSession.create(broken, { device: 'cpu' })), 'runtime', /CreateSession/);
  const session = await open(t, affine.path, { graphOptimizationLevel: 'disabled', logLevel: 'error' });
  expectError(t, await t.throwsAsync(session.bind(affineSpec(1), { graphId: 3 })), 'invalid_argument', /graphId/);
});

test('session config entries reach ORT: disabling CPU fallback fails a CPU-only session', async (t) => {
  // The device check relies on this: with the guard, any node left on the CPU fails session creation.
  const error = await t.throwsAsync(NativeSession.create(affine.path, { device: 'cpu', sessionConfig: { 'session.disable_cpu_ep_fallback': '1' } }));
  expectError(t, error, 'runtime', /CreateSession/, /fallback to CPU EP has been explicitly disabled/);
});

test('profiling writes a trace file', async (t) => {
  const session = await open(t, affine.path, { profilePrefix: join(dir, 'trace') });
  const binding = await session.bind(affineSpec(2));
  await binding.run({ x: new Float32Array(128) });
  const file = await session.endProfiling();
  t.true(file.includes('trace') && existsSync(file), file);
});

test('CUDA on this machine is unsupported and says what is missing (skips where a GPU works)', async (t) => {
  try {
    const session = await NativeSession.create(affine.path, { device: 'cuda' });
    await session.close();
    t.log('a CUDA session opened: this machine has a usable GPU');
    t.pass();
  } catch (error) {
    expectError(t, error, 'unsupported', /CUDA|cuda/, /libonnxruntime_providers_cuda\.so|libcudart|CUDA device|CUDA execution provider/, /GPU setup/);
    t.log((error as Error).message);
  }
});

test('createNativeRunner serves the model layer: host tensors in and out, one binding per shape set', async (t) => {
  const fixed = await writeAffineModel(dir, 64, 48, 7, 3);
  const runner = await createNativeRunner(fixed.path, { device: 'cpu', threads: 2 });
  t.teardown(() => runner.close());
  t.deepEqual(runner.inputs, [{ name: 'x', dtype: 'float32', shape: [3, 64] }]);
  t.deepEqual(runner.outputs, [{ name: 'y', dtype: 'float32', shape: [3, 48] }]);
  for (const seed of [1, 2]) {
    const x = seededFloats(3 * 64, seed);
    const out = await runner.run({ x: hostTensor('float32', [3, 64], x), extra: hostTensor('int64', [1], new BigInt64Array(1)) });
    const want = await ortRun(fixed.path, { x: new ort.Tensor('float32', x, [3, 64]) });
    t.deepEqual(out.y, hostTensor('float32', [3, 48], want.y!.data as Float32Array));
  }
  expectError(t, await t.throwsAsync(runner.run({})), 'invalid_argument', /input "x"/);
  expectError(t, await t.throwsAsync(createNativeRunner(affine.path, { device: 'cpu' })), 'unsupported', /output "y"/, /dynamic shape \[batch, 48\]/, /padded bucket graphs/);
});
