// Config validation before allocation (issue 9 §6): every size is bounded in parseConfig, and the
// config is checked against the checkpoint header's shapes before any table, graph or buffer is
// sized from it, so absurd values fail fast with an invalid_config error naming the field.

import test, { type ExecutionContext } from 'ava';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODELS } from '../graphs/index.js';
import { openModelDirectory as openWith } from '../src/export/model-directory.js';
import { CONFIG_BOUNDS, checkConfigAgainstWeights, parseConfig } from '../graphs/qwen3-vl/config.js';
import { exportModel } from '../index.js';

const openModelDirectory = (dir: string): ReturnType<typeof openWith> => openWith(MODELS, dir);
import { VitgraphError } from '../src/errors.js';
import { ENCODER_FIXTURES, tempDir } from './helpers/files.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');

/** The tiny checkpoint with its vision_config fields overridden. */
async function tinyWith(t: ExecutionContext, overrides: Record<string, unknown>): Promise<string> {
  const dir = await tempDir(t, 'vitgraph-safety-config-');
  const config = JSON.parse(await readFile(join(TINY, 'config.json'), 'utf8')) as { vision_config: Record<string, unknown> };
  Object.assign(config.vision_config, overrides);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await copyFile(join(TINY, 'model.safetensors'), join(dir, 'model.safetensors'));
  return dir;
}

async function rejectsConfig(t: ExecutionContext, promise: Promise<unknown>, field: string): Promise<VitgraphError> {
  const error = await t.throwsAsync(promise, { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_config', error?.message);
  t.true(error?.message.includes(`config field "${field}"`) || error?.message.includes(`config field "vision_config.${field}"`), error?.message);
  return error!;
}

for (const [name, overrides, field] of [
  ['hidden_size 2^31, num_heads 1', { hidden_size: 2 ** 31, num_heads: 1 }, 'hidden_size'],
  ['hidden_size 2^28', { hidden_size: 2 ** 28 }, 'hidden_size'],
  ['hidden_size 2^40', { hidden_size: 2 ** 40 }, 'hidden_size'],
  // In bounds, but the checkpoint says 64: caught from the header before any table is built.
  ['hidden_size 65536, num_heads 1', { hidden_size: 65_536, num_heads: 1 }, 'hidden_size'],
  ['num_position_embeddings 2^20', { num_position_embeddings: 2 ** 20 }, 'num_position_embeddings'],
  ['intermediate_size off', { intermediate_size: 262_144 }, 'intermediate_size'],
  ['depth beyond the checkpoint', { depth: 200 }, 'depth'],
  ['out_hidden_size off', { out_hidden_size: 81 }, 'out_hidden_size'],
  ['spatial_merge_size off', { spatial_merge_size: 4 }, 'spatial_merge_size'],
  ['more deepstack mergers than the checkpoint', { deepstack_visual_indexes: [0, 1, 2] }, 'deepstack_visual_indexes'],
] as const) {
  test(`export with ${name} fails in under 1 s naming ${field}`, async (t) => {
    const dir = await tinyWith(t, overrides);
    const start = performance.now();
    await rejectsConfig(t, exportModel({ model: dir, out: join(dir, 'out.onnx') }), field);
    const ms = performance.now() - start;
    t.true(ms < 1000, `took ${ms.toFixed(0)} ms`);
  });
}

test('every size field is bounded in parseConfig, naming the field', (t) => {
  for (const [field, max] of Object.entries(CONFIG_BOUNDS)) {
    const error = t.throws(() => parseConfig({ vision_config: { out_hidden_size: 80, [field]: max + 1 } }), { instanceOf: VitgraphError });
    t.is(error?.code, 'invalid_config');
    t.true(error?.message.includes(`"vision_config.${field}"`) && error.message.includes(`1..${max}`), error?.message);
  }
  const tooMany = t.throws(() => parseConfig({ out_hidden_size: 80, depth: 2, deepstack_visual_indexes: [0, 1, 1] }), { instanceOf: VitgraphError });
  t.true(tooMany?.message.includes('deepstack_visual_indexes'));
});

test('the shipped tiny checkpoints pass the header check', async (t) => {
  for (const name of ['tiny', 'tiny_single']) {
    const model = await openModelDirectory(join(ENCODER_FIXTURES, name));
    t.is(model.config.outHiddenSize, 80);
  }
});

test('checkConfigAgainstWeights leaves tensors missing from the checkpoint to the binder', (t) => {
  const config = parseConfig({ out_hidden_size: 80, hidden_size: 64, num_heads: 4, depth: 2, deepstack_visual_indexes: [] });
  t.notThrows(() => checkConfigAgainstWeights(config, () => undefined));
  const error = t.throws(() => checkConfigAgainstWeights(config, (name) => (name === 'pos_embed.weight' ? [2304, 32] : undefined)), { instanceOf: VitgraphError });
  t.true(error?.message.includes('config field "hidden_size"') && error.message.includes('expected pos_embed.weight of shape [2304, 64] (from the config), got [2304, 32]'), error?.message);
});
