// The Hugging Face hub cache layout (what `huggingface-cli download` leaves):
//   models--org--name/refs/main            a commit hash
//   models--org--name/snapshots/<commit>/  the files, as symbolic links into ../../blobs/
//   models--org--name/blobs/<sha>          the bytes
// A repository folder (its refs/main picked), `repo@<branch or commit>`, or a snapshot folder all
// name a checkpoint; links from a snapshot into its own repository's blobs/ are followed.

import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { invalidArgument, notFound } from '../errors.js';
import { readRegularHead } from './confined.js';
export { hubBlobsOf } from './hub-layout.js';

/** A ref or commit: one path segment of plain characters (never `..` or a separator). */
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const isDirectory = async (path: string): Promise<boolean> => (await stat(path).catch(() => undefined))?.isDirectory() === true;

/** Whether `dir` is a hub repository folder: it holds snapshots/ (and usually refs/ and blobs/). */
export async function isHubRepository(dir: string): Promise<boolean> {
  return (await isDirectory(join(dir, 'snapshots'))) && ((await isDirectory(join(dir, 'refs'))) || (await isDirectory(join(dir, 'blobs'))));
}

/**
 * The checkpoint directory `path` names: a hub repository folder → the snapshot its refs/main
 * points to (or its only snapshot); `repo@rev` → that ref's or commit's snapshot; anything else
 * unchanged.
 */
export async function resolveHubModel(path: string): Promise<string> {
  const at = path.lastIndexOf('@');
  if (at > 0 && !(await stat(path).catch(() => undefined))) {
    const [repo, revision] = [path.slice(0, at), path.slice(at + 1)];
    if (await isHubRepository(repo)) return snapshotOf(repo, revision, path);
  }
  if (!(await isHubRepository(path))) return path;
  if ((await stat(join(path, 'refs', 'main')).catch(() => undefined))?.isFile()) return snapshotOf(path, 'main', path);
  const snapshots = (await readdir(join(path, 'snapshots'))).filter((s) => REVISION.test(s));
  if (snapshots.length === 1) return join(path, 'snapshots', snapshots[0]!);
  throw invalidArgument(
    'model',
    'a hub repository with refs/main or a single snapshot',
    `${path} (${snapshots.length} snapshots: ${snapshots.slice(0, 4).join(', ') || 'none'})`,
    `Pass ${path}@<revision> or a snapshot folder`,
  );
}

async function snapshotOf(repo: string, revision: string, asked: string): Promise<string> {
  if (!REVISION.test(revision)) throw invalidArgument('model revision', 'a branch, tag or commit name', revision);
  const ref = join(repo, 'refs', revision);
  let commit = revision;
  if ((await stat(ref).catch(() => undefined))?.isFile()) {
    commit = Buffer.from(await readRegularHead(ref, 256, 'hub ref'))
      .toString('utf8')
      .trim();
    if (!REVISION.test(commit)) throw invalidArgument(`hub ref ${ref}`, 'a commit hash', '(something else)');
  }
  const snapshot = join(repo, 'snapshots', commit);
  if (!(await isDirectory(snapshot))) throw notFound(`snapshot ${commit} of ${basename(repo)}`, asked, 'Download that revision, or pass another');
  return snapshot;
}
