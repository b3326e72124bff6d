// The model-agnostic core: the registry detects each tower from config.json, exports it, records
// its I/O contract, and the runtime runs any tower through that contract alone. Qwen3.5 (the
// Qwen3-VL tower without DeepStack) against its golden through the dynamic graph and a bucket.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODELS } from '../graphs/index.js';
import { exportModel, VisionEncoder, VitgraphError } from '../index.js';
import { inspectModel } from '../src/onnx/inspect.js';
import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { nativeAvailable } from '../src/runtime/native/index.js';
import { ENCODER_FIXTURES, loadGolden, ROOT, tempDir } from './helpers/files.js';
import { readSafetensors } from '../src/weights/index.js';
import { assertClose } from './helpers/numeric.js';

const ATOL = 1e-4;

test('the registry detects each family from model_type and refuses unknown ones by name', (t) => {
  t.is(MODELS.detect({ model_type: 'qwen3_vl', vision_config: {} }).id, 'qwen3-vl');
  t.is(MODELS.detect({ model_type: 'qwen3_5_moe' }).id, 'qwen3.5');
  t.is(MODELS.detect({ vision_config: { model_type: 'qwen3_5' } }).id, 'qwen3.5');
  t.is(MODELS.detect({ model_type: 'qwen2_vl' }).id, 'qwen2-vl');
  t.is(MODELS.detect({ model_type: 'qwen2_5_vl' }).id, 'qwen2.5-vl');
  const unknown = t.throws(() => MODELS.detect({ model_type: 'llava' }), { instanceOf: VitgraphError });
  t.is(unknown?.code, 'invalid_config');
  t.regex(unknown?.message ?? '', /model_type.*got llava/);
  t.is(t.throws(() => MODELS.detect({}), { instanceOf: VitgraphError })?.code, 'invalid_config');
  t.is(t.throws(() => MODELS.byId('nope'), { instanceOf: VitgraphError })?.code, 'invalid_argument');
});

test('qwen3_5_tiny: exported package records the model and only image_embeds; dynamic and bucket match the golden', async (t) => {
  const golden = await loadGolden('qwen3_5_tiny');
  const pkg = join(await tempDir(t), 'pkg');
  const result = await exportModel({ model: golden.dir, out: pkg, maxPatches: [256] });
  t.is(result.model, 'qwen3.5');
  const manifest = JSON.parse(await readFile(join(pkg, 'vitgraph.json'), 'utf8')) as { model: string; io: { outputs: unknown[]; patchDim: number } };
  t.is(manifest.model, 'qwen3.5');
  t.deepEqual(manifest.io.outputs, [{ name: 'image_embeds', tokenAxis: 0 }]);
  t.is(manifest.io.patchDim, 1536);
  const summary = await inspectModel(join(pkg, 'dynamic.onnx'));
  t.deepEqual(
    summary.outputs.map((o) => o.name),
    ['image_embeds'],
  );
  t.is(summary.metadata['vitgraph.model'], 'qwen3.5');

  const backends = [{ graphs: 'dynamic' as const }, { graphs: 'buckets' as const }, ...(nativeAvailable().ok ? [{ graphs: 'buckets' as const, backend: 'native' as const }] : [])];
  for (const options of backends) {
    const runtime = await EncoderRuntime.open(pkg, { ...options, threads: 1 });
    try {
      const out = await runtime.run(golden.pixelValues, golden.gridThw);
      t.deepEqual(Object.keys(out), ['image_embeds']);
      t.deepEqual(out.image_embeds!.shape, [37, 80]);
      assertClose(t, `${JSON.stringify(options)} image_embeds`, out.image_embeds!.data, golden.expected.imageEmbeds, ATOL);
    } finally {
      await runtime.close();
    }
  }
});

for (const [name, id, rows, tokens] of [
  ['qwen2vl_tiny', 'qwen2-vl', 176, 44],
  ['qwen2_5vl_tiny', 'qwen2.5-vl', 392, 98],
] as const) {
  test(`${name}: detected as ${id}, exported, dynamic and bucket match the golden on ort-node${nativeAvailable().ok ? ' and native' : ''}`, async (t) => {
    const dir = join(ENCODER_FIXTURES, name);
    const io = await readSafetensors(join(dir, 'io.safetensors'));
    const pkg = join(await tempDir(t), 'pkg');
    const result = await exportModel({ model: dir, out: pkg, maxPatches: [512] });
    t.is(result.model, id);
    const backends = [{ graphs: 'dynamic' as const }, { graphs: 'buckets' as const }, ...(nativeAvailable().ok ? [{ graphs: 'buckets' as const, backend: 'native' as const }] : [])];
    for (const options of backends) {
      const runtime = await EncoderRuntime.open(pkg, { ...options, threads: 1 });
      try {
        t.is(runtime.patchDim, 1176);
        const out = await runtime.run(io.get('pixel_values')!, io.get('grid_thw')!);
        t.deepEqual(Object.keys(out), ['image_embeds']);
        t.deepEqual(out.image_embeds!.shape, [tokens, 80]);
        t.is(rows / 4, tokens);
        assertClose(t, `${JSON.stringify(options)} image_embeds`, out.image_embeds!.data, io.get('expected.image_embeds')!.data as Float32Array, ATOL);
      } finally {
        await runtime.close();
      }
    }
  });
}

test('a Qwen3.5 config with deepstack indexes is refused naming the field', async (t) => {
  const golden = await loadGolden('qwen3_5_tiny');
  const model = MODELS.byId('qwen3.5');
  const bad = { ...golden.config, vision_config: { ...(golden.config.vision_config as object), deepstack_visual_indexes: [0] } };
  const error = t.throws(() => model.parseConfig(bad), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_config');
  t.regex(error?.message ?? '', /deepstack_visual_indexes/);
});

test("VisionEncoder on a Qwen3.5 checkpoint: items carry exactly the tower's named outputs", async (t) => {
  const golden = await loadGolden('qwen3_5_tiny');
  const encoder = await VisionEncoder.load(golden.dir, { cacheDir: await tempDir(t), threads: 1 });
  try {
    t.deepEqual(
      encoder.outputs.map((o) => o.name),
      ['image_embeds'],
    );
    const result = await encoder.encode([{ pixelValues: golden.pixelValues, gridThw: golden.gridThw }]);
    t.deepEqual(
      result.items.map((i) => i.tokens),
      [24, 12, 1],
    );
    t.deepEqual(
      result.items.map((i) => Object.keys(i.outputs)),
      [['image_embeds'], ['image_embeds'], ['image_embeds']],
    );
    t.deepEqual(result.items[1]!.outputs.image_embeds!.shape, [12, 80]);
    assertClose(t, 'item 1', result.items[1]!.outputs.image_embeds!.data, golden.expected.imageEmbeds.subarray(24 * 80, 36 * 80), ATOL);
  } finally {
    await encoder.close();
  }
});

test('encode() after close() rejects with code closed, even for a graph not opened yet', async (t) => {
  const golden = await loadGolden('tiny');
  const encoder = await VisionEncoder.load(golden.dir, { cacheDir: await tempDir(t), threads: 1, graphs: 'buckets' });
  await encoder.close();
  const error = await t.throwsAsync(encoder.encode([{ pixelValues: golden.pixelValues, gridThw: golden.gridThw }]), { instanceOf: VitgraphError });
  t.is(error?.code, 'closed');
});

test('vitgraph synth + encode end to end for a synthesized checkpoint of every family', async (t) => {
  const dir = await tempDir(t);
  const env = { ...process.env, VITGRAPH_CACHE: join(dir, 'cache') };
  const bin = join(ROOT, 'dist', 'cli', 'main.js');
  const image = join(ROOT, 'fixtures', 'images', 'chelsea.png');
  for (const [preset, outputs, columns] of [
    ['tiny', ['deepstack_embeds', 'grid_thw', 'image_embeds'], 1536],
    ['qwen3.5-tiny', ['grid_thw', 'image_embeds'], 1536],
    ['qwen2-vl-tiny', ['grid_thw', 'image_embeds'], 1176],
    ['qwen2.5-vl-tiny', ['grid_thw', 'image_embeds'], 1176],
  ] as const) {
    const ckpt = join(dir, preset);
    const synth = spawnSync(process.execPath, [bin, 'synth', '--preset', preset, '--out', ckpt, '-q'], { encoding: 'utf8', env });
    t.is(synth.status, 0, synth.stderr);
    const out = join(dir, `${preset}.safetensors`);
    const encode = spawnSync(process.execPath, [bin, 'encode', image, '--model', ckpt, '--out', out, '-q'], { encoding: 'utf8', env });
    t.is(encode.status, 0, encode.stderr);
    const tensors = await readSafetensors(out);
    t.deepEqual([...tensors.keys()].sort(), [...outputs], preset);
    // chelsea 451×300 → factor 32: 448×288 (grid 18×28 of 16-px patches); factor 28: 448×308 (22×32 of 14 px).
    const grid = Array.from(tensors.get('grid_thw')!.data as BigInt64Array, Number);
    t.deepEqual(grid, columns === 1536 ? [1, 18, 28] : [1, 22, 32], preset);
    const pre = spawnSync(process.execPath, [bin, 'preprocess', image, '--model', ckpt, '--out', join(dir, `${preset}-pre.safetensors`)], { encoding: 'utf8', env });
    t.is(pre.status, 0, pre.stderr);
    const pixels = (await readSafetensors(join(dir, `${preset}-pre.safetensors`))).get('pixel_values')!;
    t.is(pixels.shape[1], columns, `${preset}: preprocess --model uses the family's processor`);
  }
});
