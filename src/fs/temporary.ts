// Temporaries beside an output: `.<name>.vitgraph-tmp-<pid>-<8 hex>` (and `-old-` for a package
// set aside while it is replaced). The marker is vitgraph's own, so cleaning up after a killed
// run removes exactly these and never a user's `notes.123.tmp`.

import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export type TemporaryKind = 'tmp' | 'old';

/** A fresh temporary path beside `path` (same directory, so a rename stays on one file system). */
export function temporaryPath(path: string, kind: TemporaryKind = 'tmp'): string {
  return join(dirname(path), `.${basename(path)}.vitgraph-${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

const TEMPORARY = /^\.(.+)\.vitgraph-(tmp|old)-(\d{1,10})-[0-9a-f]{8}$/;

/** What a directory entry is, if it is a vitgraph temporary: the output it belongs to, its kind and the writing process. */
export function parseTemporary(entry: string): { name: string; kind: TemporaryKind; pid: number } | undefined {
  const match = TEMPORARY.exec(entry);
  return match ? { name: match[1]!, kind: match[2] as TemporaryKind, pid: Number(match[3]) } : undefined;
}

/** Whether process `pid` still runs (then its temporaries are in use). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
