// The exported package: a directory with the dynamic graph, one padded graph per bucket,
// one shared weights file they all reference, and a `vitgraph.json` manifest.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidFile, notFound } from '../../src/errors.js';
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
  const manifestPath = join(dir, MANIFEST);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('package manifest', manifestPath, 'Export a package with `vitgraph export --out <dir>`');
    throw invalidFile(manifestPath, `not valid JSON (${(error as Error).message})`);
  }
  if (manifest.format !== FORMAT || manifest.formatVersion !== FORMAT_VERSION) {
    throw invalidFile(manifestPath, `expected format ${FORMAT} version ${FORMAT_VERSION}, got ${String(manifest.format)} version ${String(manifest.formatVersion)}`, 'Re-export the package with this vitgraph');
  }
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
