// VisionEncoder: images, frame lists and raw pixels in; per-item tokens out; concurrency.
// Numbers are checked against the golden fixture (raw pixels) and against the same request
// run through `preprocess` + the dynamic graph by hand.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VisionEncoder, VitgraphError, preprocess, readSafetensors } from '../index.js';
import type { HostTensor } from '../src/tensor.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (...p: string[]): string => join(root, 'fixtures', ...p);
const image = (name: string): string => fixture('images', name);

let cache: string;
test.before(async () => {
  cache = await mkdtemp(join(tmpdir(), 'vitgraph-api-'));
});
test.after.always(async () => {
  await rm(cache, { recursive: true, force: true });
});

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test('raw pixel_values through a checkpoint loaded by VisionEncoder match the golden (≤ 1e-4)', async (t) => {
  const io = await readSafetensors(fixture('encoder', 'tiny', 'io.safetensors'));
  const encoder = await VisionEncoder.load(fixture('encoder', 'tiny'), { cacheDir: cache, threads: 1 });
  try {
    const result = await encoder.encode([{ pixelValues: io.get('pixel_values')!, gridThw: io.get('grid_thw')! }]);
    const expected = io.get('expected.image_embeds') as HostTensor<'float32'>;
    const diff = maxAbsDiff(result.outputs.image_embeds!.data, expected.data);
    t.log(`max |Δ| image_embeds = ${diff.toExponential(2)}`);
    t.true(diff <= 1e-4);
    // Items are split in grid order: [1,4,6] → 6 tokens, [2,8,8] → 32, [1,6,4] → 6.
    t.deepEqual(
      result.items.map((i) => i.tokens),
      [6, 32, 6],
    );
    t.deepEqual(
      result.items.map((i) => i.gridThw),
      [
        [1, 4, 6],
        [2, 8, 8],
        [1, 6, 4],
      ],
    );
    const second = result.items[1]!;
    t.is(maxAbsDiff(second.outputs.image_embeds!.data, result.outputs.image_embeds!.data.slice(6 * 80, 38 * 80)), 0);
    const deepstack = second.outputs.deepstack_embeds!; // [K, 32, 80]
    t.deepEqual(deepstack.shape, [2, 32, 80]);
    for (let j = 0; j < 2; j++) {
      const all = io.get(`expected.deepstack_embeds.${j}`) as HostTensor<'float32'>;
      t.true(maxAbsDiff(deepstack.data.subarray(j * 32 * 80, (j + 1) * 32 * 80), all.data.slice(6 * 80, 38 * 80)) <= 1e-4);
    }
  } finally {
    await encoder.close();
  }
});

test('images through encode() equal preprocess() + the graph on the same pixels', async (t) => {
  const encoder = await VisionEncoder.load(undefined, { cacheDir: cache, threads: 1 });
  try {
    const viaFiles = await encoder.encode([image('astronaut.png'), image('chelsea.png')]);
    const pre = await preprocess([image('astronaut.png'), image('chelsea.png')], { processor: QWEN3_VL_PROCESSOR });
    const viaPixels = await encoder.encode([{ pixelValues: pre.pixelValues, gridThw: pre.gridThw }]);
    t.deepEqual(
      viaFiles.items.map((i) => i.gridThw),
      [
        [1, 32, 32],
        [1, 18, 28],
      ],
    );
    t.deepEqual(
      viaFiles.items.map((i) => i.kind),
      ['image', 'image'],
    );
    t.is(maxAbsDiff(viaFiles.outputs.image_embeds!.data, viaPixels.outputs.image_embeds!.data), 0);
    t.deepEqual(viaFiles.outputs.deepstack_embeds!.shape, [2, 256 + 126, 80]);
    t.true(viaFiles.outputs.image_embeds!.data.every(Number.isFinite));
  } finally {
    await encoder.close();
  }
});

test('a frame list is one video item; a 2-frame clip of one image equals that image', async (t) => {
  const encoder = await VisionEncoder.load(undefined, { cacheDir: cache, threads: 1 });
  try {
    const [asImage, asVideo] = await Promise.all([encoder.encode([image('camera.png')]), encoder.encode([{ frames: [image('camera.png'), image('camera.png')] }])]);
    t.is(asVideo.items[0]!.kind, 'video');
    t.deepEqual(asVideo.items[0]!.gridThw, asImage.items[0]!.gridThw);
    t.is(maxAbsDiff(asVideo.outputs.image_embeds!.data, asImage.outputs.image_embeds!.data), 0);
  } finally {
    await encoder.close();
  }
});

test('concurrent encode() calls give the same numbers as serial calls', async (t) => {
  const encoder = await VisionEncoder.load(undefined, { cacheDir: cache, threads: 1 });
  try {
    const inputs = [[image('astronaut.png')], [image('rocket.jpg')], [image('logo.png'), image('camera.png')], [image('chelsea.png')]];
    const serial: Awaited<ReturnType<VisionEncoder['encode']>>[] = [];
    for (const batch of inputs) serial.push(await encoder.encode(batch));
    const concurrent = await Promise.all(inputs.map((batch) => encoder.encode(batch)));
    concurrent.forEach((r, i) => {
      t.is(maxAbsDiff(r.outputs.image_embeds!.data, serial[i]!.outputs.image_embeds!.data), 0);
      t.is(maxAbsDiff(r.outputs.deepstack_embeds!.data, serial[i]!.outputs.deepstack_embeds!.data), 0);
    });
  } finally {
    await encoder.close();
  }
});

test('bad inputs are typed errors: truncated JPEG, missing model, empty input', async (t) => {
  const encoder = await VisionEncoder.load(undefined, { cacheDir: cache, threads: 1 });
  try {
    const truncated = await t.throwsAsync(encoder.encode([image('truncated.jpg')]), { instanceOf: VitgraphError });
    t.is(truncated?.code, 'invalid_file');
    const empty = await t.throwsAsync(encoder.encode([]), { instanceOf: VitgraphError });
    t.is(empty?.code, 'invalid_argument');
    const mismatch = await t.throwsAsync(encoder.encode([{ pixelValues: new Float32Array(5 * 1536), gridThw: [[1, 2, 2]] }]), { instanceOf: VitgraphError });
    t.is(mismatch?.code, 'input_mismatch');
    t.regex(mismatch?.message ?? '', /5 rows but grid_thw describes 4/);
  } finally {
    await encoder.close();
  }
  const missing = await t.throwsAsync(VisionEncoder.load(join(cache, 'nope.onnx')), { instanceOf: VitgraphError });
  t.is(missing?.code, 'not_found');
});

test('CLI: `vitgraph encode` with the embedded model writes embeddings; a truncated JPEG exits 1 with one line', async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const bin = join(root, 'dist', 'cli', 'main.js');
  const env = { ...process.env, VITGRAPH_CACHE: cache };
  const out = join(cache, 'e.safetensors');
  const { stdout } = await run(process.execPath, [bin, 'encode', image('astronaut.png'), '--out', out, '--json'], { env });
  const summary = JSON.parse(stdout) as { items: { grid_thw: number[]; tokens: number }[]; tokens: number };
  t.deepEqual(summary.items[0]?.grid_thw, [1, 32, 32]);
  t.is(summary.tokens, 256);
  const written = await readSafetensors(out);
  t.deepEqual(written.get('image_embeds')?.shape, [256, 80]);
  t.deepEqual(written.get('deepstack_embeds')?.shape, [2, 256, 80]);
  t.deepEqual(Array.from(written.get('grid_thw')!.data as BigInt64Array), [1n, 32n, 32n]);

  const failed = await run(process.execPath, [bin, 'encode', image('truncated.jpg'), '--out', join(cache, 'bad.safetensors')], { env }).catch((e: { code: number; stderr: string }) => e);
  t.is((failed as { code: number }).code, 1);
  const lines = (failed as { stderr: string }).stderr.trim().split('\n');
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^vitgraph encode: .*truncated/);

  const pre = join(cache, 'p.safetensors');
  await run(process.execPath, [bin, 'preprocess', image('chelsea.png'), '--out', pre], { env });
  const p = await readSafetensors(pre);
  t.deepEqual(p.get('pixel_values')?.shape, [18 * 28, 1536]);
  t.deepEqual(Array.from(p.get('grid_thw')!.data as BigInt64Array), [1n, 18n, 28n]);
});
