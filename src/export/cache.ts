// The export cache: Hugging Face checkpoints exported on first use, one package per
// (checkpoint content, dtype). The dynamic graph and every bucket graph of an entry share one
// weights file, so a checkpoint is on disk once whatever graphs were asked for; asking for
// buckets an entry lacks re-exports it with the union of its graphs (atomically, see export.ts).
//
// Entries are keyed by content, not path or mtime: the bytes of config.json and
// preprocessor_config.json, each vision tensor's name, dtype, shape, file and offset, and the sha256
// of every vision tensor's bytes (all that reaches the graph; a full VLM's language model is skipped). Copying or moving a checkpoint hits the same
// entry; a fine-tune with the same shapes, or a file edited in place, gets its own. A file's hash
// is stamped under `.hashes/` with its state (src/fs/stamp.ts), so it is computed once per version.

import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VitgraphError, invalidArgument, invalidFile } from '../errors.js';
import { readRegularHead } from '../fs/confined.js';
import type { Device, Precision } from '../contract.js';
import { resolveHubModel } from '../fs/hub.js';
import { fileState, readStamp, sameState, sha256File, writeStamp, type ByteRange, type FileState } from '../fs/stamp.js';
import { fileSystemError, onFileSystem } from '../fs/system-errors.js';
import { parseTemporary } from '../fs/temporary.js';
import type { ModelRegistry } from '../model.js';
import { VITGRAPH_VERSION } from '../version.js';
import { Checkpoint } from '../weights/checkpoint.js';
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
  /** Bytes hashed so far and in all, the first time a checkpoint's weights are hashed for its key. */
  onHashProgress?: ((done: number, total: number) => void) | undefined;
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
  checkpointDir = await resolveHubModel(checkpointDir);
  const content = await checkpointContent(checkpointDir, options);
  const dir = join(root, `${content.key}-${entrySuffix(options)}`);
  const wanted = options.buckets ?? [];
  const present = await cachedBuckets(dir);
  if (present && wanted.every((b) => present.includes(b))) {
    await touch(dir);
    return dir;
  }
  await onFileSystem(
    root,
    'write the export cache in',
    async () => {
      await mkdir(root, { recursive: true });
      // An entry that is no complete package (damaged, or from a killed export) is vitgraph's to remove.
      if (!present && (await lstat(dir).catch(() => undefined))) await rm(dir, { recursive: true, force: true });
    },
    CACHE_REMEDY,
  );
  const buckets = [...new Set([...(present ?? []), ...wanted])].sort((a, b) => a - b);
  try {
    await exportModel(models, {
      model: checkpointDir,
      out: dir,
      dtype,
      device: options.device,
      maxPatches: buckets,
      overwrite: true,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } catch (error) {
    throw error instanceof VitgraphError && error.code === 'file_system' ? fileSystemError(error.cause, root, 'write the export cache in', CACHE_REMEDY) : error;
  }
  // The bytes exported must be the bytes hashed: a checkpoint rewritten meanwhile leaves no entry under the old key.
  if (!(await unchanged(content.files))) {
    await rm(dir, { recursive: true, force: true });
    throw invalidFile(checkpointDir, 'expected the checkpoint to stay the same while it was exported, got files that changed', 'Load it again once it is no longer being written');
  }
  return dir;
}

const CACHE_REMEDY = 'Pass --cache-dir (cacheDir) or set VITGRAPH_CACHE to a writable directory with free space, or free space there';

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

export interface CheckpointContentOptions extends CacheOptions {
  /** Bytes hashed so far and in all, when some checkpoint file has no valid hash stamp yet. */
  onHashProgress?: ((done: number, total: number) => void) | undefined;
}

/** A key for every byte of `dir` that reaches the graph (see the head of this file). */
export async function checkpointKey(dir: string, options: CheckpointContentOptions = {}): Promise<string> {
  return (await checkpointContent(dir, options)).key;
}

interface CheckpointContent {
  readonly key: string;
  /** Every file the key covers, with its state when hashed. */
  readonly files: readonly { readonly path: string; readonly state: FileState }[];
}

async function checkpointContent(dir: string, options: CheckpointContentOptions): Promise<CheckpointContent> {
  const hash = createHash('sha256').update(`vitgraph ${VITGRAPH_VERSION}\n`);
  const files: { path: string; state: FileState }[] = [];
  for (const name of ['config.json', 'preprocessor_config.json']) {
    const path = join(dir, name);
    const state = await fileState(path).catch((error: unknown) => {
      if (name === 'config.json' || !(error instanceof VitgraphError && error.code === 'not_found')) throw error;
    });
    hash.update(`${name}\0`);
    if (!state) continue;
    hash.update(await readRegularHead(path, MAX_CONFIG_BYTES, name));
    files.push({ path, state });
  }
  const checkpoint = await Checkpoint.open(dir);
  const tensors = [...checkpoint.tensors.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  const weightFiles = [...new Set(tensors.map((t) => t.file))].sort();
  for (const t of tensors) hash.update(`${t.key}\0${t.dtype}\0${t.shape.join(',')}\0${weightFiles.indexOf(t.file)}\0${t.offset}\0`);
  // Only the vision tensors' bytes reach the graph: a VLM file's language model is not read.
  const sources = weightFiles.map((path) => ({
    path,
    ranges: tensors
      .filter((t) => t.file === path)
      .map((t): ByteRange => [t.offset, t.byteLength])
      .sort((a, b) => a[0] - b[0]),
  }));
  const digests = await weightDigests(sources, join(cacheRoot(options), HASH_STAMPS), options.onHashProgress);
  for (const [i, path] of weightFiles.entries()) {
    hash.update(`${digests[i]!.sha256}\0`);
    files.push({ path, state: digests[i]!.state });
  }
  return { key: hash.digest('hex').slice(0, 20), files };
}

const MAX_CONFIG_BYTES = 1 << 24;
/** Per-file hash stamps, inside the cache root (`.`: never listed as an entry). */
const HASH_STAMPS = '.hashes';

/**
 * Each file's sha256 over its vision tensors' byte ranges: from its stamp when the file's state
 * and the ranges are the stamped ones, else hashed (with progress) and stamped.
 */
async function weightDigests(
  sources: readonly { path: string; ranges: readonly ByteRange[] }[],
  stampDir: string,
  onProgress: CheckpointContentOptions['onHashProgress'],
): Promise<{ sha256: string; state: FileState }[]> {
  const known = await Promise.all(
    sources.map(async ({ path, ranges }) => {
      const state = await fileState(path);
      const stampPath = join(stampDir, `${state.dev}-${state.ino}.json`);
      const ranged = createHash('sha256').update(JSON.stringify(ranges)).digest('hex');
      const stamp = (await readStamp(stampPath)) as { state?: FileState; ranges?: unknown; sha256?: unknown } | undefined;
      const sha256 = stamp?.state && sameState(stamp.state, state) && stamp.ranges === ranged && typeof stamp.sha256 === 'string' ? stamp.sha256 : undefined;
      return { path, ranges, ranged, state, stampPath, sha256, bytes: ranges.reduce((sum, [, length]) => sum + length, 0) };
    }),
  );
  const total = known.reduce((sum, k) => sum + (k.sha256 ? 0 : k.bytes), 0);
  let done = 0;
  if (total > 0) onProgress?.(0, total);
  return Promise.all(
    known.map(async (k) => {
      if (k.sha256) return { sha256: k.sha256, state: k.state };
      const sha256 = await sha256File(k.path, 'checkpoint weights', (bytes) => onProgress?.((done += bytes), total), k.ranges);
      if (!sameState(await fileState(k.path), k.state))
        throw invalidFile(k.path, 'expected the file to stay the same while it was hashed, got one that changed', 'Load it again once it is no longer being written');
      await mkdir(stampDir, { recursive: true }).catch(() => undefined);
      await writeStamp(k.stampPath, { state: k.state, ranges: k.ranged, sha256 });
      return { sha256, state: k.state };
    }),
  );
}

async function unchanged(files: CheckpointContent['files']): Promise<boolean> {
  for (const { path, state } of files) {
    const now = await fileState(path).catch(() => undefined);
    if (!now || !sameState(now, state)) return false;
  }
  return true;
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
  if (options.olderThanMs === undefined) await rm(join(root, HASH_STAMPS), { recursive: true, force: true }); // a full clear leaves nothing
  return { removed, bytes };
}

/** Temporaries whose entry never completed (no entry directory to scan from). */
async function removeStaleEntries(root: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const temporary = parseTemporary(name);
    if (temporary) removed.push(...(await removeStaleTemporaries(join(root, temporary.name))));
  }
  return removed;
}
