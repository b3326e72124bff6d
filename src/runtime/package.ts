// The exported package: a directory with the dynamic graph, one padded graph per bucket, one
// shared weights file they all reference, and a `vitgraph.json` manifest recording the model id,
// its I/O contract, and the size and sha256 of every file.
//
// Opening verifies every file against the manifest. Hashing 1.5 GB takes seconds, so a verified
// state (device, inode, size, mtime, ctime of each file; src/fs/stamp.ts) is stamped beside the
// manifest and later opens re-hash only when a file's state changed.

import { lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidFile, notFound } from '../errors.js';
import { readRegularHead, requirePath } from '../fs/confined.js';
import { parseJsonFile } from '../fs/json.js';
import { readStamp, sha256File, stateOf, writeStamp, type FileState } from '../fs/stamp.js';
import { fileSystemError } from '../fs/system-errors.js';
import type { Bucket } from '../model.js';
import { inspectModel, type ModelSummary } from '../onnx/inspect.js';
import { isPrecision, parseEncoderIO, PRECISIONS, type EncoderIO, type Precision } from '../contract.js';

export const MANIFEST = 'vitgraph.json';
export const VERIFIED_STAMP = 'vitgraph.verified.json';
export const FORMAT = 'vitgraph.package';
export const FORMAT_VERSION = 2;

export interface FileEntry {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
}

export type GraphEntry = FileEntry & ({ readonly variant: 'dynamic' } | ({ readonly variant: 'padded' } & Bucket));

export interface Manifest {
  readonly format: typeof FORMAT;
  readonly formatVersion: number;
  readonly vitgraph: string;
  /** The tower's descriptor id, e.g. 'qwen3-vl'. */
  readonly model: string;
  /** The precision, as io.precision records it (written for readers of format version 2). */
  readonly dtype: Precision;
  readonly opset: number;
  /** The tower's config as upstream names it. */
  readonly config: Record<string, unknown>;
  readonly io: EncoderIO;
  readonly weights?: FileEntry | undefined;
  readonly graphs: readonly GraphEntry[];
}

export interface ModelPackage {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly io: EncoderIO;
  readonly dynamic?: string; // path of the dynamic graph
  /** Padded graphs, smallest bucket first. */
  readonly buckets: readonly (Bucket & { readonly path: string })[];
}

export interface OpenPackageOptions {
  /** Check every file's sha256 against the manifest (default true; a valid stamp makes it cheap). */
  verify?: boolean;
}

export async function fileEntry(dir: string, file: string): Promise<FileEntry> {
  const path = join(dir, file);
  return { file, bytes: (await lstat(path)).size, sha256: await sha256(path) };
}

export const sha256 = (path: string): Promise<string> => sha256File(path, 'package file');

/** Reads, checks and (by default) verifies a package directory. */
export async function openPackage(dir: string, options: OpenPackageOptions = {}): Promise<ModelPackage> {
  const manifestPath = join(requirePath(dir, 'package directory'), MANIFEST);
  const manifest = parseManifest(await readManifest(manifestPath), manifestPath);
  const files = [...manifest.graphs, ...(manifest.weights ? [manifest.weights] : [])];
  const states: (FileState & { file: string })[] = [];
  for (const entry of files) {
    const path = join(dir, entry.file);
    const info = await lstat(path, { bigint: true }).catch((error: unknown) => {
      throw (error as NodeJS.ErrnoException).code === 'ENOENT' ? notFound(`package file ${entry.file}`, path) : fileSystemError(error, path, 'read');
    });
    if (!info.isFile()) throw invalidFile(path, 'expected a regular file (a link, directory or device is never opened)');
    if (info.size !== BigInt(entry.bytes)) throw invalidFile(path, `expected ${entry.bytes} bytes (per ${MANIFEST}), got ${info.size}`, 'The package is incomplete or was modified; re-export it');
    states.push({ file: entry.file, ...stateOf(info) });
  }
  if (options.verify !== false) await verify(dir, files, states);
  const dynamic = manifest.graphs.find((g) => g.variant === 'dynamic');
  const buckets = manifest.graphs
    .flatMap((g) => (g.variant === 'padded' ? [{ maxPatches: g.maxPatches, maxItems: g.maxItems, path: join(dir, g.file) }] : []))
    .sort((a, b) => a.maxPatches - b.maxPatches);
  return { dir, manifest, io: manifest.io, ...(dynamic ? { dynamic: join(dir, dynamic.file) } : {}), buckets };
}

async function readManifest(path: string): Promise<unknown> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) throw notFound('package manifest', path, 'Export a package with `vitgraph export --out <dir>`');
  // Opened as a regular file only (a FIFO swapped in after the lstat is refused, not waited on).
  const bytes = info.isFile() ? await readRegularHead(path, MAX_MANIFEST_BYTES + 1, 'package manifest') : undefined;
  if (!bytes || bytes.length > MAX_MANIFEST_BYTES) throw invalidFile(path, 'expected a regular file of at most 1 MiB');
  return parseJsonFile(Buffer.from(bytes).toString('utf8'), path, 'the manifest');
}

const MAX_MANIFEST_BYTES = 1 << 20;

/** Checks a manifest's every field: it decides which files are opened. */
function parseManifest(json: unknown, path: string): Manifest {
  const bad = (problem: string, hint = 'Re-export the package with this vitgraph'): never => {
    throw invalidFile(path, problem, hint);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return bad('expected a JSON object');
  const m = json as Record<string, unknown>;
  if (m.format !== FORMAT || m.formatVersion !== FORMAT_VERSION) {
    return bad(`expected format ${FORMAT} version ${FORMAT_VERSION}, got ${String(m.format)} version ${String(m.formatVersion)}`);
  }
  if (typeof m.model !== 'string' || typeof m.dtype !== 'string' || !Number.isInteger(m.opset)) return bad('expected string model and dtype and an integer opset');
  if (!isPrecision(m.dtype)) return bad(`dtype: expected one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(m.dtype)}`);
  if (typeof m.config !== 'object' || m.config === null) return bad('config: expected an object');
  if (!Array.isArray(m.graphs) || m.graphs.length === 0 || m.graphs.length > 256) return bad('graphs: expected a non-empty list of graph entries');
  const graphs = m.graphs.map((g: unknown, i: number): GraphEntry => {
    const entry = fileEntryOf(g, `graphs[${i}]`, bad);
    const record = g as Record<string, unknown>;
    if (record.variant === 'dynamic') return { ...entry, variant: 'dynamic' };
    const positive = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 1 << 24;
    if (record.variant !== 'padded' || !positive(record.maxPatches) || !positive(record.maxItems)) {
      return bad(`graphs[${i}]: expected variant "dynamic", or "padded" with positive integer maxPatches and maxItems`);
    }
    return { ...entry, variant: 'padded', maxPatches: record.maxPatches, maxItems: record.maxItems };
  });
  const weights = m.weights === undefined ? undefined : fileEntryOf(m.weights, 'weights', bad);
  return {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    vitgraph: String(m.vitgraph),
    model: m.model,
    dtype: m.dtype,
    opset: m.opset as number,
    config: m.config as Record<string, unknown>,
    io: withPrecision(parseEncoderIO(m.io, path), m.dtype),
    ...(weights ? { weights } : {}),
    graphs,
  };
}

/** A package from before `io.precision` was recorded: its manifest's dtype names the precision. */
const withPrecision = (io: EncoderIO, dtype: Precision): EncoderIO => (io.precision === undefined ? { ...io, precision: dtype } : io);

/** A package file is named by a plain file name: no directories, no `..`, nothing outside the package. */
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function fileEntryOf(json: unknown, where: string, bad: (problem: string) => never): FileEntry {
  const e = json as Record<string, unknown> | null;
  if (typeof e?.file !== 'string' || !PLAIN_NAME.test(e.file) || e.file === MANIFEST || e.file === VERIFIED_STAMP) {
    return bad(`${where}.file: expected a plain file name inside the package, got ${JSON.stringify(e?.file)}`);
  }
  if (!Number.isSafeInteger(e.bytes) || (e.bytes as number) < 0) return bad(`${where}.bytes: expected a byte count`);
  if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) return bad(`${where}.sha256: expected 64 hex digits`);
  return { file: e.file, bytes: e.bytes as number, sha256: e.sha256 };
}

/** Hashes every file unless the stamp shows each one unchanged since it was last verified. */
async function verify(dir: string, files: readonly FileEntry[], states: readonly FileState[]): Promise<void> {
  const stampPath = join(dir, VERIFIED_STAMP);
  const manifestHash = await sha256(join(dir, MANIFEST));
  const stamp = { manifest: manifestHash, files: states };
  if (JSON.stringify(await readStamp(stampPath)) === JSON.stringify(stamp)) return;
  for (const entry of files) {
    const path = join(dir, entry.file);
    if ((await sha256(path)) !== entry.sha256) {
      throw invalidFile(path, `sha256 differs from ${MANIFEST}: the file was modified or corrupted`, 'Re-export the package (or pass --no-verify / verify: false to skip the check at your own risk)');
    }
  }
  await writeStamp(stampPath, stamp); // a read-only package is still verified, just not stamped
}

/** A package directory: its manifest in brief, and each graph's summary (reads no weights). */
export interface PackageSummary {
  dir: string;
  vitgraph: string;
  model: Manifest['model'];
  dtype: Manifest['dtype'];
  /** Quantized Linear layers (e.g. dynamic-int8), absent for float packages. */
  quantization?: string;
  /** 'cuda' for a package exported for CUDA (refused elsewhere); absent: any device. */
  device?: 'cuda';
  opset: number;
  weights?: { file: string; bytes: number };
  graphs: (ModelSummary & { file: string; variant: 'dynamic' | 'padded'; maxPatches?: number; maxItems?: number })[];
}

export async function inspectPackage(dir: string): Promise<PackageSummary> {
  const { manifest } = await openPackage(dir, { verify: false }); // structure only: no weights are read
  const graphs = await Promise.all(
    manifest.graphs.map(async (g) => ({
      file: g.file,
      variant: g.variant,
      ...(g.variant === 'padded' ? { maxPatches: g.maxPatches, maxItems: g.maxItems } : {}),
      ...(await inspectModel(join(dir, g.file))),
    })),
  );
  return {
    dir,
    vitgraph: manifest.vitgraph,
    model: manifest.model,
    dtype: manifest.dtype,
    ...(manifest.io.quantization ? { quantization: manifest.io.quantization } : {}),
    ...(manifest.io.device ? { device: manifest.io.device } : {}),
    opset: manifest.opset,
    ...(manifest.weights ? { weights: { file: manifest.weights.file, bytes: manifest.weights.bytes } } : {}),
    graphs,
  };
}

/** `inspectPackage` for a package directory, `inspectModel` for a .onnx file. */
export async function inspectPath(path: string): Promise<{ kind: 'package'; summary: PackageSummary } | { kind: 'model'; summary: ModelSummary }> {
  const isDir = (await stat(path).catch(() => undefined))?.isDirectory() === true;
  return isDir ? { kind: 'package', summary: await inspectPackage(path) } : { kind: 'model', summary: await inspectModel(path) };
}
