// The export cache keys on every byte that reaches the graph (issue 18): same-shape checkpoints
// with different weights get their own entries and their own embeddings, a checkpoint edited in
// place is re-exported, the weights' hash is stamped (computed once per file version), and hub
// layouts (files as links into blobs/) of two towers give two entries with the right outputs.

import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { cp, mkdir, open, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VisionEncoder } from '../index.js';
import { checkpointKey, listCache } from '../src/export/cache.js';
import { hostTensor } from '../src/tensor.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../src/weights/safetensors.js';
import { ENCODER_FIXTURES, loadGolden, tempDir } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';
import { loadQwen2Golden } from './helpers/qwen2.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');
const ATOL = 1e-4;
/** A tensor every output depends on (the merger's last bias). */
const EDITED = 'model.visual.merger.linear_fc2.bias';

/** A copy of `source` whose EDITED tensor gets `delta` added to every value, written in place (same inode, same size). */
async function editInPlace(dir: string, delta: number): Promise<void> {
  const path = join(dir, 'model.safetensors');
  const entry = (await readSafetensorsHeader(path)).entries.get(EDITED)!;
  const file = await open(path, 'r+');
  try {
    const bytes = new Uint8Array(entry.byteLength);
    await file.read(bytes, 0, bytes.length, entry.offset);
    const values = new Float32Array(bytes.buffer);
    for (let i = 0; i < values.length; i++) values[i]! += delta;
    await file.write(bytes, 0, bytes.length, entry.offset);
  } finally {
    await file.close();
  }
}

async function copyOf(t: ExecutionContext, source: string): Promise<string> {
  const dir = join(await tempDir(t, 'vitgraph-cache-content-'), 'ckpt');
  await cp(source, dir, { recursive: true });
  return dir;
}

async function encodeGolden(model: string, cacheDir: string, onHashProgress?: (done: number, total: number) => void): Promise<Float32Array> {
  const golden = await loadGolden('tiny');
  const encoder = await VisionEncoder.load(model, { cacheDir, threads: 1, ...(onHashProgress ? { onHashProgress } : {}) });
  try {
    const out = await encoder.encode([{ pixelValues: golden.pixelValues, gridThw: golden.gridThw }]);
    return out.outputs.image_embeds!.data as Float32Array;
  } finally {
    await encoder.close();
  }
}

test('same-shape checkpoints with different weights get their own entries and their own, correct embeddings', async (t) => {
  const cacheDir = await tempDir(t);
  const golden = await loadGolden('tiny');
  const original = await copyOf(t, TINY);
  const tuned = await copyOf(t, TINY);
  await editInPlace(tuned, 0.5);
  const first = await encodeGolden(original, cacheDir);
  assertClose(t, 'original image_embeds', first, golden.expected.imageEmbeds, ATOL);
  const second = await encodeGolden(tuned, cacheDir);
  // A bias added after the last layer: every output value moves by exactly that much.
  assertClose(
    t,
    'fine-tuned image_embeds',
    second,
    golden.expected.imageEmbeds.map((v) => v + 0.5),
    ATOL,
  );
  t.is((await listCache({ cacheDir })).length, 2);
  // And the first checkpoint still gets its own entry's numbers.
  assertClose(t, 'original again', await encodeGolden(original, cacheDir), golden.expected.imageEmbeds, ATOL);
});

test('a checkpoint edited in place (mtime restored) is hashed again and re-exported', async (t) => {
  const cacheDir = await tempDir(t);
  const golden = await loadGolden('tiny');
  const dir = await copyOf(t, TINY);
  const weights = join(dir, 'model.safetensors');
  assertClose(t, 'before', await encodeGolden(dir, cacheDir), golden.expected.imageEmbeds, ATOL);
  const before = await stat(weights);
  await editInPlace(dir, -0.25);
  await utimes(weights, before.atime, before.mtime); // ctime still moves: the stamp cannot be fooled
  t.is((await stat(weights)).ino, before.ino, 'edited in place');
  assertClose(
    t,
    'after',
    await encodeGolden(dir, cacheDir),
    golden.expected.imageEmbeds.map((v) => v - 0.25),
    ATOL,
  );
  t.is((await listCache({ cacheDir })).length, 2);
});

test('weights are hashed once per file version, with progress; a copy hashes its own bytes to the same key', async (t) => {
  const cacheDir = await tempDir(t);
  const dir = await copyOf(t, TINY);
  const header = await readSafetensorsHeader(join(dir, 'model.safetensors'));
  const size = [...header.entries.values()].reduce((sum, e) => sum + e.byteLength, 0); // every tensor byte, no header
  const calls: [number, number][] = [];
  const key = await checkpointKey(dir, { cacheDir, onHashProgress: (done, total) => calls.push([done, total]) });
  t.deepEqual(calls.at(-1), [size, size], 'progress ends at every byte');
  calls.length = 0;
  t.is(await checkpointKey(dir, { cacheDir, onHashProgress: (done, total) => calls.push([done, total]) }), key);
  t.deepEqual(calls, [], 'the stamp spares the second hash');
  const copy = await copyOf(t, dir);
  t.is(await checkpointKey(copy, { cacheDir, onHashProgress: (done, total) => calls.push([done, total]) }), key);
  t.true(calls.length > 0, 'a new inode is hashed');
  // The key moves with config.json and with preprocessor_config.json.
  await writeFile(join(copy, 'preprocessor_config.json'), JSON.stringify({ max_pixels: 500_000 }));
  t.not(await checkpointKey(copy, { cacheDir }), key);
});

test('the key covers the vision tensors of a full VLM file and skips its language model', async (t) => {
  const cacheDir = await tempDir(t);
  const dir = await copyOf(t, TINY);
  const path = join(dir, 'model.safetensors');
  const tensors = await readSafetensors(path);
  const language = hostTensor('float32', [4], Float32Array.from([1, 2, 3, 4]));
  await writeSafetensors(path, new Map([...tensors, ['model.language_model.embed_tokens.weight', language]]));
  const key = await checkpointKey(dir, { cacheDir });
  await writeSafetensors(path, new Map([...tensors, ['model.language_model.embed_tokens.weight', hostTensor('float32', [4], Float32Array.from([5, 6, 7, 8]))]]));
  t.is(await checkpointKey(dir, { cacheDir }), key, 'language bytes never reach the graph');
  await editInPlace(dir, 1);
  t.not(await checkpointKey(dir, { cacheDir }), key);
});

/** `source` laid out as the hub cache leaves it: snapshots/<rev>/* are links into ../../blobs/<sha256>. */
async function hubRepository(root: string, name: string, source: string): Promise<string> {
  const repo = join(root, `models--test--${name}`);
  const revision = createHash('sha1').update(name).digest('hex');
  const snapshot = join(repo, 'snapshots', revision);
  await mkdir(join(repo, 'blobs'), { recursive: true });
  await mkdir(snapshot, { recursive: true });
  await mkdir(join(repo, 'refs'));
  await writeFile(join(repo, 'refs', 'main'), revision);
  for (const file of ['config.json', 'model.safetensors']) {
    const bytes = await readFile(join(source, file));
    const blob = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(repo, 'blobs', blob), bytes);
    await symlink(join('..', '..', 'blobs', blob), join(snapshot, file));
  }
  return repo;
}

test('hub layouts of a Qwen3-VL and a Qwen2-VL tower through one cache: two entries, each its own outputs', async (t) => {
  const root = await tempDir(t, 'vitgraph-hub-cache-');
  const cacheDir = join(root, 'cache');
  const qwen3 = await hubRepository(root, 'tiny-qwen3', TINY);
  const qwen2 = await hubRepository(root, 'tiny-qwen2', join(ENCODER_FIXTURES, 'qwen2vl_tiny'));
  const golden3 = await loadGolden('tiny');
  const golden2 = await loadQwen2Golden('qwen2vl_tiny');

  const encoder3 = await VisionEncoder.load(qwen3, { cacheDir, threads: 1 });
  const out3 = await encoder3.encode([{ pixelValues: golden3.pixelValues, gridThw: golden3.gridThw }]);
  await encoder3.close();
  assertClose(t, 'qwen3-vl image_embeds', out3.outputs.image_embeds!.data as Float32Array, golden3.expected.imageEmbeds, ATOL);
  t.truthy(out3.outputs.deepstack_embeds);

  const encoder2 = await VisionEncoder.load(qwen2, { cacheDir, threads: 1 });
  const out2 = await encoder2.encode([{ pixelValues: golden2.pixelValues, gridThw: golden2.gridThw }]);
  await encoder2.close();
  t.deepEqual(Object.keys(out2.outputs), ['image_embeds'], 'no deepstack_embeds from a Qwen2-VL tower');
  assertClose(t, 'qwen2-vl image_embeds', out2.outputs.image_embeds!.data as Float32Array, golden2.imageEmbeds, ATOL);

  const entries = await listCache({ cacheDir });
  t.deepEqual(entries.map((e) => e.model).sort(), ['qwen2-vl', 'qwen3-vl'], 'two entries, one per tower');
});
