// The export cache: Hugging Face checkpoints exported on first use, one package per
// (checkpoint content, dtype). The dynamic graph and every bucket graph of an entry share one
// weights file, so a checkpoint is on disk once whatever graphs were asked for; asking for
// buckets an entry lacks re-exports it with the union of its graphs (atomically, see export.ts).
//
// Entries are keyed by content, not path or mtime: the bytes of config.json (and
// preprocessor_config.json / the shard index) plus each safetensors file's name, size and
// header bytes (names, dtypes, shapes, offsets). Copying or moving a checkpoint hits the same entry.

import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { invalidArgument } from '../errors.js';
import { readRegularHead } from '../fs/confined.js';
import type { Device, Precision } from '../contract.js';
import type { ModelRegistry } from '../model.js';
import { VITGRAPH_VERSION } from '../version.js';
import { exportModel, removeStaleTemporaries } from './export.js';
import { openPackage, type Manifest } from '../runtime/package.js';

export interface CacheOptions {
  /** Cache root (default $VITGRAPH_CACHE, else $XDG_CACHE_HOME/vitgraph, else ~/.cache/vitgraph). */
  cacheDir?: string | undefined;
}

export function cacheRoot(options: CacheOptions = {}): string {
  return options.cacheDir ?? process.env.VITGRAPH_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vitgraph');
}

export interface CachedExportOptions extends CacheOptions {
  dtype?: Precision | undefined;
  /** 'cuda': graphs exported for CUDA (bfloat16, float32 buckets on the bias form), cached apart from the CPU ones. */
  device?: Device | undefined;
  /** Bucket sizes the caller needs (none: the dynamic graph is enough). */
  buckets?: readonly number[] | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

/** Exports in flight in this process, by entry: concurrent first loads share one export. */
const inFlight = new Map<string, Promise<string>>();

/** The cached package for `checkpointDir`, exported (or widened to more buckets) when needed. */
export async function cachedExport(models: ModelRegistry, checkpointDir: string, options: CachedExportOptions = {}): Promise<string> {
  const key = `${cacheRoot(options)}\0${checkpointDir}\0${entrySuffix(options)}`;
  for (;;) {
    const running = inFlight.get(key);
    if (!running) break;
    await running.catch(() => undefined);
  }
  const run = ensureEntry(models, checkpointDir, options);
  inFlight.set(key, run);
  try {
    return await run;
  } finally {
    inFlight.delete(key);
  }
}

async function ensureEntry(models: ModelRegistry, checkpointDir: string, options: CachedExportOptions): Promise<string> {
  const root = cacheRoot(options);
  const dtype = options.dtype ?? 'float32';
  const dir = join(root, `${await checkpointKey(checkpointDir)}-${entrySuffix(options)}`);
  const wanted = options.buckets ?? [];
  const present = await cachedBuckets(dir);
  if (present && wanted.every((b) => present.includes(b))) {
    await touch(dir);
    return dir;
  }
  await mkdir(root, { recursive: true });
  const buckets = [...new Set([...(present ?? []), ...wanted])].sort((a, b) => a - b);
  await exportModel(models, { model: checkpointDir, out: dir, dtype, device: options.device, maxPatches: buckets, overwrite: true, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  return dir;
}

/** An entry's name after the checkpoint key: the dtype, and `-cuda` for the CUDA form. */
const entrySuffix = (options: CachedExportOptions): string => `${options.dtype ?? 'float32'}${options.device === 'cuda' ? '-cuda' : ''}`;

/** The bucket sizes of a complete cache entry, or undefined when there is none (or it is from another version, or damaged: re-exported over). */
async function cachedBuckets(dir: string): Promise<number[] | undefined> {
  const manifest = await readManifestQuietly(dir);
  return manifest && bucketsOf(manifest);
}

const bucketsOf = (manifest: Manifest): number[] => manifest.graphs.flatMap((g) => (g.variant === 'padded' ? [g.maxPatches] : []));

/** Records use (the entry directory's mtime) for `cache list` and `clear --older-than`. */
async function touch(dir: string): Promise<void> {
  const now = new Date();
  await utimes(dir, now, now).catch(() => undefined);
}

/** A key for the checkpoint's content: config bytes, and each weight file's name, size and header. */
export async function checkpointKey(dir: string): Promise<string> {
  const hash = createHash('sha256').update(`vitgraph ${VITGRAPH_VERSION}\n`);
  const names = (await readdir(dir)).filter((n) => n === 'config.json' || n === 'preprocessor_config.json' || n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json')).sort();
  for (const name of names) {
    const path = join(dir, name);
    const info = await lstat(path);
    if (!info.isFile()) continue; // links, FIFOs and directories are refused when the checkpoint is opened
    hash.update(`${name}\0${info.size}\0`);
    hash.update(name.endsWith('.safetensors') ? await safetensorsHeaderBytes(path, info.size) : await readRegularHead(path, Math.min(info.size, 1 << 24), name));
  }
  return hash.digest('hex').slice(0, 20);
}

/** The 8-byte length and the JSON header of a safetensors file (what names its tensors). */
async function safetensorsHeaderBytes(path: string, size: number): Promise<Uint8Array> {
  const head = await readRegularHead(path, Math.min(size, 8), 'checkpoint shard');
  if (head.length < 8) return head;
  const length = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  return readRegularHead(path, Math.min(size, 8 + Math.min(length, 1 << 27)), 'checkpoint shard');
}

export interface CacheEntry {
  readonly path: string;
  readonly bytes: number;
  readonly model: string;
  readonly dtype: string;
  readonly buckets: readonly number[];
  readonly lastUsed: Date;
}

/** Complete entries, largest first. Temporaries of running exports are not listed. */
export async function listCache(options: CacheOptions = {}): Promise<CacheEntry[]> {
  const root = cacheRoot(options);
  const entries: CacheEntry[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    const path = join(root, name);
    const manifest = await readManifestQuietly(path);
    if (!manifest) continue;
    const files = await readdir(path);
    let bytes = 0;
    for (const f of files) bytes += (await lstat(join(path, f))).size;
    entries.push({
      path,
      bytes,
      model: manifest.model,
      dtype: manifest.dtype,
      buckets: bucketsOf(manifest),
      lastUsed: (await stat(path)).mtime,
    });
  }
  return entries.sort((a, b) => b.bytes - a.bytes);
}

async function readManifestQuietly(dir: string): Promise<Manifest | undefined> {
  try {
    return (await openPackage(dir, { verify: false })).manifest;
  } catch {
    return undefined;
  }
}

/**
 * Removes entries last used more than `olderThanMs` ago (all when omitted), and temporaries that
 * killed exports left behind. Returns what was removed and the bytes freed.
 */
export async function clearCache(options: CacheOptions & { olderThanMs?: number | undefined } = {}): Promise<{ removed: string[]; bytes: number }> {
  if (options.olderThanMs !== undefined && !(options.olderThanMs >= 0)) throw invalidArgument('older than', 'a duration ≥ 0', options.olderThanMs);
  const root = cacheRoot(options);
  const cutoff = Date.now() - (options.olderThanMs ?? 0);
  const removed: string[] = [];
  let bytes = 0;
  for (const entry of await listCache(options)) {
    if (options.olderThanMs !== undefined && entry.lastUsed.getTime() > cutoff) continue;
    await rm(entry.path, { recursive: true, force: true });
    removed.push(entry.path);
    bytes += entry.bytes;
  }
  removed.push(...(await removeStaleEntries(root)));
  return { removed, bytes };
}

/** Temporaries whose entry never completed (no entry directory to scan from). */
async function removeStaleEntries(root: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const match = /^\.(.+)\.vitgraph-(?:tmp|old)-/.exec(name);
    if (match) removed.push(...(await removeStaleTemporaries(join(root, match[1]!))));
  }
  return removed;
}
