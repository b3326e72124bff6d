// Paths that come out of files (a shard index's weight_map, a package manifest) are untrusted:
// they must stay inside the directory that holds the file, and only regular files are opened,
// so a listed FIFO or device can neither hang a read nor stand in for data.

import { constants, type Stats } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative as relativeTo } from 'node:path';
import { VitgraphError, invalidArgument, notFound } from '../errors.js';
import { hubBlobsOf } from './hub-layout.js';
import { fileSystemError } from './system-errors.js';

/** A path argument of the public API: a non-empty string (numbers would be taken as fds by node:fs). */
export function requirePath(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    throw invalidArgument(what, 'a file path (a non-empty string)', typeof value === 'string' ? value : typeof value);
  }
  return value;
}

/**
 * Resolves `relative` (as written in a file inside `dir`) to its real path, which must lie inside
 * the real `dir`: no absolute path, no `..` segment, and no symbolic link leading out.
 * Missing targets are not_found; every escape is invalid_file naming `what`.
 */
export async function confinedPath(dir: string, relative: string, what: string): Promise<string> {
  const refuse = (problem: string): VitgraphError =>
    new VitgraphError('invalid_file', `${what}: expected a relative path inside ${dir}, got ${describePath(relative)}${problem}`, { path: relative, dir });
  if (typeof relative !== 'string' || relative.length === 0 || relative.includes('\0')) throw refuse('');
  // Windows forms too: a drive letter or a leading backslash is absolute on some machine.
  if (isAbsolute(relative) || /^[A-Za-z]:/.test(relative) || relative.startsWith('\\')) throw refuse(' (an absolute path)');
  if (relative.split(/[\\/]/).includes('..')) throw refuse(' (a ".." segment)');
  const root = await realpathOf(dir, `directory of ${what}`);
  const real = await realpathOf(join(root, relative), what);
  if (isInside(root, real)) return real;
  // A hub snapshot's files are links into the same repository's blobs/: that far, and no further.
  const blobs = hubBlobsOf(root);
  const realBlobs = blobs && (await realpath(blobs).catch(() => undefined));
  if (realBlobs && isInside(realBlobs, real)) return real;
  const rule = realBlobs ? ` or, through a link, inside its Hugging Face repository's ${realBlobs}` : '';
  throw new VitgraphError(
    'invalid_file',
    `${what}: expected a relative path inside ${dir}${rule}, got ${describePath(relative)} (a symbolic link resolving to ${real}, outside the model repository)`,
    { path: relative, dir },
  );
}

function isInside(root: string, path: string): boolean {
  const inside = relativeTo(root, path);
  return !(inside === '..' || inside.startsWith('../') || isAbsolute(inside));
}

/**
 * Opens `path` for reading if it is a regular file. The kind is checked before opening, and the
 * open is non-blocking, so a FIFO swapped in between cannot hang; the opened handle is checked again.
 */
export async function openRegularFile(path: string, what: string): Promise<FileHandle> {
  await regularFileStats(path, what);
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw openError(error, path, what);
  }
  const opened = await file.stat();
  if (!opened.isFile()) {
    await file.close();
    throw notRegular(path, what, opened);
  }
  return file;
}

/** The stats of `path` (symbolic links followed) if it is a regular file; not_found or invalid_file otherwise. */
export async function regularFileStats(path: string, what: string): Promise<Stats> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    throw openError(error, path, what);
  }
  if (!info.isFile()) throw notRegular(path, what, info);
  return info;
}

/** A regular file's whole content. */
export async function readRegularFile(path: string, what: string): Promise<Buffer> {
  const file = await openRegularFile(path, what);
  try {
    return await file.readFile();
  } finally {
    await file.close();
  }
}

/** The first `length` bytes of a regular file (fewer if it is shorter). */
export async function readRegularHead(path: string, length: number, what: string): Promise<Uint8Array> {
  const file = await openRegularFile(path, what);
  try {
    const buffer = new Uint8Array(length);
    const { bytesRead } = await file.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** A regular file's whole content as UTF-8 text. */
export async function readRegularText(path: string, what: string): Promise<string> {
  return (await readRegularFile(path, what)).toString('utf8');
}

async function realpathOf(path: string, what: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    throw openError(error, path, what);
  }
}

function openError(error: unknown, path: string, what: string): VitgraphError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(what, path);
  return fileSystemError(error, path, 'read'); // the path names the file; ELOOP, EACCES, EMFILE, ...
}

function notRegular(path: string, what: string, info: Stats): VitgraphError {
  return new VitgraphError('invalid_file', `${path}: expected ${what} to be a regular file, got ${kindOf(info)}`, { path, kind: kindOf(info) });
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isSocket()) return 'a socket';
  return 'a special file';
}

function describePath(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}
