// node:fs errors (EACCES, EROFS, ENOSPC, ELOOP, ...) as VitgraphErrors that name the user's path
// and what to do. Node's own message is never passed on: it can name a temporary file, not the
// path the user gave.

import { VitgraphError, notFound } from '../errors.js';

const PROBLEMS: Readonly<Record<string, { problem: string; hint: string }>> = {
  EACCES: { problem: 'permission denied', hint: 'Check its permissions, or choose another path' },
  EPERM: { problem: 'operation not permitted', hint: 'Check its permissions, or choose another path' },
  EROFS: { problem: 'the file system is read-only', hint: 'Choose a path on a writable file system' },
  ENOSPC: { problem: 'no space left on the device', hint: 'Free space on that device, or choose another location' },
  EDQUOT: { problem: 'disk quota exceeded', hint: 'Free space within your quota, or choose another location' },
  ELOOP: { problem: 'a symbolic link loop (or too many links)', hint: 'Fix or remove the link' },
  EISDIR: { problem: 'it is a directory', hint: 'Give a file path' },
  ENAMETOOLONG: { problem: 'the path is too long', hint: 'Choose a shorter path' },
  EMFILE: { problem: 'too many open files', hint: 'Raise the open-file limit (ulimit -n)' },
  ENFILE: { problem: 'too many open files on the system', hint: 'Close other programs or raise the limit' },
  EIO: { problem: 'an input/output error of the device', hint: 'Check the disk' },
  EEXIST: { problem: 'it already exists', hint: 'Choose another path' },
  EBUSY: { problem: 'the file or device is busy', hint: 'Retry when it is free' },
  EXDEV: { problem: 'it is on another file system than its temporary', hint: 'Choose a path on one file system' },
};

/**
 * `error` from node:fs while trying to `action` (e.g. "read", "write", "create the cache in")
 * `path`, as a VitgraphError: not_found for ENOENT/ENOTDIR, file_system otherwise. `hint`
 * replaces the generic remedy (the cache names --cache-dir and VITGRAPH_CACHE). A VitgraphError is returned as is.
 */
export function fileSystemError(error: unknown, path: string, action: string, hint?: string): VitgraphError {
  if (error instanceof VitgraphError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(action === 'read' ? 'file' : 'path', path, hint);
  const known = code ? PROBLEMS[code] : undefined;
  const problem = known?.problem ?? (code ? `the system refused (${code})` : 'an unexpected error');
  const remedy = hint ?? known?.hint;
  const message = `${path}: cannot ${action} it: ${problem}${code && known ? ` (${code})` : ''}${remedy ? `. ${remedy}` : ''}`;
  return new VitgraphError('file_system', message, { path, action, ...(code ? { errno: code } : {}) }, { cause: error });
}

/** True for a node:fs error (it carries an errno code such as 'EACCES'). */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((error as NodeJS.ErrnoException).code!);
}

/** `error` as fileSystemError when node:fs raised it; anything else (a VitgraphError, a bug) unchanged. */
export function asFileSystemError(error: unknown, path: string, action: string, hint?: string): unknown {
  return isSystemError(error) ? fileSystemError(error, path, action, hint) : error;
}

/** Runs `operation`, turning a node:fs error into fileSystemError(path, action, hint). */
export async function onFileSystem<T>(path: string, action: string, operation: () => Promise<T>, hint?: string): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw asFileSystemError(error, path, action, hint);
  }
}
