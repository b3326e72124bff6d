// safetensors: round trips over every dtype, deterministic atomic writes, and header validation
// against corrupt or lying files. All files are generated into a temp dir by the tests.

import test, { type ExecutionContext } from 'ava';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VitgraphError, type ErrorCode } from '../src/errors.js';
import { hostTensor, type HostTensor } from '../src/tensor.js';
import { readSafetensors, readSafetensorsHeader, toSafetensorsDType, writeSafetensors, writeSafetensorsStream } from '../src/weights/safetensors.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vitgraph-weights-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function rejects(t: ExecutionContext, promise: Promise<unknown>, code: ErrorCode, fragment: string | RegExp): Promise<VitgraphError> {
  const error = await t.throwsAsync(promise, { instanceOf: VitgraphError });
  t.is(error?.code, code);
  if (typeof fragment === 'string') t.true(error?.message.includes(fragment), `"${error?.message}" should include "${fragment}"`);
  else t.regex(error?.message ?? '', fragment);
  return error!;
}

/** A safetensors file from raw parts, for lying headers: the length prefix defaults to the JSON's. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(bytes.buffer).setBigUint64(0, declaredLength ?? BigInt(json.byteLength), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.byteLength);
  return bytes;
}

const everyDType = (): Record<string, HostTensor> => ({
  f32: hostTensor('float32', [2, 3], new Float32Array(new Uint32Array([0x3f800000, 0x80000000, 0x7f800000, 0x7fc00001, 0x00000001, 0xc0490fdb]).buffer)),
  f64: hostTensor('float64', [2], Float64Array.from([Math.PI, -1e300])),
  f16: hostTensor('float16', [3], Uint16Array.from([0x3c00, 0x0001, 0xfc00])),
  bf16: hostTensor('bfloat16', [1, 3], Uint16Array.from([0x3f80, 0x7fc1, 0x8000])),
  i64: hostTensor('int64', [2], BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n])),
  i32: hostTensor('int32', [2], Int32Array.from([-(2 ** 31), 2 ** 31 - 1])),
  i8: hostTensor('int8', [2], Int8Array.from([-128, 127])),
  u8: hostTensor('uint8', [3], Uint8Array.from([0, 128, 255])),
  bool: hostTensor('bool', [2], Uint8Array.from([1, 0])),
  scalar: hostTensor('float32', [], Float32Array.from([42])),
  empty: hostTensor('int32', [0, 4], new Int32Array(0)),
});

const bytesOf = (t: HostTensor): number[] => [...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)];

test('round trip keeps dtype, shape and exact bytes for every dtype, plus metadata', async (t) => {
  const path = join(await tempDir(t), 'all.safetensors');
  const written = everyDType();
  await writeSafetensors(path, written, { format: 'pt', note: 'ünïcode' });
  const read = await readSafetensors(path);
  t.deepEqual([...read.keys()].sort(), Object.keys(written).sort());
  for (const [name, tensor] of Object.entries(written)) {
    const back = read.get(name)!;
    t.is(back.dtype, tensor.dtype, name);
    t.deepEqual(back.shape, tensor.shape, name);
    t.deepEqual(bytesOf(back), bytesOf(tensor), name);
    t.is(back.data.constructor, tensor.data.constructor, name);
  }
  const header = await readSafetensorsHeader(path);
  t.deepEqual(header.metadata, { format: 'pt', note: 'ünïcode' });
  t.is(header.entries.get('bf16')?.dtype, 'BF16');
  t.is(header.entries.get('bool')?.dtype, 'BOOL');
});

test('header offsets are absolute, names sorted, JSON padded with spaces to 8 bytes', async (t) => {
  const path = join(await tempDir(t), 'a.safetensors');
  await writeSafetensors(path, { b: hostTensor('uint8', [3], Uint8Array.from([7, 8, 9])), a: hostTensor('uint8', [1], Uint8Array.from([5])) });
  const file = new Uint8Array(await readFile(path));
  const header = await readSafetensorsHeader(path);
  t.is(header.dataStart % 8, 0);
  t.is(file[header.dataStart - 1], 0x20);
  t.deepEqual([...header.entries.keys()], ['a', 'b']);
  const b = header.entries.get('b')!;
  t.deepEqual(b, { name: 'b', dtype: 'U8', shape: [3], offset: header.dataStart + 1, byteLength: 3, file: path });
  t.deepEqual([...file.subarray(b.offset, b.offset + 3)], [7, 8, 9]);
  t.is(file.byteLength, header.dataStart + 4);
});

test('writing is deterministic whatever the insertion order or container', async (t) => {
  const dir = await tempDir(t);
  const tensors = everyDType();
  await writeSafetensors(join(dir, 'one'), tensors, { x: '1' });
  await writeSafetensors(join(dir, 'two'), new Map(Object.entries(tensors).reverse()), { x: '1' });
  t.deepEqual(await readFile(join(dir, 'one')), await readFile(join(dir, 'two')));
});

test('overwriting replaces the file without writing into it: an open reader keeps the old bytes', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'w.safetensors');
  await writeSafetensors(path, { x: hostTensor('float32', [2], Float32Array.from([1, 2])) });
  const before = await readFile(path);
  const reader = await open(path, 'r');
  t.teardown(() => reader.close());
  await writeSafetensors(path, { x: hostTensor('float32', [2], Float32Array.from([3, 4])) });
  const stale = Buffer.alloc(before.byteLength);
  await reader.read(stale, 0, stale.byteLength, 0);
  t.deepEqual(stale, before);
  t.deepEqual([...(await readSafetensors(path)).get('x')!.data], [3, 4]);
  t.deepEqual(await readdir(dir), ['w.safetensors'], 'no temp file left behind');
});

test('a failed streaming write leaves the old file and no temp file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 's.safetensors');
  await writeSafetensors(path, { old: hostTensor('uint8', [1], Uint8Array.from([1])) });
  const before = await readFile(path);
  const specs = [
    { name: 'a', dtype: 'F32' as const, shape: [2] },
    { name: 'b', dtype: 'F32' as const, shape: [2] },
  ];
  await t.throwsAsync(
    writeSafetensorsStream(path, specs, (spec) => {
      if (spec.name === 'b') throw new Error('generator failed');
      return new Uint8Array(8);
    }),
    { message: 'generator failed' },
  );
  await rejects(
    t,
    writeSafetensorsStream(path, specs, () => new Uint8Array(4)),
    'invalid_argument',
    'bytes for tensor "a": expected 8 bytes, got 4',
  );
  t.deepEqual(await readFile(path), before);
  t.deepEqual(await readdir(dir), ['s.safetensors']);
});

test('write rejects lying tensors, reserved names and a missing directory', async (t) => {
  const dir = await tempDir(t);
  const lying = { dtype: 'float32', shape: [3], data: new Float32Array(2) } as HostTensor;
  await rejects(t, writeSafetensors(join(dir, 'x'), { w: lying }), 'invalid_argument', 'tensor "w" data: expected 12 bytes for float32 [3], got 8');
  const ok = hostTensor('uint8', [1], new Uint8Array(1));
  await rejects(t, writeSafetensors(join(dir, 'x'), { __metadata__: ok }), 'invalid_argument', '"__metadata__"');
  await rejects(t, writeSafetensors(join(dir, 'nope', 'x'), { ok }), 'not_found', join(dir, 'nope'));
  t.deepEqual(await readdir(dir), []);
});

test('toSafetensorsDType maps every DataType', (t) => {
  t.deepEqual((['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int8', 'uint8', 'bool'] as const).map(toSafetensorsDType), [
    'F32',
    'F16',
    'BF16',
    'F64',
    'I64',
    'I32',
    'I8',
    'U8',
    'BOOL',
  ]);
});

test('I16 headers parse, but reading I16 as a host tensor is unsupported', async (t) => {
  const path = join(await tempDir(t), 'i16.safetensors');
  await writeFile(path, rawFile({ s: { dtype: 'I16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)));
  t.is((await readSafetensorsHeader(path)).entries.get('s')?.byteLength, 4);
  await rejects(t, readSafetensors(path), 'unsupported', 'I16');
});

test('a missing file is not_found naming it', async (t) => {
  const path = join(await tempDir(t), 'absent.safetensors');
  await rejects(t, readSafetensorsHeader(path), 'not_found', path);
  await rejects(t, readSafetensors(path), 'not_found', path);
});

// Each corrupt file must be refused by both the header-only reader and the whole-file reader,
// with an invalid_file error naming the file and the problem.
const data16 = new Uint8Array(16);
const corrupt: [string, Uint8Array, string][] = [
  ['shorter than 8 bytes', Uint8Array.from([1, 0, 0]), 'expected at least 8 bytes'],
  ['header length 0', rawFile(new Uint8Array(0), data16), 'expected a header length above 0, got 0'],
  ['header length past the file', rawFile({}, data16, 1000n), 'header length within the 26-byte file, got one running past its end'],
  ['absurd header length', rawFile({}, data16, 2n ** 40n), 'at most 100000000 bytes'],
  ['invalid UTF-8', rawFile(Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d])), 'got bytes that are not UTF-8'],
  ['truncated JSON', rawFile(new TextEncoder().encode('{"a": {')), 'expected the header to be JSON, got text that does not parse'],
  ['JSON array', rawFile([1, 2]), 'expected the header to be a JSON object, got [1,2]'],
  ['entry without dtype', rawFile({ w: { shape: [4], data_offsets: [0, 16] } }, data16), 'tensor "w": missing dtype'],
  ['entry without offsets', rawFile({ w: { dtype: 'F32', shape: [4] } }, data16), 'missing data_offsets'],
  ['unknown dtype', rawFile({ w: { dtype: 'F8', shape: [4], data_offsets: [0, 16] } }, data16), 'expected dtype one of'],
  ['negative dim', rawFile({ w: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, data16), 'list of non-negative integers, got [-4]'],
  ['fractional dim', rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 16] } }, data16), 'got [1.5]'],
  ['one offset', rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [16] } }, data16), 'data_offsets to be [begin, end]'],
  ['string offsets', rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: ['0', '16'] } }, data16), 'data_offsets to be [begin, end]'],
  ['begin after end', rawFile({ w: { dtype: 'U8', shape: [0], data_offsets: [8, 4] } }, data16), 'begin ≤ end, got [8, 4]'],
  ['end beyond data', rawFile({ w: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data16), 'end 32 is beyond the 16-byte data section'],
  ['numel × size ≠ span', rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data16), 'expected 12 bytes for F32 [3], got data_offsets spanning 16'],
  [
    'overlapping tensors',
    rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data16),
    'tensors "a" and "b" have overlapping data_offsets',
  ],
  [
    'a tensor named twice (JSON.parse would keep the last)',
    rawFile(new TextEncoder().encode('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'), data16),
    'expected unique keys, got "w" twice in the header',
  ],
  ['a field repeated inside an entry', rawFile(new TextEncoder().encode('{"w":{"dtype":"F32","shape":[4],"shape":[2],"data_offsets":[0,16]}}'), data16), 'got "shape" twice in "w"'],
  ['metadata not strings', rawFile({ __metadata__: { n: 1 } }, data16), '"__metadata__"."n" to be a string, got 1'],
];

for (const [name, bytes, fragment] of corrupt) {
  test(`corrupt header is invalid_file: ${name}`, async (t) => {
    const path = join(await tempDir(t), 'bad.safetensors');
    await writeFile(path, bytes);
    for (const read of [readSafetensorsHeader, readSafetensors]) {
      const error = await rejects(t, read(path), 'invalid_file', fragment);
      t.true(error.message.startsWith(path), 'message names the file');
    }
  });
}
