// The safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}), then the
// data section, with offsets relative to its start (byte 8 + N).
// Reading validates the header against the file before any offset is trusted; writing is
// deterministic (sorted names) and atomic (temp file in the same directory, then rename).

import { endianness } from 'node:os';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { openRegularFile, readRegularFile, requirePath } from '../fs/confined.js';
import { parseJsonFile } from '../fs/json.js';
import { assertReplaceable, isStreamOutput, openStreamOutput } from '../fs/output.js';
import { asFileSystemError, fileSystemError } from '../fs/system-errors.js';
import { temporaryPath } from '../fs/temporary.js';
import { type VitgraphError, formatShape, invalidArgument, invalidFile, unsupported } from '../errors.js';
import { firstDuplicateKey } from './json-duplicates.js';
import { dataTypeOfSafetensors, DTYPES, safetensorsDTypeOf, typedArrayOver, type DataType, type SafetensorsDType } from '../dtype.js';
import { hostTensor, numel, tensorBytes, type HostTensor } from '../tensor.js';

export type { SafetensorsDType } from '../dtype.js';

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Absolute offset of the data section (8 + header length). */
  dataStart: number;
}

/** What a writer needs to know about a tensor before its bytes exist. */
export interface SafetensorsSpec {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
}

/** Bytes per element of every safetensors dtype: the DataTypes' (src/dtype.ts), and I16. */
export const SAFETENSORS_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  ...(Object.fromEntries(Object.values(DTYPES).map((d) => [d.safetensors, d.bytes])) as Record<Exclude<SafetensorsDType, 'I16'>, number>),
  I16: 2,
};

/** Larger JSON headers are refused before allocating them: real ones are well under 1 MB. */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

// Typed arrays are host-endian and the format is little-endian; every supported Node target is LE.
if (endianness() !== 'LE') throw unsupported('safetensors on a big-endian host');

export function toSafetensorsDType(t: DataType): SafetensorsDType {
  const dtype = safetensorsDTypeOf(t);
  if (!dtype) throw invalidArgument('tensor dtype', Object.keys(DTYPES).join(' | '), t);
  return dtype;
}

export function fromSafetensorsDType(dtype: SafetensorsDType): DataType {
  const t = dataTypeOfSafetensors(dtype);
  if (!t) throw unsupported(`safetensors dtype ${dtype} has no vitgraph DataType`, 'convert the tensor to I32 or I64');
  return t;
}

/** Reads and validates the header of a safetensors file, touching only its first 8 + N bytes. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const file = await openExisting(requirePath(path, 'safetensors path'), 'safetensors file');
  try {
    const { size } = await file.stat();
    if (size < 8) throw tooShort(path, size);
    const length = await readExactly(file, path, 0, 8);
    const headerLength = checkHeaderLength(path, length, size);
    const json = await readExactly(file, path, 8, headerLength);
    return parseHeader(path, json, size);
  } finally {
    await file.close();
  }
}

/** Reads a whole (small) safetensors file into host tensors; half types stay raw bits. */
export async function readSafetensors(path: string): Promise<Map<string, HostTensor>> {
  const bytes: Uint8Array = await readRegularFile(requirePath(path, 'safetensors path'), 'safetensors file');
  if (bytes.byteLength < 8) throw tooShort(path, bytes.byteLength);
  const headerLength = checkHeaderLength(path, bytes.subarray(0, 8), bytes.byteLength);
  const header = parseHeader(path, bytes.subarray(8, 8 + headerLength), bytes.byteLength);
  const tensors = new Map<string, HostTensor>();
  for (const entry of header.entries.values()) {
    const dtype = fromSafetensorsDType(entry.dtype);
    // Copy into a fresh, aligned ArrayBuffer: file offsets need not be aligned, and a Buffer's
    // slice() would share (pooled) memory instead of copying.
    const data = new Uint8Array(bytes.subarray(entry.offset, entry.offset + entry.byteLength)).buffer;
    tensors.set(entry.name, hostTensor(dtype, entry.shape, typedArrayOver(dtype, data)));
  }
  return tensors;
}

/**
 * Writes tensors as one safetensors file. Names are sorted, so equal input gives equal bytes.
 * The file is written beside `path` under a temporary name and renamed over it at the end, so
 * `path` is either untouched or complete, and a file being read from is never written into.
 */
export async function writeSafetensors(path: string, tensors: Record<string, HostTensor> | Map<string, HostTensor>, metadata: Record<string, string> = {}): Promise<void> {
  requirePath(path, 'safetensors output path');
  const byName = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const specs = [...byName].map(([name, t]): SafetensorsSpec => {
    const expected = numel(t.shape) * SAFETENSORS_BYTES[toSafetensorsDType(t.dtype)];
    if (t.data.byteLength !== expected) {
      throw invalidArgument(`tensor "${name}" data`, `${expected} bytes for ${t.dtype} ${formatShape(t.shape)}`, t.data.byteLength);
    }
    return { name, dtype: toSafetensorsDType(t.dtype), shape: t.shape };
  });
  await writeSafetensorsStream(path, specs, (spec) => tensorBytes(byName.get(spec.name)!), metadata);
}

/**
 * Writes a safetensors file tensor by tensor: the header is computed from `specs` alone, then
 * `fill` is called once per tensor in file order (sorted by name) and must return exactly that
 * tensor's bytes. Lets callers stream files far larger than memory. Atomic as `writeSafetensors`.
 */
export async function writeSafetensorsStream(
  path: string,
  specs: readonly SafetensorsSpec[],
  fill: (spec: SafetensorsSpec, index: number) => Uint8Array | Promise<Uint8Array>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const { header, ordered } = encodeSafetensorsHeader(specs, metadata);
  const tensors = async function* (): AsyncGenerator<Uint8Array> {
    yield header;
    for (const [index, spec] of ordered.entries()) {
      const bytes = await fill(spec, index);
      const expected = byteLengthOf(spec);
      if (bytes.byteLength !== expected) {
        throw invalidArgument(`bytes for tensor "${spec.name}"`, `${expected} bytes`, bytes.byteLength);
      }
      yield bytes;
    }
  };
  // stdout or a device (/dev/null) is written through in place: renaming over it would replace the node.
  await assertReplaceable(path);
  if (await isStreamOutput(path)) {
    const stream = await openStreamOutput(path);
    try {
      for await (const bytes of tensors()) await stream.write(bytes);
    } finally {
      await stream.close();
    }
    return;
  }
  const temp = temporaryPath(path);
  let file: FileHandle;
  try {
    file = await open(temp, 'wx');
  } catch (error) {
    throw fileSystemError(error, path, 'write');
  }
  try {
    for await (const bytes of tensors()) await writeAll(file, bytes);
    await file.close();
    await rename(temp, path);
  } catch (error) {
    await file.close().catch(() => undefined); // already closed when rename failed
    await rm(temp, { force: true });
    throw asFileSystemError(error, path, 'write');
  }
}

/**
 * Builds the 8-byte length plus JSON header for `specs`: tensors sorted by name and laid out
 * back to back, `__metadata__` first, padded with spaces so the data section starts 8-aligned.
 * Returns the header bytes and the specs in file order.
 */
export function encodeSafetensorsHeader(specs: readonly SafetensorsSpec[], metadata: Record<string, string> = {}): { header: Uint8Array; ordered: SafetensorsSpec[] } {
  const ordered = [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // No prototype, so names like "__proto__" or "toString" are plain keys.
  const json: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw invalidArgument(`safetensors metadata "${key}"`, 'a string', typeof value);
    }
    json[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const spec of ordered) {
    if (spec.name === METADATA_KEY) throw invalidArgument('tensor name', 'anything but "__metadata__"', spec.name);
    if (Object.hasOwn(json, spec.name)) throw invalidArgument('tensor names', 'unique names', `"${spec.name}" twice`);
    if (!spec.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalidArgument(`shape of tensor "${spec.name}"`, 'non-negative integers', [...spec.shape]);
    }
    const end = offset + byteLengthOf(spec);
    json[spec.name] = { dtype: spec.dtype, shape: spec.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil(text.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20); // spaces are valid JSON whitespace
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  return { header, ordered };
}

const byteLengthOf = (spec: SafetensorsSpec): number => numel(spec.shape) * SAFETENSORS_BYTES[spec.dtype];

const NOT_SAFETENSORS = 'the file is truncated or not safetensors';

const tooShort = (path: string, size: number): VitgraphError => invalidFile(path, `expected at least 8 bytes (header length), got ${size}`, NOT_SAFETENSORS);

/** Validates the 8-byte length prefix against the file size; returns the header length N. */
function checkHeaderLength(path: string, prefix: Uint8Array, fileSize: number): number {
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  const hint = NOT_SAFETENSORS;
  if (length === 0n) throw invalidFile(path, 'expected a header length above 0, got 0', hint);
  // The length is the file's first 8 bytes: never echoed, so a misdirected path (say a file
  // outside the checkpoint) does not leak its content into an error message.
  if (length > BigInt(MAX_HEADER_BYTES)) throw invalidFile(path, `expected a header length of at most ${MAX_HEADER_BYTES} bytes, got more`, hint);
  if (length > BigInt(fileSize - 8)) throw invalidFile(path, `expected a header length within the ${fileSize}-byte file, got one running past its end`, hint);
  return Number(length);
}

/** Parses and checks the JSON header; every offset is checked against the data section. */
function parseHeader(path: string, json: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + json.byteLength;
  const dataSize = fileSize - dataStart;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw invalidFile(path, 'expected a UTF-8 JSON header, got bytes that are not UTF-8', 'the file is corrupt or not safetensors');
  }
  const parsed = parseJsonFile(text, path, 'the header');
  // JSON.parse keeps the last of two equal keys; a header that names a tensor twice is lying.
  const duplicate = firstDuplicateKey(text);
  if (duplicate) {
    const where = duplicate.parent === undefined ? 'the header' : `"${duplicate.parent}"`;
    throw invalidFile(path, `expected unique keys, got "${duplicate.key}" twice in ${where}`, 'the header is corrupt');
  }
  if (!isRecord(parsed)) throw invalidFile(path, `expected the header to be a JSON object, got ${describeJson(parsed)}`);

  let metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(parsed)) {
    if (name === METADATA_KEY) {
      if (!isRecord(value)) throw invalidFile(path, `expected "__metadata__" to be an object, got ${describeJson(value)}`);
      for (const [key, text] of Object.entries(value)) {
        if (typeof text !== 'string') throw invalidFile(path, `expected "__metadata__"."${key}" to be a string, got ${describeJson(text)}`);
      }
      metadata = Object.fromEntries(Object.entries(value as Record<string, string>));
      continue;
    }
    const { begin, ...entry } = parseEntry(path, name, value, dataSize);
    entries.set(name, { ...entry, offset: dataStart + begin, file: path });
  }

  // Ranges sorted by start must not overlap (empty tensors occupy nothing and cannot overlap).
  const ranges = [...entries.values()].filter((e) => e.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < ranges.length; i++) {
    const [before, after] = [ranges[i - 1]!, ranges[i]!];
    if (after.offset < before.offset + before.byteLength) {
      throw invalidFile(path, `tensors "${before.name}" and "${after.name}" have overlapping data_offsets`, 'the header is corrupt');
    }
  }
  return { entries, metadata, dataStart };
}

function parseEntry(path: string, name: string, value: unknown, dataSize: number): Omit<SafetensorsEntry, 'offset' | 'file'> & { begin: number } {
  const bad = (problem: string): VitgraphError => invalidFile(path, `tensor "${name}": ${problem}`, 'the header is corrupt');
  if (!isRecord(value)) throw bad(`expected an object with dtype, shape and data_offsets, got ${describeJson(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (dtype === undefined || shape === undefined || offsets === undefined) {
    const missing = (['dtype', 'shape', 'data_offsets'] as const).filter((k) => value[k] === undefined);
    throw bad(`missing ${missing.join(', ')}`);
  }
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_BYTES)) {
    throw bad(`expected dtype one of ${Object.keys(SAFETENSORS_BYTES).join(', ')}, got ${describeJson(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`expected shape to be a list of non-negative integers, got ${describeJson(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw bad(`expected data_offsets to be [begin, end] non-negative integers, got ${describeJson(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`expected data_offsets begin ≤ end, got [${begin}, ${end}]`);
  if (end > dataSize) throw bad(`data_offsets end ${end} is beyond the ${dataSize}-byte data section (file truncated?)`);
  const safeDType = dtype as SafetensorsDType;
  const expected = numel(shape as number[]) * SAFETENSORS_BYTES[safeDType];
  if (expected !== end - begin) {
    throw bad(`expected ${expected} bytes for ${safeDType} ${formatShape(shape as number[])}, got data_offsets spanning ${end - begin}`);
  }
  return { name, dtype: safeDType, shape: shape as number[], byteLength: end - begin, begin };
}

/** Opens a regular file for reading (ENOENT is not_found; a FIFO or device is refused unopened). */
export async function openExisting(path: string, what: string): Promise<FileHandle> {
  return openRegularFile(path, what);
}

/** Reads exactly `length` bytes at `position` into a fresh buffer; a short read means the file shrank. */
export async function readExactly(file: FileHandle, path: string, position: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(bytes, done, length - done, position + done);
    if (bytesRead === 0) throw invalidFile(path, `expected ${length} bytes at offset ${position}, got ${done} before the end of the file`, 'the file was truncated');
    done += bytesRead;
  }
  return bytes;
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await file.write(bytes, done, bytes.byteLength - done);
    done += bytesWritten;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function describeJson(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
