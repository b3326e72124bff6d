// Packages are verified when opened (sha256 of every file against vitgraph.json, stamped so later
// opens are cheap), name only plain files inside themselves, and are replaced atomically by
// `export --force`: a kill at any step leaves the complete old or the complete new package (or,
// between the two renames of the swap, nothing), never a mix, and the next export cleans up.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { open, readdir, readFile, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportModel, VitgraphError } from '../index.js';
import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { removeStaleTemporaries } from '../src/export/export.js';
import { openPackage, VERIFIED_STAMP } from '../src/runtime/package.js';
import { ENCODER_FIXTURES, ROOT, tempDir } from './helpers/files.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');

async function freshPackage(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const pkg = join(await tempDir(t), 'pkg');
  await exportModel({ model: TINY, out: pkg, maxPatches: [64] });
  return pkg;
}

test('a tampered weights.data is refused by name, even with its size and mtime restored', async (t) => {
  const pkg = await freshPackage(t);
  await openPackage(pkg); // verifies and stamps
  const weights = join(pkg, 'weights.data');
  const { mtime, atime } = await stat(weights);
  const file = await open(weights, 'r+');
  await file.write(Buffer.from([0x42, 0x42, 0x42, 0x42]), 0, 4, 4096 + 16);
  await file.close();
  await utimes(weights, atime, mtime);
  const error = await t.throwsAsync(openPackage(pkg), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_file');
  t.regex(error?.message ?? '', /weights\.data: sha256 differs/);
  const runtime = await t.throwsAsync(EncoderRuntime.open(pkg), { instanceOf: VitgraphError });
  t.is(runtime?.code, 'invalid_file');
  // The explicit opt-out opens it anyway.
  await t.notThrowsAsync(async () => (await EncoderRuntime.open(pkg, { verify: false })).close());
});

test('the verified stamp makes the second open skip hashing; any change to a file re-hashes', async (t) => {
  const pkg = await freshPackage(t);
  await openPackage(pkg);
  const stamp = await readFile(join(pkg, VERIFIED_STAMP), 'utf8');
  t.regex(stamp, /"ino":"\d+"/);
  t.regex(stamp, /"mtimeNs":"\d+"/);
  // A stamp that lies about the manifest forces a full check, which still passes.
  await writeFile(join(pkg, VERIFIED_STAMP), '{}');
  await t.notThrowsAsync(openPackage(pkg));
  t.is(await readFile(join(pkg, VERIFIED_STAMP), 'utf8'), stamp);
});

test('manifest entries must be plain regular files inside the package', async (t) => {
  const pkg = await freshPackage(t);
  const manifestPath = join(pkg, 'vitgraph.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { graphs: { file: string }[] };
  for (const file of ['../other/padded-256.onnx', '/etc/passwd', 'sub/dynamic.onnx', '..']) {
    const edited = { ...manifest, graphs: [{ ...manifest.graphs[0], file }, ...manifest.graphs.slice(1)] };
    await writeFile(manifestPath, JSON.stringify(edited));
    const error = await t.throwsAsync(openPackage(pkg), { instanceOf: VitgraphError }, file);
    t.is(error?.code, 'invalid_file');
    t.regex(error?.message ?? '', /plain file name inside the package/);
  }
  for (const broken of [{ ...manifest, graphs: 'x' }, { ...manifest, graphs: [] }, { ...manifest, io: { outputs: [] } }, [], 'x']) {
    await writeFile(manifestPath, JSON.stringify(broken));
    const error = await t.throwsAsync(openPackage(pkg), { instanceOf: VitgraphError }, JSON.stringify(broken).slice(0, 40));
    t.is(error?.code, 'invalid_file');
  }
  await writeFile(manifestPath, JSON.stringify(manifest));
  // A graph replaced by a symlink (to a same-sized file elsewhere) is never opened.
  const dynamic = join(pkg, 'dynamic.onnx');
  const copy = join(pkg, '..', 'elsewhere.onnx');
  await writeFile(copy, await readFile(dynamic));
  await unlink(dynamic);
  await symlink(copy, dynamic);
  const error = await t.throwsAsync(openPackage(pkg), { instanceOf: VitgraphError });
  t.regex(error?.message ?? '', /expected a regular file/);
});

/** Kills a child `export --force` at its `step`-th rename (counting every rename it makes). */
function exportKilledAt(model: string, out: string, step: number): { killed: boolean } {
  const script = `
    import { syncBuiltinESMExports, createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const fsp = require('node:fs/promises');
    const rename = fsp.rename;
    let count = 0;
    fsp.rename = async (...args) => { if (++count === ${step}) process.kill(process.pid, 'SIGKILL'); return rename(...args); };
    syncBuiltinESMExports();
    const { exportModel } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
    await exportModel({ model: ${JSON.stringify(model)}, out: ${JSON.stringify(out)}, maxPatches: [64, 128], overwrite: true });
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { killed: child.signal === 'SIGKILL' };
}

test('export --force killed at every rename leaves the old or the new package, never a mix; the next export cleans up', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'pkg');
  await exportModel({ model: TINY, out, maxPatches: [64] }); // the old package: one bucket
  const oldManifest = await readFile(join(out, 'vitgraph.json'), 'utf8');
  let step = 1;
  for (; step < 20; step++) {
    const { killed } = exportKilledAt(TINY, out, step);
    if (!killed) break; // the export finished: every rename has been tried
    const present = await stat(out).catch(() => undefined);
    if (present) {
      const pkg = await openPackage(out); // complete and verified
      const buckets = pkg.buckets.map((b) => b.maxPatches);
      t.true(JSON.stringify(buckets) === '[64]' || JSON.stringify(buckets) === '[64,128]', `step ${step}: ${JSON.stringify(buckets)}`);
      if (JSON.stringify(buckets) === '[64]') t.is(await readFile(join(out, 'vitgraph.json'), 'utf8'), oldManifest);
    } else {
      t.log(`step ${step}: killed between the swap's two renames; the old package waits beside it`);
      await removeStaleTemporaries(out);
      t.is(await readFile(join(out, 'vitgraph.json'), 'utf8'), oldManifest, 'the next export puts the old package back first');
    }
    // Restore the old package for the next step.
    await exportModel({ model: TINY, out, maxPatches: [64], overwrite: true });
    t.deepEqual((await readdir(dir)).sort(), ['pkg'], `step ${step}: the next export removed every temporary`);
  }
  t.true(step > 4, `the export made ${step - 1} renames`);
});
