// The exported package: a directory with the dynamic graph, one padded graph per bucket,
// one shared weights file they all reference, and a `vitgraph.json` manifest.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidFile, notFound } from '../../src/errors.js';
import { requirePath } from '../../src/fs/confined.js';
import { parseConfig, type VisionConfig } from './config.js';
import type { Bucket } from './padded.js';

export const MANIFEST = 'vitgraph.json';
export const FORMAT = 'vitgraph.package';
export const FORMAT_VERSION = 1;

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
  readonly model: 'qwen3-vl-vision';
  readonly dtype: 'float32' | 'float16';
  readonly opset: number;
  /** The tower's config as upstream names it. */
  readonly config: Record<string, unknown>;
  readonly weights?: FileEntry;
  readonly graphs: readonly GraphEntry[];
}

export interface ModelPackage {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly config: VisionConfig;
  readonly dynamic?: string; // path of the dynamic graph
  /** Padded graphs, smallest bucket first. */
  readonly buckets: readonly (Bucket & { readonly path: string })[];
}

export async function fileEntry(dir: string, file: string): Promise<FileEntry> {
  const path = join(dir, file);
  return { file, bytes: (await stat(path)).size, sha256: await sha256(path) };
}

export async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Reads and checks a package directory (files present with their recorded sizes). */
export async function openPackage(dir: string, options: { verifyChecksums?: boolean } = {}): Promise<ModelPackage> {
  const manifestPath = join(requirePath(dir, 'package directory'), MANIFEST);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('package manifest', manifestPath, 'Export a package with `vitgraph export --out <dir>`');
    throw invalidFile(manifestPath, `not valid JSON (${(error as Error).message})`);
  }
  const manifest = checkManifestShape(manifestPath, parsed);
  const files = [...manifest.graphs, ...(manifest.weights ? [manifest.weights] : [])];
  for (const entry of files) {
    const path = join(dir, entry.file);
    const size = await stat(path).then(
      (s) => s.size,
      () => undefined,
    );
    if (size === undefined) throw notFound(`package file ${entry.file}`, path);
    if (size !== entry.bytes) throw invalidFile(path, `expected ${entry.bytes} bytes (per ${MANIFEST}), got ${size}`, 'The package is incomplete or was modified; re-export it');
    if (options.verifyChecksums && (await sha256(path)) !== entry.sha256) {
      throw invalidFile(path, `sha256 differs from ${MANIFEST}`, 'The package was modified; re-export it');
    }
  }
  const dynamic = manifest.graphs.find((g) => g.variant === 'dynamic');
  const buckets = manifest.graphs
    .flatMap((g) => (g.variant === 'padded' ? [{ maxPatches: g.maxPatches, maxItems: g.maxItems, path: join(dir, g.file) }] : []))
    .sort((a, b) => a.maxPatches - b.maxPatches);
  return { dir, manifest, config: parseConfig(manifest.config), ...(dynamic ? { dynamic: join(dir, dynamic.file) } : {}), buckets };
}

/** Checks every field openPackage reads, so a hand-edited manifest fails as invalid_file naming the field. */
function checkManifestShape(manifestPath: string, value: unknown): Manifest {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw invalidFile(manifestPath, `${field}: expected ${expected}, got ${JSON.stringify(got) ?? typeof got}`, 'The package is damaged; re-export it');
  };
  const record = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!record(value)) return bad('(root)', 'a JSON object', value);
  if (value.format !== FORMAT || value.formatVersion !== FORMAT_VERSION) {
    throw invalidFile(manifestPath, `expected format ${FORMAT} version ${FORMAT_VERSION}, got ${String(value.format)} version ${String(value.formatVersion)}`, 'Re-export the package with this vitgraph');
  }
  if (!record(value.config)) bad('config', 'an object (the vision config)', value.config);
  const count = (field: string, v: unknown, min: number): void => {
    if (!Number.isSafeInteger(v) || (v as number) < min) bad(field, `an integer ≥ ${min}`, v);
  };
  const fileEntry = (field: string, entry: unknown): void => {
    if (!record(entry)) return bad(field, 'an object with file, bytes and sha256', entry);
    if (typeof entry.file !== 'string' || entry.file.length === 0) bad(`${field}.file`, 'a file name', entry.file);
    count(`${field}.bytes`, entry.bytes, 0);
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) bad(`${field}.sha256`, '64 lowercase hex digits', entry.sha256);
  };
  if (value.weights !== undefined) fileEntry('weights', value.weights);
  if (!Array.isArray(value.graphs) || value.graphs.length === 0) return bad('graphs', 'a non-empty list of graph entries', value.graphs);
  value.graphs.forEach((graph: unknown, i) => {
    fileEntry(`graphs[${i}]`, graph);
    const { variant, maxPatches, maxItems } = graph as Record<string, unknown>;
    if (variant !== 'dynamic' && variant !== 'padded') bad(`graphs[${i}].variant`, '"dynamic" or "padded"', variant);
    if (variant === 'padded') {
      count(`graphs[${i}].maxPatches`, maxPatches, 1);
      count(`graphs[${i}].maxItems`, maxItems, 1);
    }
  });
  return value as unknown as Manifest;
}
