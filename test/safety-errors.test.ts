// Typed errors and no hangs (issue 18): every file vitgraph opens is a regular file or refused at
// once (FIFOs as preprocessor_config.json, .onnx, stamp, manifest, image, hub ref); JSON nested
// 100k deep, symbolic link loops, unwritable or full caches and lying manifests are typed errors
// naming the path; a file that fails to parse is never echoed.

import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODELS } from '../graphs/index.js';
import { exportModel, VisionEncoder } from '../index.js';
import { VitgraphError, type ErrorCode } from '../src/errors.js';
import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { openPackage, VERIFIED_STAMP } from '../src/runtime/package.js';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { readSafetensorsHeader } from '../src/weights/safetensors.js';
import { ENCODER_FIXTURES, ROOT, tempDir } from './helpers/files.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');
const IMAGE = join(ROOT, 'fixtures', 'images', 'astronaut.png');

async function rejects(t: ExecutionContext, promise: Promise<unknown>, code: ErrorCode, fragment: string | RegExp): Promise<VitgraphError> {
  const error = await t.throwsAsync(promise, { instanceOf: VitgraphError });
  t.is(error?.code, code, error?.message);
  if (typeof fragment === 'string') t.true(error?.message.includes(fragment), `"${error?.message}" should include "${fragment}"`);
  else t.regex(error?.message ?? '', fragment);
  return error!;
}

async function tinyCopy(t: ExecutionContext): Promise<string> {
  const dir = join(await tempDir(t, 'vitgraph-errors-'), 'ckpt');
  await cp(TINY, dir, { recursive: true });
  return dir;
}

const mkfifo = (path: string): void => {
  execFileSync('mkfifo', [path]);
};

const deepJson = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

test('FIFOs are refused at once wherever vitgraph reads a file (no hang)', async (t) => {
  t.timeout(20_000);
  const dir = await tinyCopy(t);
  mkfifo(join(dir, 'preprocessor_config.json'));
  await rejects(t, exportModel({ model: dir, out: join(dir, 'x.onnx') }), 'invalid_file', 'preprocessor_config.json to be a regular file, got a FIFO');
  const cacheDir = await tempDir(t);
  await rejects(t, VisionEncoder.load(dir, { cacheDir, models: MODELS }), 'invalid_file', 'got a FIFO');
  const onnx = join(dir, 'x.onnx');
  mkfifo(onnx);
  await rejects(t, VisionEncoder.load(onnx), 'invalid_file', 'ONNX model to be a regular file, got a FIFO');
  const image = join(dir, 'photo.png');
  mkfifo(image);
  const encoder = await VisionEncoder.load(undefined, { cacheDir, threads: 1, models: MODELS });
  await rejects(t, encoder.encode([image]), 'invalid_file', image);
  await encoder.close();
});

test('a package whose stamp or manifest is a FIFO opens (stamp) or is refused (manifest), without hanging', async (t) => {
  t.timeout(20_000);
  const pkg = join(await tempDir(t), 'pkg');
  await exportModel({ model: TINY, out: pkg, maxPatches: [64] });
  await openPackage(pkg);
  await rm(join(pkg, VERIFIED_STAMP));
  mkfifo(join(pkg, VERIFIED_STAMP));
  await t.notThrowsAsync(openPackage(pkg), 'an unreadable stamp only means hashing again');
  const manifest = join(pkg, 'vitgraph.json');
  await rm(manifest);
  mkfifo(manifest);
  await rejects(t, openPackage(pkg), 'invalid_file', 'expected a regular file');
});

test('JSON nested 100k deep in config.json, an index or a safetensors header is invalid_file, not a stack overflow', async (t) => {
  const dir = await tinyCopy(t);
  await writeFile(join(dir, 'config.json'), deepJson(100_000));
  await rejects(t, exportModel({ model: dir, out: join(dir, 'x.onnx') }), 'invalid_file', 'nested at most 64 levels');
  await rejects(t, VisionEncoder.load(dir, { cacheDir: await tempDir(t), models: MODELS }), 'invalid_file', 'config.json');
  await writeFile(join(dir, 'config.json'), `{"vision_config": ${deepJson(100_000)}}`);
  await rejects(t, exportModel({ model: dir, out: join(dir, 'x.onnx') }), 'invalid_file', 'nested at most');
  const index = join(dir, 'model.safetensors.index.json');
  await writeFile(index, `{"weight_map": {"a": ${deepJson(100_000)}}}`);
  await rejects(t, Checkpoint.open(index), 'invalid_file', 'nested at most');
  const header = Buffer.from(`{"a": ${deepJson(100_000)}}`);
  const bytes = Buffer.alloc(8 + header.length);
  bytes.writeBigUInt64LE(BigInt(header.length));
  header.copy(bytes, 8);
  await writeFile(join(dir, 'deep.safetensors'), bytes);
  await rejects(t, readSafetensorsHeader(join(dir, 'deep.safetensors')), 'invalid_file', 'nested at most');
});

test('a config.json that is /etc/passwd is refused without printing a byte of it', async (t) => {
  const dir = await tinyCopy(t);
  await rm(join(dir, 'config.json'));
  await symlink('/etc/passwd', join(dir, 'config.json'));
  const error = await rejects(t, exportModel({ model: dir, out: join(dir, 'x.onnx') }), 'invalid_file', 'config.json to be JSON, got text that does not parse');
  const passwd = await readFile('/etc/passwd', 'utf8');
  t.false(error.message.includes(passwd.slice(0, 6)), error.message);
  t.notRegex(error.message, /root:|:0:0/);
  await writeFile(join(dir, 'preprocessor_config.json'), 'secret-token-1234 not json');
  await rm(join(dir, 'config.json'));
  await cp(join(TINY, 'config.json'), join(dir, 'config.json'));
  const processor = await rejects(t, exportModel({ model: dir, out: join(dir, 'x.onnx') }), 'invalid_file', 'preprocessor_config.json');
  t.false(processor.message.includes('secret'), processor.message);
  // An image path that is /etc/passwd: "not an image", and not a byte of it.
  const image = join(dir, 'photo.png');
  await symlink('/etc/passwd', image);
  const encoder = await VisionEncoder.load(undefined, { cacheDir: await tempDir(t), threads: 1, models: MODELS });
  const notImage = await rejects(t, encoder.encode([image]), 'invalid_file', 'got text in no supported format');
  await encoder.close();
  t.notRegex(notImage.message, /root|72 6f 6f 74/);
});

test('symbolic link loops are typed errors naming the path', async (t) => {
  const root = await tempDir(t);
  await symlink(join(root, 'b'), join(root, 'a'));
  await symlink(join(root, 'a'), join(root, 'b'));
  await rejects(t, VisionEncoder.load(join(root, 'a'), { models: MODELS }), 'file_system', `${join(root, 'a')}: cannot read it: a symbolic link loop`);
  await rejects(t, exportModel({ model: join(root, 'a'), out: join(root, 'x.onnx') }), 'file_system', 'symbolic link loop');
  const dir = await tinyCopy(t);
  await rm(join(dir, 'model.safetensors'));
  await symlink(join(dir, 'model.safetensors'), join(dir, 'model.safetensors'));
  await rejects(t, Checkpoint.open(dir), 'file_system', '(ELOOP)');
  await rejects(t, VisionEncoder.load(dir, { cacheDir: await tempDir(t), models: MODELS }), 'file_system', '(ELOOP)');
  const encoder = await VisionEncoder.load(undefined, { cacheDir: await tempDir(t), threads: 1, models: MODELS });
  await rejects(t, encoder.encode([join(root, 'a')]), 'file_system', 'symbolic link loop');
  await encoder.close();
});

test('an unwritable cache is a typed error naming it and the remedy (EPERM for real, EROFS and ENOSPC injected)', async (t) => {
  await rejects(
    t,
    VisionEncoder.load(TINY, { cacheDir: '/sys/vitgraph-cache', models: MODELS }),
    'file_system',
    /^\/sys\/vitgraph-cache: cannot write the export cache in it: .*Pass --cache-dir \(cacheDir\) or set VITGRAPH_CACHE/,
  );
  for (const [code, phrase] of [
    ['EROFS', 'the file system is read-only (EROFS)'],
    ['ENOSPC', 'no space left on the device (ENOSPC)'],
  ] as const) {
    const cacheDir = await tempDir(t);
    // The file system fails the first write of the weights (the cache root itself was creatable).
    const script = `
      import { syncBuiltinESMExports, createRequire } from 'node:module';
      const fsp = createRequire(import.meta.url)('node:fs/promises');
      const open = fsp.open;
      fsp.open = async (path, flags, ...rest) => {
        if (String(path).includes('weights.data')) throw Object.assign(new Error('injected'), { code: ${JSON.stringify(code)} });
        return open(path, flags, ...rest);
      };
      syncBuiltinESMExports();
      const { VisionEncoder } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
      try { await VisionEncoder.load(${JSON.stringify(TINY)}, { cacheDir: ${JSON.stringify(cacheDir)} }); }
      catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })); }
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    const reported = JSON.parse(child.stdout) as { code: string; message: string };
    t.is(reported.code, 'file_system', child.stderr);
    t.true(reported.message.startsWith(`${cacheDir}: cannot write the export cache in it: ${phrase}`), reported.message);
    t.false(reported.message.includes('vitgraph-tmp'));
    const left = execFileSync('find', [cacheDir, '-name', '*vitgraph-tmp*'], { encoding: 'utf8' });
    t.is(left, '', 'no temporary left behind');
  }
});

test('a manifest whose numbers disagree with its graphs is invalid_file, not a TypeError', async (t) => {
  const pkg = join(await tempDir(t), 'pkg');
  await exportModel({ model: TINY, out: pkg, maxPatches: [64] });
  const path = join(pkg, 'vitgraph.json');
  const original = JSON.parse(await readFile(path, 'utf8')) as { io: Record<string, unknown>; graphs: Record<string, unknown>[] };
  const edits: [string, (m: typeof original) => void, RegExp][] = [
    ['patchDim with its processor', (m) => (m.io.patchDim = 1176), /io: patchDim: expected 1536 \(3 × temporal_patch_size × patch_size² of its processor\), got 1176/],
    ['patchDim without a processor', (m) => ((m.io.patchDim = 1176), delete m.io.processor), /io: patchDim: expected 1536 \(the graph's pixel_values width\), got 1176/],
    ['mergeUnit', (m) => (m.io.mergeUnit = 3), /io: mergeUnit: expected spatialMergeSize² = 4, got 3/],
    ['an output name', (m) => (m.io.outputs = [{ name: 'other_embeds', tokenAxis: 0 }]), /io: outputs: expected names of graph outputs, got "other_embeds"/],
    ['a bucket size', (m) => (m.graphs[1]!.maxPatches = 128), /expected bucket 128 × 1 to match its graph, got a graph of 64 rows × 1 items/],
  ];
  for (const [what, edit, message] of edits) {
    const manifest = structuredClone(original);
    edit(manifest);
    await writeFile(path, JSON.stringify(manifest));
    const error = await t.throwsAsync(EncoderRuntime.open(pkg, { graphs: 'buckets' }), { instanceOf: VitgraphError }, what);
    t.is(error?.code, 'invalid_file', what);
    t.regex(error?.message ?? '', message, what);
  }
});

test('the CLI prints typed one-line errors for these, never "unexpected error"', async (t) => {
  const dir = await tinyCopy(t);
  await writeFile(join(dir, 'config.json'), deepJson(100_000));
  const bin = join(ROOT, 'dist', 'cli', 'main.js');
  const out = spawnSync(process.execPath, [bin, 'encode', IMAGE, '--model', dir, '--out', join(dir, 'o.safetensors'), '--cache-dir', await tempDir(t), '-q'], { encoding: 'utf8' });
  t.is(out.status, 1);
  t.regex(out.stderr, /^vitgraph encode: .*config.json: expected config.json to be JSON nested at most 64 levels/);
  t.notRegex(out.stderr, /unexpected error|Maximum call stack/);
});
