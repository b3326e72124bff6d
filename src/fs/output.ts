// Output paths are checked before any work, and nothing the user did not get from vitgraph is
// ever replaced: a new path is created; an existing regular file or package is replaced only
// when the caller allows it and vitgraph recognises it as its own; a device or pipe is written
// through when that means something (stdout, /dev/null) and refused otherwise; everything else
// (a folder of user files, a symbolic link, a socket) is refused. Errors name the user's path.

import { constants, fstatSync, type Stats } from 'node:fs';
import { lstat, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { invalidArgument, type Remedy } from '../errors.js';
import { fileSystemError } from './system-errors.js';
import { temporaryPath } from './temporary.js';

/** What an existing output is, as found before any work. */
export type OutputState =
  | { readonly kind: 'new' }
  /** An existing regular file or directory that may be replaced (the caller recognised it). */
  | { readonly kind: 'replace' }
  /** A device or stdout: written through, in place, never replaced. */
  | { readonly kind: 'stream' };

export interface OutputCheck {
  /** 'file' (a .onnx, a safetensors) or 'package' (a directory vitgraph fills). */
  readonly shape: 'file' | 'package';
  /** Replace an existing output that vitgraph wrote (export: --force; encode: always). */
  readonly overwrite: boolean;
  /** Whether the existing output at `path` is one vitgraph wrote (a package, a file with vitgraph's metadata). */
  readonly ownedByVitgraph: (path: string, info: Stats) => Promise<boolean>;
  /** A device or stdout may take the bytes (safetensors streams; a .onnx or a package cannot). */
  readonly streamable?: boolean;
  /** Missing parent directories are created by the writer (export), rather than an error. */
  readonly createsParents?: boolean;
}

const FORCE: Remedy = { fixes: [{ option: 'overwrite', action: 'pass' }], then: 'to replace it', otherwise: 'choose another path' };

/** Checks `path` as an output before any work: one-line errors naming it, nothing touched. */
export async function checkOutput(path: string, check: OutputCheck): Promise<OutputState> {
  const refuse = (expected: string, got: string | undefined, hint?: string | Remedy): never => {
    throw invalidArgument('out', expected, got ? `${path} (${got})` : path, hint);
  };
  const link = await lstat(path).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileSystemError(error, path, 'inspect'); // ELOOP through a parent, EACCES, ...
  });
  if (!link) {
    await checkParentWritable(path, check.createsParents === true);
    return { kind: 'new' };
  }
  let loop = false;
  const info = link.isSymbolicLink() ? await stat(path).catch((error: unknown) => void (loop = (error as NodeJS.ErrnoException).code === 'ELOOP')) : link;
  if (info && isStdout(info)) {
    if (check.streamable) return { kind: 'stream' };
    return refuse('a path that can hold a file', 'standard output', 'Write to a file, then copy it');
  }
  if (info?.isCharacterDevice()) {
    if (check.streamable) return { kind: 'stream' }; // /dev/null and the like: written through, never replaced
    return refuse(`a ${check.shape === 'file' ? 'file' : 'directory'} path`, 'a device', 'Choose a path on a file system');
  }
  if (link.isSymbolicLink()) {
    return refuse(
      'a path that is not a symbolic link',
      info ? 'a symbolic link; vitgraph replaces no links' : loop ? 'a symbolic link loop' : 'a dangling symbolic link',
      'Give the path the link points to, or another path',
    );
  }
  if (!info!.isFile() && !info!.isDirectory()) {
    return refuse('a regular file or a new path', info!.isFIFO() ? 'a named pipe' : info!.isSocket() ? 'a socket' : 'a device', 'Write to a file (or, for safetensors, /dev/stdout)');
  }
  if (check.shape === 'file' && info!.isDirectory()) return refuse('a file path', 'a directory', 'Give a file name inside it');
  if (check.shape === 'package' && info!.isFile()) return refuse('a directory for the package', 'an existing file', 'Choose another path; the file is left as it is');
  if (check.shape === 'package' && (await isEmptyDirectory(path))) {
    await checkWritable(path, path);
    return { kind: 'new' };
  }
  if (!(await check.ownedByVitgraph(path, info!))) {
    const what = info!.isDirectory() ? 'a directory that is not a vitgraph package, or holds other files too' : 'an existing file vitgraph did not write';
    return refuse(
      check.shape === 'file' ? 'a new file or one vitgraph wrote' : 'a new or empty directory, or a vitgraph package',
      what,
      'Choose another path; vitgraph never replaces files it did not write',
    );
  }
  if (!check.overwrite) return refuse(check.shape === 'file' ? 'a file that does not exist yet' : 'a new or empty directory', undefined, FORCE);
  await checkParentWritable(path, false);
  return { kind: 'replace' };
}

/** Whether `info` (a stat of some path, links followed) is this process's standard output: the same node as fd 1. */
function isStdout(info: Stats): boolean {
  try {
    const out = fstatSync(1);
    return out.dev === info.dev && out.ino === info.ino;
  } catch {
    return false; // no fd 1
  }
}

async function isEmptyDirectory(path: string): Promise<boolean> {
  return (await readdir(path).catch(() => ['?'])).length === 0;
}

/** The directory that will hold `path` exists (or can be created) and is writable. */
async function checkParentWritable(path: string, createsParents: boolean): Promise<void> {
  let dir = dirname(resolve(path));
  for (;;) {
    const info = await stat(dir).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fileSystemError(error, path, 'write');
    });
    if (info) {
      if (!info.isDirectory()) throw invalidArgument('out', 'a path inside a directory', `${path} (${dir} is not a directory)`);
      return checkWritable(dir, path);
    }
    if (!createsParents) throw fileSystemError(Object.assign(new Error('missing'), { code: 'ENOENT' }), dirname(path), 'write into', 'Create the directory first');
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

/** Creates and removes a temporary in `dir`: the one test of writability that also holds for root and read-only mounts. */
async function checkWritable(dir: string, path: string): Promise<void> {
  const probe = temporaryPath(join(dir, basename(path)));
  try {
    await (await open(probe, 'wx')).close();
  } catch (error) {
    throw fileSystemError(error, path, 'write');
  }
  await rm(probe, { force: true });
}

/**
 * For writers that replace their output whatever it holds (the library's writeSafetensors): a
 * regular file (or a link to one) is replaced and a stream written through, but a directory, a
 * named pipe, a socket or a block device is refused, never replaced.
 */
export async function assertReplaceable(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info || info.isFile() || info.isCharacterDevice() || isStdout(info)) return;
  const kind = info.isDirectory() ? 'a directory' : info.isFIFO() ? 'a named pipe' : info.isSocket() ? 'a socket' : 'a device';
  throw invalidArgument('out', 'a regular file or a new path', `${path} (${kind})`, 'Write to a file (or to /dev/stdout)');
}

/** Whether writing `path` means writing through a stream in place: stdout, or a character device such as /dev/null. */
export async function isStreamOutput(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && (isStdout(info) || info.isCharacterDevice());
}

/**
 * Opens a stream output (stdout or a character device) for writing in place: no create, no
 * truncate, and checked again once open, so a regular file swapped in is never written over.
 * Returns a writer of successive chunks.
 */
export async function openStreamOutput(path: string): Promise<{ write(bytes: Uint8Array): Promise<void>; close(): Promise<void> }> {
  const info = await stat(path).catch((error: unknown) => {
    throw fileSystemError(error, path, 'write');
  });
  if (isStdout(info)) {
    return {
      write: (bytes) =>
        new Promise((done, fail) => {
          process.stdout.write(bytes, (error) => (error ? fail(fileSystemError(error, path, 'write')) : done()));
        }),
      close: async () => undefined,
    };
  }
  let file: FileHandle;
  try {
    file = await open(path, constants.O_WRONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (error) {
    throw fileSystemError(error, path, 'write');
  }
  if (!(await file.stat()).isCharacterDevice()) {
    await file.close();
    throw invalidArgument('out', 'the device it was when checked', `${path} (it changed)`);
  }
  return {
    write: async (bytes) => {
      for (let done = 0; done < bytes.byteLength; ) {
        const { bytesWritten } = await file.write(bytes, done, bytes.byteLength - done).catch((error: unknown) => {
          throw fileSystemError(error, path, 'write');
        });
        done += bytesWritten;
      }
    },
    close: () => file.close(),
  };
}
