// Where a Hugging Face hub download keeps its bytes: a repository folder `models--org--name` holds
// `snapshots/<revision>/` (the files, as links) and `blobs/` (their content). Path arithmetic only,
// so that the confined-path check (confined.ts) and the hub reader (hub.ts) share it without a cycle.

import { join, sep } from 'node:path';

/**
 * The blobs/ folder of the hub repository holding `realDir` (a real path inside some
 * `<repo>/snapshots/<commit>/`), or undefined when it is no hub snapshot.
 */
export function hubBlobsOf(realDir: string): string | undefined {
  const parts = realDir.split(sep);
  const at = parts.lastIndexOf('snapshots');
  if (at < 1 || at + 1 >= parts.length) return undefined;
  return join(parts.slice(0, at).join(sep) || sep, 'blobs');
}
