// Stamps: what a slow check (a sha256 of gigabytes) found, recorded with the state of the files it
// read, so the check reruns only when a file changed. A file's state is its device, inode, size,
// mtime and ctime in nanoseconds: ctime cannot be set from user space, so restoring mtime after
// editing bytes in place still forces a new check. Packages stamp their verification this way, and
// the export cache stamps each checkpoint file's hash.

import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { openRegularFile, readRegularHead } from './confined.js';
import { parseJsonFile } from './json.js';
import { fileSystemError } from './system-errors.js';
import { temporaryPath } from './temporary.js';

/** Device, inode, size, mtime and ctime (ns) as decimal strings: equal states mean unchanged bytes. */
export interface FileState {
  readonly dev: string;
  readonly ino: string;
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
}

export function stateOf(info: BigIntStats): FileState {
  return { dev: String(info.dev), ino: String(info.ino), size: String(info.size), mtimeNs: String(info.mtimeNs), ctimeNs: String(info.ctimeNs) };
}

/** The state of the file `path` leads to (symbolic links followed). */
export async function fileState(path: string): Promise<FileState> {
  try {
    return stateOf(await stat(path, { bigint: true }));
  } catch (error) {
    throw fileSystemError(error, path, 'read');
  }
}

export const sameState = (a: FileState, b: FileState): boolean => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

/** Stamps are small; anything larger is not one of ours. */
const MAX_STAMP_BYTES = 1 << 20;

/** A stamp's recorded value, or undefined when there is none or it cannot be read (a FIFO, a directory, bad JSON): then the check just runs. */
export async function readStamp(path: string): Promise<unknown> {
  try {
    const bytes = await readRegularHead(path, MAX_STAMP_BYTES + 1, 'stamp');
    if (bytes.length > MAX_STAMP_BYTES) return undefined;
    return parseJsonFile(Buffer.from(bytes).toString('utf8'), path, 'stamp');
  } catch {
    return undefined;
  }
}

/** Records `value` at `path` atomically; a read-only place is left unstamped (the check reruns next time). */
export async function writeStamp(path: string, value: unknown): Promise<void> {
  const tmp = temporaryPath(path);
  await writeFile(tmp, JSON.stringify(value), { flag: 'wx' })
    .then(() => rename(tmp, path))
    .catch(() => rm(tmp, { force: true }));
}

/** A byte range of a file: [offset, length]. */
export type ByteRange = readonly [offset: number, length: number];

/**
 * sha256 of a regular file's bytes (never a FIFO or a device: refused unopened): all of them, or
 * only `ranges` in the order given. `onBytes` sees each chunk's size.
 */
export async function sha256File(path: string, what: string, onBytes?: (bytes: number) => void, ranges?: readonly ByteRange[]): Promise<string> {
  const hash = createHash('sha256');
  const file = await openRegularFile(path, what);
  try {
    const buffer = Buffer.allocUnsafe(8 << 20);
    for (const [offset, length] of ranges ?? [[0, Number.POSITIVE_INFINITY] as const]) {
      for (let done = 0; done < length; ) {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, length - done), offset + done);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        onBytes?.(bytesRead);
        done += bytesRead;
      }
    }
  } catch (error) {
    throw fileSystemError(error, path, 'read');
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}
