// Output paths never destroy (issue 18): --force replaces only what vitgraph wrote (a package, a
// .onnx with vitgraph's metadata, a safetensors file vitgraph produced); only vitgraph-marked
// temporaries are cleaned; stdout and devices are written through, never replaced; outputs are
// checked before any work, with one-line errors naming the user's path (never a temporary).

import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportModel } from '../index.js';
import { VitgraphError } from '../src/errors.js';
import { hostTensor } from '../src/tensor.js';
import { writeSafetensors, writeSafetensorsStream } from '../src/weights/safetensors.js';
import { ENCODER_FIXTURES, ROOT, tempDir } from './helpers/files.js';
import { runBin } from './helpers/cli.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');
const IMAGE = join(ROOT, 'fixtures', 'images', 'astronaut.png');

let pkg: string;
test.before(async () => {
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  pkg = join(await mkdtemp(join(tmpdir(), 'vitgraph-outputs-pkg-')), 'pkg');
  await exportModel({ model: TINY, out: pkg, maxPatches: [64] });
});

async function userFiles(t: ExecutionContext): Promise<{ dir: string; notes: string }> {
  const dir = await tempDir(t, 'vitgraph-outputs-');
  const notes = join(dir, 'notes.txt');
  await writeFile(notes, 'my thesis');
  return { dir, notes };
}

const oneLine = (t: ExecutionContext, stderr: string, fragment: string): void => {
  t.is(stderr.trim().split('\n').length, 1, stderr);
  t.true(stderr.includes(fragment), stderr);
  t.false(stderr.includes('vitgraph-tmp'), 'never names a temporary');
};

test('export --out an existing file is refused with or without --force; the file stays', async (t) => {
  const { notes } = await userFiles(t);
  for (const force of [[], ['--force']]) {
    const result = await runBin(['export', '--model', TINY, '--out', notes, '-q', ...force]);
    t.is(result.code, 1);
    oneLine(t, result.stderr, notes);
    t.is(await readFile(notes, 'utf8'), 'my thesis');
  }
});

test('export --out DIR --force refuses a folder of user files, and a package holding a user file', async (t) => {
  const { dir, notes } = await userFiles(t);
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'data', 'x.csv'), '1,2');
  await t.throwsAsync(exportModel({ model: TINY, out: dir, overwrite: true }), { instanceOf: VitgraphError, message: /vitgraph never replaces files it did not write/ });
  t.deepEqual((await readdir(dir)).sort(), ['data', 'notes.txt']);
  // A real package: replaced with overwrite, refused without; with a stranger file inside, refused.
  const out = join(dir, 'pkg');
  await exportModel({ model: TINY, out, maxPatches: [64] });
  await t.throwsAsync(exportModel({ model: TINY, out, maxPatches: [64] }), { instanceOf: VitgraphError, message: /Pass overwrite: true/ });
  await t.notThrowsAsync(exportModel({ model: TINY, out, maxPatches: [64], overwrite: true }));
  await writeFile(join(out, 'README.txt'), 'mine');
  await t.throwsAsync(exportModel({ model: TINY, out, maxPatches: [64], overwrite: true }), { instanceOf: VitgraphError });
  t.is(await readFile(join(out, 'README.txt'), 'utf8'), 'mine');
  t.is(await readFile(notes, 'utf8'), 'my thesis');
});

test('export --force replaces a vitgraph .onnx but never a user file named .onnx', async (t) => {
  const { dir } = await userFiles(t);
  const out = join(dir, 'model.onnx');
  await writeFile(out, 'not a graph');
  await t.throwsAsync(exportModel({ model: TINY, out, overwrite: true }), { instanceOf: VitgraphError, message: /an existing file vitgraph did not write/ });
  t.is(await readFile(out, 'utf8'), 'not a graph');
  const ours = join(dir, 'ours.onnx');
  await exportModel({ model: TINY, out: ours, externalData: 'always' });
  await t.throwsAsync(exportModel({ model: TINY, out: ours }), { instanceOf: VitgraphError, message: /Pass overwrite: true/ });
  await t.notThrowsAsync(exportModel({ model: TINY, out: ours, overwrite: true, externalData: 'always' }));
  // A .data beside a new .onnx that vitgraph did not write is no part of it.
  await writeFile(join(dir, 'fresh.onnx.data'), 'user bytes');
  await t.throwsAsync(exportModel({ model: TINY, out: join(dir, 'fresh.onnx'), overwrite: true, externalData: 'always' }), { instanceOf: VitgraphError });
  t.is(await readFile(join(dir, 'fresh.onnx.data'), 'utf8'), 'user bytes');
});

test('export never writes to or replaces a device, stdout, a link or a link loop', async (t) => {
  const { dir } = await userFiles(t);
  await t.throwsAsync(exportModel({ model: TINY, out: '/dev/null', overwrite: true }), { instanceOf: VitgraphError, message: /\/dev\/null \(a device\)/ });
  t.true((await stat('/dev/null')).isCharacterDevice());
  await t.throwsAsync(exportModel({ model: TINY, out: '/dev/stdout', overwrite: true }), { instanceOf: VitgraphError, message: /standard output|a device/ });
  await symlink(join(dir, 'loop.onnx'), join(dir, 'loop.onnx'));
  await t.throwsAsync(exportModel({ model: TINY, out: join(dir, 'loop.onnx'), overwrite: true }), { instanceOf: VitgraphError, message: /a symbolic link loop/ });
  await symlink(join(dir, 'notes.txt'), join(dir, 'link.onnx'));
  await t.throwsAsync(exportModel({ model: TINY, out: join(dir, 'link.onnx'), overwrite: true }), { instanceOf: VitgraphError, message: /vitgraph replaces no links/ });
  t.is(await readFile(join(dir, 'notes.txt'), 'utf8'), 'my thesis');
});

test('only vitgraph-marked temporaries of dead processes are cleaned; look-alike user files stay', async (t) => {
  const { dir } = await userFiles(t);
  const lookalikes = ['model.v2.20240101.tmp', 'model.onnx.notes.123456789.tmp', 'model.onnx.4242.tmp', '.model.onnx.vitgraph-tmp-notes', '.model.onnx.vitgraph-tmp-1-nothex!!'];
  for (const name of lookalikes) await writeFile(join(dir, name), 'keep me');
  const stale = '.model.onnx.vitgraph-tmp-999999999-deadbeef';
  await writeFile(join(dir, stale), 'half a graph');
  await exportModel({ model: TINY, out: join(dir, 'model.onnx') });
  const names = await readdir(dir);
  for (const name of lookalikes) t.true(names.includes(name), name);
  t.false(names.includes(stale), "a dead export's temporary is removed");
});

test('encode --out /dev/null and a link to /proc/self/fd/1 are written through; the nodes stay', async (t) => {
  const { dir } = await userFiles(t);
  const devnull = await runBin(['encode', IMAGE, '--model', pkg, '--out', '/dev/null', '-q']);
  t.is(devnull.code, 0, devnull.stderr);
  t.true((await stat('/dev/null')).isCharacterDevice());
  const link = join(dir, 'to-stdout');
  await symlink('/proc/self/fd/1', link);
  const piped = await runBin(['encode', IMAGE, '--model', pkg, '--out', link, '-q']);
  t.is(piped.code, 0, piped.stderr);
  t.true(piped.stdout.includes('"producer":"vitgraph encode"'), 'the safetensors bytes went to stdout');
  t.true((await lstat(link)).isSymbolicLink(), 'the link is still a link');
});

test('encode refuses a user file, a FIFO, a directory; replaces its own output; all before encoding', async (t) => {
  t.timeout(60_000);
  const { dir, notes } = await userFiles(t);
  const refused = await runBin(['encode', IMAGE, '--model', pkg, '--out', notes, '-q']);
  t.is(refused.code, 1);
  oneLine(t, refused.stderr, notes);
  t.is(await readFile(notes, 'utf8'), 'my thesis');
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const piped = await runBin(['encode', IMAGE, '--model', pkg, '--out', fifo, '-q'], { timeoutMs: 20_000 });
  t.is(piped.code, 1);
  oneLine(t, piped.stderr, 'a named pipe');
  t.true((await lstat(fifo)).isFIFO());
  const folder = await runBin(['encode', IMAGE, '--model', pkg, '--out', dir, '-q']);
  oneLine(t, folder.stderr, 'a directory');
  // Checked before any work: a missing image would fail later, the output fails first.
  const early = await runBin(['encode', join(dir, 'missing.png'), '--model', pkg, '--out', notes, '-q']);
  oneLine(t, early.stderr, notes);
  const own = join(dir, 'out.safetensors');
  for (let i = 0; i < 2; i++) {
    const result = await runBin(['encode', IMAGE, '--model', pkg, '--out', own, '-q']);
    t.is(result.code, 0, result.stderr);
  }
});

test('an unwritable place fails before the work, naming the path; a full disk leaves no temporary', async (t) => {
  const { dir } = await userFiles(t);
  const unwritable = await runBin(['encode', IMAGE, '--model', pkg, '--out', '/sys/vitgraph-out.safetensors', '-q']);
  t.is(unwritable.code, 1);
  oneLine(t, unwritable.stderr, '/sys/vitgraph-out.safetensors');
  const full = await runBin(['encode', IMAGE, '--model', pkg, '--out', '/dev/full', '-q']);
  oneLine(t, full.stderr, '/dev/full: cannot write it: no space left on the device (ENOSPC)');
  // Fault injection: the disk fills after the header.
  const out = join(dir, 'embeds.safetensors');
  const specs = [{ name: 'a', dtype: 'F32' as const, shape: [4] }];
  const error = await t.throwsAsync(
    writeSafetensorsStream(out, specs, () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }),
    { instanceOf: VitgraphError },
  );
  t.is(error?.code, 'file_system');
  t.is(error?.message, `${out}: cannot write it: no space left on the device (ENOSPC). Free space on that device, or choose another location`);
  t.deepEqual((await readdir(dir)).sort(), ['notes.txt'], 'no temporary left');
});

test('the library writer replaces a regular file but never a FIFO or a directory', async (t) => {
  t.timeout(10_000);
  const { dir } = await userFiles(t);
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const tensors = { a: hostTensor('float32', [1], Float32Array.from([1])) };
  await t.throwsAsync(writeSafetensors(fifo, tensors), { instanceOf: VitgraphError, message: /a named pipe/ });
  await t.throwsAsync(writeSafetensors(dir, tensors), { instanceOf: VitgraphError, message: /a directory/ });
  t.true((await lstat(fifo)).isFIFO());
});

test('run and synth never replace a user file either', async (t) => {
  const { dir, notes } = await userFiles(t);
  const inputs = join(dir, 'in.safetensors');
  await writeSafetensors(inputs, { x: hostTensor('float32', [1], Float32Array.from([1])) });
  const run = await runBin(['run', '--onnx', join(pkg, 'dynamic.onnx'), '--inputs', inputs, '--out', notes]);
  t.is(run.code, 1);
  oneLine(t, run.stderr, notes);
  t.is(await readFile(notes, 'utf8'), 'my thesis');
  // A real checkpoint's weights are not synth's: --force does not replace them.
  const checkpoint = join(dir, 'ckpt');
  await mkdir(checkpoint);
  await writeSafetensors(join(checkpoint, 'model.safetensors'), { 'model.visual.w': hostTensor('float32', [1], Float32Array.from([7])) });
  await writeFile(join(checkpoint, 'config.json'), '{"mine": true}');
  const synth = await runBin(['synth', '--preset', 'tiny', '--out', checkpoint, '--force', '-q']);
  t.is(synth.code, 1);
  oneLine(t, synth.stderr, join(checkpoint, 'config.json'));
  t.is(await readFile(join(checkpoint, 'config.json'), 'utf8'), '{"mine": true}');
  // Synth's own output is replaced with --force.
  const own = join(dir, 'synth');
  t.is((await runBin(['synth', '--preset', 'tiny', '--out', own, '-q'])).code, 0);
  const again = await runBin(['synth', '--preset', 'tiny', '--out', own, '--force', '-q']);
  t.is(again.code, 0, again.stderr);
});
