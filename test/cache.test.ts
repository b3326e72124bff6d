// The export cache: one entry per (checkpoint content, dtype) whatever the path, one weights copy
// shared by the dynamic graph and every bucket, list/clear, and no temporaries left by a kill.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cp, readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { VisionEncoder } from '../index.js';
import { checkpointKey, clearCache, listCache } from '../src/export/cache.js';
import { ENCODER_FIXTURES, ROOT, tempDir } from './helpers/files.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');

test('dynamic then buckets leaves one entry with one weights file; a copied checkpoint hits it', async (t) => {
  const cacheDir = await tempDir(t);
  const first = await VisionEncoder.load(TINY, { cacheDir, threads: 1 });
  await first.close();
  const buckets = await VisionEncoder.load(TINY, { cacheDir, threads: 1, graphs: 'buckets', buckets: [64, 256] });
  await buckets.close();
  let entries = await listCache({ cacheDir });
  t.is(entries.length, 1);
  t.deepEqual(entries[0]!.buckets, [64, 256]);
  t.is(entries[0]!.model, 'qwen3-vl');
  const files = (await readdir(entries[0]!.path)).sort();
  t.deepEqual(
    files.filter((f) => f.endsWith('.data')),
    ['weights.data'],
    'one weights copy',
  );
  t.true(files.includes('dynamic.onnx') && files.includes('padded-64.onnx') && files.includes('padded-256.onnx'));

  // The same checkpoint at another path (new mtimes): same key, no new entry.
  const copy = join(await tempDir(t), 'copy');
  await cp(TINY, copy, { recursive: true });
  t.is(await checkpointKey(copy, { cacheDir }), await checkpointKey(TINY, { cacheDir }));
  const again = await VisionEncoder.load(copy, { cacheDir, threads: 1 });
  await again.close();
  entries = await listCache({ cacheDir });
  t.is(entries.length, 1);
  t.true(entries[0]!.bytes > (await stat(join(entries[0]!.path, 'weights.data'))).size);
});

test('clear --older-than keeps recent entries; clear removes the rest', async (t) => {
  const cacheDir = await tempDir(t);
  const encoder = await VisionEncoder.load(TINY, { cacheDir, threads: 1 });
  await encoder.close();
  const [entry] = await listCache({ cacheDir });
  t.is((await clearCache({ cacheDir, olderThanMs: 3600e3 })).removed.length, 0);
  const old = new Date(Date.now() - 2 * 86400e3);
  await utimes(entry!.path, old, old);
  const cleared = await clearCache({ cacheDir, olderThanMs: 86400e3 });
  t.deepEqual(cleared.removed, [entry!.path]);
  t.true(cleared.bytes > 0);
  t.deepEqual(await listCache({ cacheDir }), []);
});

test('a first-use export killed midway leaves no temporaries after the next load', async (t) => {
  const cacheDir = await tempDir(t);
  // Kill the loading process at its second rename: the staged package is half written.
  const script = `
    import { syncBuiltinESMExports, createRequire } from 'node:module';
    const fsp = createRequire(import.meta.url)('node:fs/promises');
    const rename = fsp.rename;
    let count = 0;
    fsp.rename = async (...args) => { if (++count === 2) process.kill(process.pid, 'SIGKILL'); return rename(...args); };
    syncBuiltinESMExports();
    const { VisionEncoder } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
    await VisionEncoder.load(${JSON.stringify(TINY)}, { cacheDir: ${JSON.stringify(cacheDir)} });
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(child.signal, 'SIGKILL');
  t.true(
    (await readdir(cacheDir)).some((n) => n.includes('.vitgraph-tmp-')),
    'the kill left a temporary',
  );
  const encoder = await VisionEncoder.load(TINY, { cacheDir, threads: 1 });
  await encoder.close();
  const names = (await readdir(cacheDir)).filter((n) => n !== '.hashes'); // the weights' hash stamps stay
  t.is(names.length, 1, names.join(', '));
  t.false(names[0]!.startsWith('.'));
});

test('vitgraph cache list and clear', async (t) => {
  const cacheDir = await tempDir(t);
  const encoder = await VisionEncoder.load(TINY, { cacheDir, threads: 1 });
  await encoder.close();
  const env = { ...process.env, VITGRAPH_CACHE: cacheDir };
  const bin = join(ROOT, 'dist', 'cli', 'main.js');
  const list = spawnSync(process.execPath, [bin, 'cache', 'list'], { encoding: 'utf8', env });
  t.is(list.status, 0, list.stderr);
  t.regex(list.stdout, /1 entry, [\d.]+ (KiB|MiB)/);
  t.regex(list.stdout, /qwen3-vl float32/);
  const bad = spawnSync(process.execPath, [bin, 'cache', 'clear', '--older-than', 'soon'], { encoding: 'utf8', env });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /--older-than: expected a duration/);
  const clear = spawnSync(process.execPath, [bin, 'cache', 'clear'], { encoding: 'utf8', env });
  t.is(clear.status, 0, clear.stderr);
  t.regex(clear.stdout, /removed 1 entry/);
  t.deepEqual(await readdir(cacheDir), []);
});
