// Paths read out of files stay confined and only regular files are opened (issue 9 §5): a shard
// index cannot reach outside its directory (`..`, absolute paths, symbolic links), a FIFO or a
// directory is refused without being opened (no hang), and no error echoes a stranger file's bytes.

import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODELS } from '../graphs/index.js';
import { openModelDirectory as openWith } from '../src/export/model-directory.js';
import { VitgraphError, type ErrorCode } from '../src/errors.js';
import { confinedPath, openRegularFile, readRegularText } from '../src/fs/confined.js';
import { hostTensor } from '../src/tensor.js';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../src/weights/safetensors.js';
import { tempDir } from './helpers/files.js';

const openModelDirectory = (dir: unknown): ReturnType<typeof openWith> => openWith(MODELS, dir as string);

async function rejects(t: ExecutionContext, promise: Promise<unknown>, code: ErrorCode, fragment: string): Promise<VitgraphError> {
  const error = await t.throwsAsync(promise, { instanceOf: VitgraphError });
  t.is(error?.code, code);
  t.true(error?.message.includes(fragment), `"${error?.message}" should include "${fragment}"`);
  return error!;
}

const tensor = (): ReturnType<typeof hostTensor> => hostTensor('float32', [2], Float32Array.from([1, 2]));

/** A checkpoint directory whose index maps one vision tensor and one language tensor to `shards`. */
async function indexedCheckpoint(t: ExecutionContext, shards: { vision: string; language?: string }): Promise<{ root: string; dir: string; index: string }> {
  const root = await tempDir(t, 'vitgraph-safety-paths-');
  const dir = join(root, 'ckpt');
  await mkdir(dir);
  const index = join(dir, 'model.safetensors.index.json');
  const weightMap: Record<string, string> = { 'model.visual.pos_embed.weight': shards.vision };
  if (shards.language) weightMap['model.language_model.embed.weight'] = shards.language;
  await writeFile(index, JSON.stringify({ weight_map: weightMap }));
  return { root, dir, index };
}

const mkfifo = (path: string): void => {
  execFileSync('mkfifo', [path]);
};

test('a shard path with ".." is refused before anything is opened', async (t) => {
  const { root, dir } = await indexedCheckpoint(t, { vision: '../outside.safetensors' });
  await writeSafetensors(join(root, 'outside.safetensors'), { 'model.visual.pos_embed.weight': tensor() });
  await rejects(t, Checkpoint.open(dir), 'invalid_file', '(a ".." segment)');
});

test('a shard path reaching /etc/passwd is refused, and the error prints none of its bytes', async (t) => {
  const { dir } = await indexedCheckpoint(t, { vision: '../../../../../../../../etc/passwd' });
  const error = await rejects(t, Checkpoint.open(dir), 'invalid_file', 'expected a relative path inside');
  // Today's reader printed the file's first 8 bytes as a little-endian number ("root:x:0" → 3487…).
  t.notRegex(error.message, /\d{9,}/);
});

test('an absolute shard path is refused, even to a valid safetensors file', async (t) => {
  const { root, dir } = await indexedCheckpoint(t, { vision: '/placeholder' });
  const outside = join(root, 'outside.safetensors');
  await writeSafetensors(outside, { 'model.visual.pos_embed.weight': tensor() });
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.visual.pos_embed.weight': outside } }));
  await rejects(t, Checkpoint.open(dir), 'invalid_file', '(an absolute path)');
});

test('a shard that is a symbolic link leading out of the directory is refused', async (t) => {
  const { root, dir } = await indexedCheckpoint(t, { vision: 'shard.safetensors' });
  const outside = join(root, 'outside.safetensors');
  await writeSafetensors(outside, { 'model.visual.pos_embed.weight': tensor() });
  await symlink(outside, join(dir, 'shard.safetensors'));
  await rejects(t, Checkpoint.open(dir), 'invalid_file', 'symbolic link resolving to');
});

test('a symbolic link that stays inside the directory is followed', async (t) => {
  const { dir } = await indexedCheckpoint(t, { vision: 'shard.safetensors' });
  await mkdir(join(dir, 'real'));
  await writeSafetensors(join(dir, 'real', 'a.safetensors'), { 'model.visual.pos_embed.weight': tensor() });
  await symlink(join(dir, 'real', 'a.safetensors'), join(dir, 'shard.safetensors'));
  const checkpoint = await Checkpoint.open(dir);
  t.deepEqual([...checkpoint.tensors.keys()], ['pos_embed.weight']);
});

for (const role of ['vision', 'language'] as const) {
  test(`a FIFO ${role} shard is refused at once, never opened (no hang)`, async (t) => {
    t.timeout(10_000);
    const { dir } = await indexedCheckpoint(t, role === 'vision' ? { vision: 'pipe.safetensors' } : { vision: 'v.safetensors', language: 'pipe.safetensors' });
    if (role === 'language') await writeSafetensors(join(dir, 'v.safetensors'), { 'model.visual.pos_embed.weight': tensor() });
    mkfifo(join(dir, 'pipe.safetensors'));
    await rejects(t, Checkpoint.open(dir), 'invalid_file', 'to be a regular file, got a FIFO');
  });
}

test('a directory listed as a shard is refused', async (t) => {
  const { dir } = await indexedCheckpoint(t, { vision: 'sub' });
  await mkdir(join(dir, 'sub'));
  await rejects(t, Checkpoint.open(dir), 'invalid_file', 'got a directory');
});

test('a FIFO model.safetensors, config.json or index is refused without hanging', async (t) => {
  t.timeout(10_000);
  const dir = await tempDir(t, 'vitgraph-safety-fifo-');
  const pipe = join(dir, 'model.safetensors');
  mkfifo(pipe);
  await rejects(t, Checkpoint.open(dir), 'invalid_file', 'got a FIFO');
  await rejects(t, readSafetensorsHeader(pipe), 'invalid_file', 'got a FIFO');
  await rejects(t, readSafetensors(pipe), 'invalid_file', 'got a FIFO');
  mkfifo(join(dir, 'config.json'));
  await rejects(t, openModelDirectory(dir), 'invalid_file', 'config.json to be a regular file, got a FIFO');
  mkfifo(join(dir, 'x.index.json'));
  await rejects(t, Checkpoint.open(join(dir, 'x.index.json')), 'invalid_file', 'got a FIFO');
});

test('confinedPath returns the real path inside; openRegularFile and readRegularText read regular files', async (t) => {
  const dir = await tempDir(t, 'vitgraph-safety-confined-');
  await mkdir(join(dir, 'a'));
  await writeFile(join(dir, 'a', 'b.txt'), 'hello');
  const real = await confinedPath(dir, 'a/./b.txt', 'test file');
  t.true(real.endsWith(join('a', 'b.txt')));
  t.is(await readRegularText(real, 'test file'), 'hello');
  await (await openRegularFile(real, 'test file')).close();
  await rejects(t, confinedPath(dir, 'a/missing.txt', 'test file'), 'not_found', 'test file not found');
  await rejects(t, confinedPath(dir, 'a\\..\\..\\x', 'test file'), 'invalid_file', '".." segment');
  await rejects(t, confinedPath(dir, 'C:/x', 'test file'), 'invalid_file', 'absolute');
  await rejects(t, confinedPath(dir, '', 'test file'), 'invalid_file', 'expected a relative path');
  await rejects(t, openRegularFile(join(dir, 'a'), 'test file'), 'invalid_file', 'got a directory');
});

test('non-string paths at the public boundary are invalid_argument, not a node:fs TypeError', async (t) => {
  await rejects(t, Checkpoint.open(5 as unknown as string), 'invalid_argument', 'checkpoint path');
  // readFile(5) would read file descriptor 5.
  await rejects(t, readSafetensors(5 as unknown as string), 'invalid_argument', 'safetensors path');
  await rejects(t, writeSafetensors(undefined as unknown as string, {}), 'invalid_argument', 'safetensors output path');
});
