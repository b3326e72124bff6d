// Checkpoints (single file, sharded index, prefix variants), range reads, strict binding, and the
// random-weight synth writer. Checkpoints are generated into temp dirs by the tests themselves;
// the optional golden test uses fixtures/encoder/tiny when someone has copied it there.

import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODELS } from '../graphs/index.js';
import { PRESETS } from '../graphs/qwen3-vl/index.js';
import { synthCheckpoint } from '../index.js';
import { towerTensorShapes } from '../src/export/synth.js';
import { VitgraphError, type ErrorCode } from '../src/errors.js';
import { hostTensor, numel, type HostTensor } from '../src/tensor.js';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { WeightBinder } from '../src/weights/bind.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/dtype.js';
import { readSafetensorsHeader, writeSafetensors } from '../src/weights/safetensors.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vitgraph-checkpoint-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function rejects(t: ExecutionContext, promise: Promise<unknown>, code: ErrorCode, fragment: string): Promise<VitgraphError> {
  const error = await t.throwsAsync(promise, { instanceOf: VitgraphError });
  t.is(error?.code, code);
  t.true(error?.message.includes(fragment), `"${error?.message}" should include "${fragment}"`);
  return error!;
}

function throwsBinding(t: ExecutionContext, fn: () => unknown, fragment: string): VitgraphError {
  const error = t.throws(fn, { instanceOf: VitgraphError });
  t.is(error?.code, 'weight_binding');
  t.true(error?.message.includes(fragment), `"${error?.message}" should include "${fragment}"`);
  return error!;
}

/** float32 tensor holding start, start+1, … */
const ramp = (shape: number[], start = 0): HostTensor<'float32'> =>
  hostTensor(
    'float32',
    shape,
    Float32Array.from({ length: numel(shape) }, (_, i) => start + i),
  );

const asF32 = (bytes: Uint8Array): number[] => [...new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)];
const asU16 = (bytes: Uint8Array): number[] => [...new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)];

// ---- prefixes and single files ------------------------------------------------------------

const LM = { 'model.language_model.layers.0.mlp.up_proj.weight': ramp([4, 2]), 'lm_head.weight': ramp([3, 2]) };

for (const prefix of ['model.visual.', 'visual.', ''] as const) {
  test(`single file with vision prefix "${prefix}" is stripped${prefix ? ', language model left out' : ''}`, async (t) => {
    const dir = await tempDir(t);
    await writeSafetensors(join(dir, 'model.safetensors'), {
      ...(prefix ? LM : {}),
      [`${prefix}pos_embed.weight`]: ramp([3, 2]),
      [`${prefix}blocks.0.norm1.weight`]: ramp([2], 10),
    });
    const checkpoint = await Checkpoint.open(dir);
    t.is(checkpoint.prefix, prefix);
    t.is(checkpoint.dir, dir);
    t.deepEqual([...checkpoint.tensors.keys()].sort(), ['blocks.0.norm1.weight', 'pos_embed.weight']);
    const norm = checkpoint.tensors.get('blocks.0.norm1.weight')!;
    t.like(norm, { key: `${prefix}blocks.0.norm1.weight`, dtype: 'F32', shape: [2], file: join(dir, 'model.safetensors'), byteLength: 8 });
    t.deepEqual(asF32(await checkpoint.read('blocks.0.norm1.weight', 'float32')), [10, 11]);
    t.deepEqual(asF32(await checkpoint.read('pos_embed.weight', 'float32')), [0, 1, 2, 3, 4, 5]);
  });
}

test('open accepts the .safetensors path itself and names what it looked for otherwise', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'vision.safetensors');
  await writeSafetensors(file, { 'visual.a': ramp([1]) });
  t.is((await Checkpoint.open(file)).tensors.size, 1);
  await rejects(t, Checkpoint.open(join(dir, 'missing')), 'not_found', join(dir, 'missing'));
  const empty = join(dir, 'empty');
  await mkdir(empty);
  await rejects(t, Checkpoint.open(empty), 'not_found', 'model.safetensors or model.safetensors.index.json');
});

test('read converts the stored dtype to the requested one', async (t) => {
  const dir = await tempDir(t);
  const values = Float32Array.from([1, 1 + 2 ** -11, -2.5, 2 ** -24, 70000]);
  await writeSafetensors(join(dir, 'model.safetensors'), {
    f32: hostTensor('float32', [5], values),
    bf16: hostTensor('bfloat16', [5], f32ToBf16(values)),
    f16: hostTensor('float16', [5], f32ToF16(values)),
  });
  const checkpoint = await Checkpoint.open(dir);
  t.deepEqual(asU16(await checkpoint.read('f32', 'float16')), [...f32ToF16(values)]);
  t.deepEqual(asU16(await checkpoint.read('f32', 'bfloat16')), [...f32ToBf16(values)]);
  t.deepEqual(asF32(await checkpoint.read('bf16', 'float32')), [...bf16ToF32(f32ToBf16(values))]);
  t.deepEqual(asF32(await checkpoint.read('f16', 'float32')), [...f16ToF32(f32ToF16(values))]);
  t.deepEqual(asU16(await checkpoint.read('f16', 'bfloat16')), [...f32ToBf16(f16ToF32(f32ToF16(values)))]);
  t.deepEqual(asF32(await checkpoint.read('f32', 'float32')), [...values]);
});

test('read refuses non-float tensors and unknown names', async (t) => {
  const dir = await tempDir(t);
  await writeSafetensors(join(dir, 'model.safetensors'), { 'model.visual.ids': hostTensor('int64', [1], BigInt64Array.from([1n])) });
  const checkpoint = await Checkpoint.open(dir);
  await rejects(t, checkpoint.read('ids', 'float32'), 'weight_binding', 'ids: expected a float dtype (F32, F16, BF16), got I64');
  await rejects(t, checkpoint.read('nope', 'float32'), 'weight_binding', 'nope: not in the checkpoint');
});

test("read fetches only the tensor's byte range (a file cut after it still serves it)", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'model.safetensors');
  await writeSafetensors(path, { 'model.visual.a': ramp([4], 1), 'model.visual.z': ramp([1000]) });
  const checkpoint = await Checkpoint.open(dir);
  const a = checkpoint.tensors.get('a')!;
  await truncate(path, a.offset + a.byteLength); // drops z, so a whole-file read would fail validation
  t.deepEqual(asF32(await checkpoint.read('a', 'float32')), [1, 2, 3, 4]);
  await rejects(t, checkpoint.read('z', 'float32'), 'invalid_file', 'the file was truncated');
});

// ---- sharded index ------------------------------------------------------------------------

/** Three shards: vision + LM mixed, vision only, and an LM-only shard cut short after its header. */
async function shardedCheckpoint(dir: string, weightMapExtra: Record<string, string> = {}): Promise<string> {
  const [s1, s2, s3] = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
  await writeSafetensors(join(dir, s1), {
    'model.visual.patch_embed.proj.bias': ramp([4]),
    'model.visual.blocks.0.norm1.weight': hostTensor('bfloat16', [2], Uint16Array.from([0x3f80, 0xc000])),
    'model.language_model.embed_tokens.weight': ramp([3, 2]),
  });
  await writeSafetensors(join(dir, s2), { 'model.visual.merger.linear_fc2.weight': hostTensor('float16', [2, 2], Uint16Array.from([0x3c00, 0x4000, 0x4200, 0x4400])) });
  await writeSafetensors(join(dir, s3), { 'model.language_model.layers.0.mlp.up_proj.weight': ramp([256, 256]), 'lm_head.weight': ramp([8, 8]) });
  const lm = join(dir, s3);
  await truncate(lm, (await readSafetensorsHeader(lm)).dataStart + 10);
  const weightMap = {
    'model.visual.patch_embed.proj.bias': s1,
    'model.visual.blocks.0.norm1.weight': s1,
    'model.language_model.embed_tokens.weight': s1,
    'model.visual.merger.linear_fc2.weight': s2,
    'model.language_model.layers.0.mlp.up_proj.weight': s3,
    'lm_head.weight': s3,
    ...weightMapExtra,
  };
  const index = join(dir, 'model.safetensors.index.json');
  await writeFile(index, JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return index;
}

test('sharded index: vision tensors come from their shards, the broken LM shard is never read', async (t) => {
  const dir = await tempDir(t);
  const index = await shardedCheckpoint(dir);
  const lmShard = join(dir, 'model-00003-of-00003.safetensors');
  await rejects(t, readSafetensorsHeader(lmShard), 'invalid_file', 'beyond'); // it really is unreadable
  for (const path of [dir, index]) {
    const checkpoint = await Checkpoint.open(path);
    t.is(checkpoint.prefix, 'model.visual.');
    t.deepEqual([...checkpoint.tensors.keys()].sort(), ['blocks.0.norm1.weight', 'merger.linear_fc2.weight', 'patch_embed.proj.bias']);
    t.false([...checkpoint.tensors.values()].some((x) => x.key.includes('language_model') || x.key === 'lm_head.weight'));
    t.is(checkpoint.tensors.get('merger.linear_fc2.weight')?.file, join(dir, 'model-00002-of-00003.safetensors'));
    t.deepEqual(asF32(await checkpoint.read('merger.linear_fc2.weight', 'float32')), [1, 2, 3, 4]);
    t.deepEqual(asF32(await checkpoint.read('blocks.0.norm1.weight', 'float32')), [1, -2]);
    t.deepEqual(asF32(await checkpoint.read('patch_embed.proj.bias', 'float32')), [0, 1, 2, 3]);
    const binder = new WeightBinder(checkpoint, 'float32');
    for (const [name, tensor] of checkpoint.tensors) binder.take(name, tensor.shape);
    t.notThrows(() => binder.finish(), 'LM tensors are not leftovers');
  }
});

test('sharded index: a missing shard is not_found naming it, even for language-model keys', async (t) => {
  const dir = await tempDir(t);
  await shardedCheckpoint(dir, { 'model.language_model.norm.weight': 'model-00004-of-00004.safetensors' });
  await rejects(t, Checkpoint.open(dir), 'not_found', join(dir, 'model-00004-of-00004.safetensors'));
});

test('sharded index: a vision key the map puts in a shard that lacks it is invalid_file', async (t) => {
  const dir = await tempDir(t);
  await shardedCheckpoint(dir, { 'model.visual.pos_embed.weight': 'model-00002-of-00003.safetensors' });
  const error = await rejects(t, Checkpoint.open(dir), 'invalid_file', 'expected tensor "model.visual.pos_embed.weight"');
  t.true(error.message.startsWith(join(dir, 'model-00002-of-00003.safetensors')));
});

test('sharded index: malformed JSON or no weight_map is invalid_file', async (t) => {
  const dir = await tempDir(t);
  const index = join(dir, 'model.safetensors.index.json');
  await writeFile(index, '{"weight_map": ');
  await rejects(t, Checkpoint.open(dir), 'invalid_file', 'to be JSON, got text that does not parse');
  await writeFile(index, '{"metadata": {}}');
  await rejects(t, Checkpoint.open(index), 'invalid_file', 'weight_map');
});

// ---- binding ------------------------------------------------------------------------------

async function bindingCheckpoint(t: ExecutionContext): Promise<Checkpoint> {
  const dir = await tempDir(t);
  await writeSafetensors(join(dir, 'model.safetensors'), {
    ...LM,
    'model.visual.pos_embed.weight': ramp([4, 2]),
    'model.visual.blocks.3.attn.qkv.weight': ramp([192, 32]),
    'model.visual.blocks.0.attn.qkv.weight': ramp([6, 2], 0.5),
  });
  return Checkpoint.open(dir);
}

test('binder: taking every tensor with its shape binds, loads in the binder dtype, and finishes', async (t) => {
  const binder = new WeightBinder(await bindingCheckpoint(t), 'float16');
  t.is(binder.dtype, 'float16');
  const qkv = binder.take('blocks.0.attn.qkv.weight', [6, 2]);
  binder.take('blocks.3.attn.qkv.weight', [192, 32]);
  binder.take('pos_embed.weight', [4, 2]);
  t.notThrows(() => binder.finish());
  t.deepEqual(qkv.shape, [6, 2]);
  t.deepEqual(asU16(await qkv.load()), [...f32ToF16(Float32Array.from({ length: 12 }, (_, i) => 0.5 + i))]);
});

test('binder: a mis-shaped tensor names itself and both shapes', async (t) => {
  const binder = new WeightBinder(await bindingCheckpoint(t), 'float32');
  const error = throwsBinding(t, () => binder.take('blocks.3.attn.qkv.weight', [192, 64]), 'blocks.3.attn.qkv.weight: expected shape [192, 64], got [192, 32]');
  t.like(error.details, { name: 'blocks.3.attn.qkv.weight', expected: [192, 64], got: [192, 32] });
  throwsBinding(t, () => binder.take('pos_embed.weight', [4, 2, 1]), 'pos_embed.weight: expected shape [4, 2, 1], got [4, 2]');
});

test('binder: a missing tensor names itself and suggests near names', async (t) => {
  const binder = new WeightBinder(await bindingCheckpoint(t), 'float32');
  throwsBinding(t, () => binder.take('blocks.0.attn.qkv.weigth', [6, 2]), 'Similar names in the checkpoint: blocks.0.attn.qkv.weight');
  throwsBinding(t, () => binder.take('model.visual.pos_embed.weight', [4, 2]), 'Similar names in the checkpoint: pos_embed.weight');
  const plain = throwsBinding(t, () => binder.take('merger.norm.weight', [64]), 'merger.norm.weight: expected a tensor of shape [64], got none');
  t.false(plain.message.includes('Similar'));
});

test('binder: taking a tensor twice throws', async (t) => {
  const binder = new WeightBinder(await bindingCheckpoint(t), 'float32');
  binder.take('pos_embed.weight', [4, 2]);
  throwsBinding(t, () => binder.take('pos_embed.weight', [4, 2]), 'pos_embed.weight: taken twice');
});

test('binder: finish lists every untaken vision tensor (first 10 by name) but no LM tensor', async (t) => {
  const dir = await tempDir(t);
  const vision = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`model.visual.blocks.${i}.norm1.bias`, ramp([2])]));
  await writeSafetensors(join(dir, 'model.safetensors'), { ...LM, ...vision });
  const binder = new WeightBinder(await Checkpoint.open(dir), 'float32');
  binder.take('blocks.5.norm1.bias', [2]);
  const error = throwsBinding(t, () => binder.finish(), 'unexpected tensors in checkpoint: expected every vision tensor to be used, got 11 unused (');
  t.true(error.message.includes('blocks.0.norm1.bias') && error.message.includes(', …)'));
  t.false(error.message.includes('blocks.5.norm1.bias'));
  t.false(error.message.includes('language_model') || error.message.includes('lm_head'));
  t.is((error.details['names'] as string[]).length, 11);
});

// ---- synth --------------------------------------------------------------------------------

/** The vision tensors of a tower as tabulated in the spec (§2.1), written out independently of synth. */
function specShapes(depth: number, H: number, I: number, O: number, deepstack: number): Map<string, number[]> {
  const rows: [string, number[]][] = [
    ['patch_embed.proj.weight', [H, 3, 2, 16, 16]],
    ['patch_embed.proj.bias', [H]],
    ['pos_embed.weight', [2304, H]],
  ];
  for (let i = 0; i < depth; i++) {
    for (const norm of ['norm1', 'norm2']) rows.push([`blocks.${i}.${norm}.weight`, [H]], [`blocks.${i}.${norm}.bias`, [H]]);
    rows.push([`blocks.${i}.attn.qkv.weight`, [3 * H, H]], [`blocks.${i}.attn.qkv.bias`, [3 * H]]);
    rows.push([`blocks.${i}.attn.proj.weight`, [H, H]], [`blocks.${i}.attn.proj.bias`, [H]]);
    rows.push([`blocks.${i}.mlp.linear_fc1.weight`, [I, H]], [`blocks.${i}.mlp.linear_fc1.bias`, [I]]);
    rows.push([`blocks.${i}.mlp.linear_fc2.weight`, [H, I]], [`blocks.${i}.mlp.linear_fc2.bias`, [H]]);
  }
  const merger = (name: string, normWidth: number): void => {
    rows.push([`${name}.norm.weight`, [normWidth]], [`${name}.norm.bias`, [normWidth]]);
    rows.push([`${name}.linear_fc1.weight`, [4 * H, 4 * H]], [`${name}.linear_fc1.bias`, [4 * H]]);
    rows.push([`${name}.linear_fc2.weight`, [O, 4 * H]], [`${name}.linear_fc2.bias`, [O]]);
  };
  merger('merger', H);
  for (let j = 0; j < deepstack; j++) merger(`deepstack_merger_list.${j}`, 4 * H);
  return new Map(rows);
}

test('synth tiny: every spec tensor present with its shape, init-scale finite values, HF config', async (t) => {
  const dir = await tempDir(t);
  const progress: [number, number][] = [];
  const result = await synthCheckpoint(dir, 'tiny', { onProgress: (done, total) => progress.push([done, total]) });
  t.deepEqual(result, { configPath: join(dir, 'config.json'), weightsPath: join(dir, 'model.safetensors'), bytes: result.bytes, model: 'qwen3-vl' });

  const checkpoint = await Checkpoint.open(dir);
  t.is(checkpoint.prefix, 'model.visual.');
  const expected = specShapes(2, 64, 128, 80, 1);
  t.is(expected.size, 12 * 2 + 3 + 6 + 6);
  t.deepEqual([...checkpoint.tensors.keys()].sort(), [...expected.keys()].sort());
  const binder = new WeightBinder(checkpoint, 'float32');
  for (const [name, shape] of expected) {
    t.is(checkpoint.tensors.get(name)?.dtype, 'F32');
    const values = asF32(await binder.take(name, shape).load());
    const center = /norm\d?\.weight$/.test(name) ? 1 : 0;
    const spread = values.reduce((m, v) => Math.max(m, Math.abs(v - center)), 0);
    t.true(values.every(Number.isFinite) && spread <= 0.02 * Math.sqrt(3) + 1e-6 && spread > 0, `${name}: spread ${spread} around ${center}`);
  }
  binder.finish();

  const total = progress.at(-1)![1];
  t.deepEqual(progress.at(-1), [total, total]);
  t.is(result.bytes, (await readSafetensorsHeader(result.weightsPath)).dataStart + total);
  const config = JSON.parse(await readFile(result.configPath, 'utf8')) as { model_type: string; vision_config: Record<string, unknown> };
  t.is(config.model_type, 'qwen3_vl');
  t.like(config.vision_config, {
    depth: 2,
    hidden_size: 64,
    intermediate_size: 128,
    num_heads: 4,
    out_hidden_size: 80,
    in_channels: 3,
    patch_size: 16,
    temporal_patch_size: 2,
    spatial_merge_size: 2,
    num_position_embeddings: 2304,
    deepstack_visual_indexes: [0],
    hidden_act: 'gelu_pytorch_tanh',
    model_type: 'qwen3_vl',
  });
});

test('synth is deterministic per seed, bfloat16 is the rounded float32, and it refuses to overwrite', async (t) => {
  const [a, b, c, d] = await Promise.all([tempDir(t), tempDir(t), tempDir(t), tempDir(t)]);
  await synthCheckpoint(a, 'tiny', { seed: 7 });
  await synthCheckpoint(b, 'tiny', { seed: 7 });
  await synthCheckpoint(c, 'tiny', { seed: 8 });
  const weights = (dir: string): Promise<Buffer> => readFile(join(dir, 'model.safetensors'));
  // Buffer.equals, not deepEqual: ava's structural diff is very slow on megabytes.
  t.true((await weights(a)).equals(await weights(b)));
  t.false((await weights(a)).equals(await weights(c)));

  const half = await synthCheckpoint(d, 'tiny', { seed: 7, dtype: 'bfloat16' });
  const [full, halved] = await Promise.all([Checkpoint.open(a), Checkpoint.open(d)]);
  t.is(halved.tensors.get('pos_embed.weight')?.dtype, 'BF16');
  t.true(Buffer.from(await halved.read('pos_embed.weight', 'bfloat16')).equals(await full.read('pos_embed.weight', 'bfloat16')));
  t.true(half.bytes < (await weights(a)).byteLength / 2 + 8192);

  await rejects(t, synthCheckpoint(a, 'tiny', { seed: 9 }), 'invalid_argument', 'overwrite: true');
  t.true((await weights(a)).equals(await weights(b)), 'refusal left the files alone');
  await synthCheckpoint(a, 'tiny', { seed: 8, overwrite: true });
  t.true((await weights(a)).equals(await weights(c)));
});

test('synth presets match the published towers: tensor counts and parameter totals', (t) => {
  const model = MODELS.byId('qwen3-vl');
  const shapesOf = (preset: '2b' | '8b'): [string, number[]][] => towerTensorShapes(model, model.parseConfig(PRESETS[preset]));
  const params = (preset: '2b' | '8b'): number => shapesOf(preset).reduce((sum, [, shape]) => sum + numel(shape), 0);
  t.is(shapesOf('2b').length, 315);
  t.is(shapesOf('8b').length, 351);
  t.is((params('2b') / 1e6).toFixed(1), '407.0');
  t.is((params('8b') / 1e6).toFixed(1), '576.4');
  const sorted = (entries: Iterable<[string, number[]]>): [string, number[]][] => [...entries].sort(([a], [b]) => (a < b ? -1 : 1));
  t.deepEqual(sorted(shapesOf('8b')), sorted(specShapes(27, 1152, 4304, 4096, 3)));
});

// Real tiny tower exported from transformers (depth 3, I 176, deepstack [0, 1]); copied in by others.
const golden = fileURLToPath(new URL('../../fixtures/encoder/tiny/model.safetensors', import.meta.url));
(existsSync(golden) ? test : test.skip)('golden tiny checkpoint binds exactly the spec tensors', async (t) => {
  const checkpoint = await Checkpoint.open(golden);
  t.is(checkpoint.prefix, 'model.visual.');
  const binder = new WeightBinder(checkpoint, 'float32');
  for (const [name, shape] of specShapes(3, 64, 176, 80, 2)) binder.take(name, shape);
  t.notThrows(() => binder.finish());
});
