// Hugging Face hub layouts (issue 18): a sharded checkpoint as `huggingface-cli download` leaves it
// (snapshots/<rev>/ index and shards as links into ../../blobs/) exports and encodes correctly;
// a repository folder picks refs/main, `repo@rev` a revision, a snapshot folder itself; a link
// that leaves the model repository is still refused, with the rule in the message.

import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODELS } from '../graphs/index.js';
import { exportModel, VisionEncoder } from '../index.js';
import { VitgraphError } from '../src/errors.js';
import { resolveHubModel } from '../src/fs/hub.js';
import { openModelDirectory } from '../src/export/model-directory.js';
import { readSafetensors, writeSafetensors } from '../src/weights/safetensors.js';
import { ENCODER_FIXTURES, loadGolden, tempDir } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');

interface Hub {
  readonly repo: string;
  readonly snapshot: string;
  readonly revision: string;
}

/** The tiny checkpoint as a sharded hub download: two vision shards, one language shard, every file a link into blobs/. */
async function shardedHub(t: ExecutionContext, revision = 'a'.repeat(40)): Promise<Hub> {
  const root = await tempDir(t, 'vitgraph-hub-');
  const repo = join(root, 'models--Qwen--Tiny-VL');
  const snapshot = join(repo, 'snapshots', revision);
  await mkdir(join(repo, 'blobs'), { recursive: true });
  await mkdir(snapshot, { recursive: true });
  await mkdir(join(repo, 'refs'));
  await writeFile(join(repo, 'refs', 'main'), `${revision}\n`);
  const tensors = [...(await readSafetensors(join(TINY, 'model.safetensors')))];
  const half = Math.ceil(tensors.length / 2);
  const shards: Record<string, Map<string, (typeof tensors)[number][1]>> = {
    'model-00001-of-00003.safetensors': new Map(tensors.slice(0, half)),
    'model-00002-of-00003.safetensors': new Map(tensors.slice(half)),
    'model-00003-of-00003.safetensors': new Map([['model.language_model.embed_tokens.weight', tensors[0]![1]]]),
  };
  const weightMap: Record<string, string> = {};
  const staging = join(root, 'staging');
  await mkdir(staging);
  const files: Record<string, Buffer> = { 'config.json': await readFile(join(TINY, 'config.json')) };
  for (const [name, shard] of Object.entries(shards)) {
    await writeSafetensors(join(staging, name), shard);
    files[name] = await readFile(join(staging, name));
    for (const key of shard.keys()) weightMap[key] = name;
  }
  files['model.safetensors.index.json'] = Buffer.from(JSON.stringify({ metadata: {}, weight_map: weightMap }));
  for (const [name, bytes] of Object.entries(files)) {
    const blob = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(repo, 'blobs', blob), bytes);
    await symlink(join('..', '..', 'blobs', blob), join(snapshot, name));
  }
  return { repo, snapshot, revision };
}

test('a sharded hub download exports from its repository folder, and the graph gives the reference numbers', async (t) => {
  const hub = await shardedHub(t);
  const out = join(await tempDir(t), 'tower.onnx');
  const result = await exportModel({ model: hub.repo, out });
  t.is(result.model, 'qwen3-vl');
  const golden = await loadGolden('tiny');
  const encoder = await VisionEncoder.load(out, { threads: 1 });
  const encoded = await encoder.encode([{ pixelValues: golden.pixelValues, gridThw: golden.gridThw }]);
  await encoder.close();
  assertClose(t, 'image_embeds', encoded.outputs.image_embeds!.data as Float32Array, golden.expected.imageEmbeds, 1e-4);
});

test('VisionEncoder.load takes a hub repository folder, repo@revision, or a snapshot folder', async (t) => {
  const hub = await shardedHub(t);
  t.is(await resolveHubModel(hub.repo), hub.snapshot);
  t.is(await resolveHubModel(`${hub.repo}@main`), hub.snapshot);
  t.is(await resolveHubModel(`${hub.repo}@${hub.revision}`), hub.snapshot);
  t.is(await resolveHubModel(hub.snapshot), hub.snapshot);
  const cacheDir = await tempDir(t);
  for (const model of [hub.repo, hub.snapshot]) {
    const encoder = await VisionEncoder.load(model, { cacheDir, threads: 1, models: MODELS });
    t.is(encoder.outputs[0]!.name, 'image_embeds');
    await encoder.close();
  }
  const missing = await t.throwsAsync(resolveHubModel(`${hub.repo}@v9`), { instanceOf: VitgraphError });
  t.is(missing?.code, 'not_found');
  const hostile = await t.throwsAsync(resolveHubModel(`${hub.repo}@..`), { instanceOf: VitgraphError });
  t.is(hostile?.code, 'invalid_argument');
});

test('a repository without refs/main and with one snapshot uses it; with two, asks for a revision', async (t) => {
  const hub = await shardedHub(t);
  await rename(join(hub.repo, 'refs', 'main'), join(hub.repo, 'refs', 'dev'));
  t.is(await resolveHubModel(hub.repo), hub.snapshot);
  t.is(await resolveHubModel(`${hub.repo}@dev`), hub.snapshot);
  await mkdir(join(hub.repo, 'snapshots', 'b'.repeat(40)));
  const error = await t.throwsAsync(resolveHubModel(hub.repo), { instanceOf: VitgraphError });
  t.regex(error?.message ?? '', /2 snapshots.*Pass .*@<revision>/);
});

test('a shard link leaving the model repository is refused, naming the rule', async (t) => {
  const hub = await shardedHub(t);
  const outside = join(hub.repo, '..', 'elsewhere.safetensors');
  await writeSafetensors(outside, await readSafetensors(join(hub.snapshot, 'model-00002-of-00003.safetensors')));
  const link = join(hub.snapshot, 'model-00002-of-00003.safetensors');
  await rename(link, `${link}.old`);
  await symlink(outside, link);
  const error = await t.throwsAsync(openModelDirectory(MODELS, hub.repo), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_file');
  t.regex(
    error?.message ?? '',
    /inside .*snapshots.* or, through a link, inside its Hugging Face repository's .*blobs, got "model-00002-of-00003.safetensors" \(a symbolic link resolving to .*elsewhere.safetensors, outside the model repository\)/,
  );
});

test("a link into another repository's blobs is refused too", async (t) => {
  const hub = await shardedHub(t);
  const other = await shardedHub(t, 'c'.repeat(40));
  const link = join(hub.snapshot, 'model-00001-of-00003.safetensors');
  const target = join(other.snapshot, 'model-00001-of-00003.safetensors');
  await rename(link, `${link}.old`);
  await symlink(target, link);
  const error = await t.throwsAsync(openModelDirectory(MODELS, hub.repo), { instanceOf: VitgraphError });
  t.regex(error?.message ?? '', /outside the model repository/);
});
