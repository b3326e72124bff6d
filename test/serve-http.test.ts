// `vitgraph serve` over real HTTP on 127.0.0.1: every input and output form, results equal to
// `vitgraph encode` and to solo encodings (bit for bit), bad input isolated to its request, limits.
// The embedded tiny tower serves; images are small (≤ ~400 patches) so the file runs in seconds.

import test from 'ava';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { VisionEncoder } from '../index.js';
import type { EncodeResponse } from '../src/serve/outputs.js';
import type { BatchEncoder } from '../src/serve/types.js';
import { readSafetensors } from '../src/weights/index.js';
import type { HostTensor } from '../src/tensor.js';
import { runBin } from './helpers/cli.js';
import { tempDir } from './helpers/files.js';
import { b64, differing, imageBytes, postJson, startServer, tensorOf, tinyEncoder } from './helpers/serve.js';

let cache: string;
let encoder: VisionEncoder; // the library, for reference results
test.before(async () => {
  cache = await mkdtemp(join(tmpdir(), 'vitgraph-serve-'));
  encoder = await VisionEncoder.load(undefined, { cacheDir: cache, threads: 1 });
});
test.after.always(async () => {
  await encoder?.close();
  await rm(cache, { recursive: true, force: true });
});

const SMALL = 70_000; // max_pixels: ~256 patches per image, quick on the tiny tower
const tiny = (): Promise<BatchEncoder> => tinyEncoder(cache);
const json = async (response: Response): Promise<EncodeResponse> => (await response.json()) as EncodeResponse;
const errorOf = async (response: Response): Promise<{ code: string; message: string }> => ((await response.json()) as { error: { code: string; message: string } }).error;

test('JSON: base64 images and a frame list in order; JSON output bit-identical to VisionEncoder.encode', async (t) => {
  const { url } = await startServer(t, tiny());
  const [astronaut, camera] = await Promise.all([imageBytes('astronaut.png'), imageBytes('camera.png')]);
  const response = await postJson(url, {
    max_pixels: SMALL,
    items: [{ image: b64(astronaut) }, { video: [b64(camera), b64(camera), b64(astronaut)] }, { image: `data:image/png;base64,${b64(camera)}`, max_pixels: 100_000 }],
  });
  t.is(response.status, 200);
  const body = await json(response);
  // The request's max_pixels bounds each image, and a video's frames × height × width.
  const refs = [
    ...(await encoder.encode([astronaut], { maxPixels: SMALL })).items,
    ...(await encoder.encode([{ frames: [camera, camera, astronaut] }], { videoMaxPixels: SMALL })).items,
    ...(await encoder.encode([camera], { maxPixels: 100_000 })).items,
  ];
  t.deepEqual(
    body.items.map((i) => i.kind),
    ['image', 'video', 'image'],
  );
  t.deepEqual(
    body.items.map((i) => i.grid_thw),
    refs.map((i) => i.gridThw),
  );
  body.items.forEach((item, i) => {
    const ref = refs[i]!;
    t.deepEqual(item.outputs.image_embeds!.shape, [ref.tokens, 80]);
    t.deepEqual(item.outputs.deepstack_embeds!.shape, [2, ref.tokens, 80]);
    t.is(differing(tensorOf(body, i, 'image_embeds'), ref.outputs.image_embeds!.data), 0, `item ${i} image_embeds`);
    t.is(differing(tensorOf(body, i, 'deepstack_embeds'), ref.outputs.deepstack_embeds!.data), 0, `item ${i} deepstack_embeds`);
  });
  t.true(body.timings.total_ms >= body.timings.encode_ms);
  t.is(body.timings.batch.items >= 3, true);
});

test('multipart and raw bodies: safetensors output equals `vitgraph encode` on the same images, byte for byte per tensor', async (t) => {
  const { url } = await startServer(t, tiny());
  const dir = await tempDir(t);
  const out = join(dir, 'cli.safetensors');
  process.env.VITGRAPH_CACHE = cache; // the CLI child inherits it
  const names = ['chelsea.png', 'rocket.jpg'];
  const cli = await runBin(['encode', ...names.map((n) => join('fixtures', 'images', n)), '--max-pixels', String(SMALL), '--threads', '1', '--out', out]);
  t.is(cli.code, 0, cli.stderr);
  const expected = await readSafetensors(out);

  const form = new FormData();
  for (const name of names) form.append('image', new Blob([await imageBytes(name)]), name);
  form.append('max_pixels', String(SMALL));
  const response = await fetch(`${url}/v1/encode`, { method: 'POST', body: form, headers: { accept: 'application/octet-stream' } });
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'application/octet-stream');
  const got = join(dir, 'served.safetensors');
  await import('node:fs/promises').then((fs) => response.arrayBuffer().then((b) => fs.writeFile(got, Buffer.from(b))));
  const served = await readSafetensors(got);
  t.deepEqual([...served.keys()].sort(), ['deepstack_embeds', 'grid_thw', 'image_embeds']);
  for (const name of ['image_embeds', 'deepstack_embeds', 'grid_thw']) {
    const [a, b] = [served.get(name)!, expected.get(name)!];
    t.deepEqual(a.shape, b.shape, name);
    t.true(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)), name);
  }

  // A raw body is one image: the first item's tokens of the CLI file.
  const raw = await fetch(`${url}/v1/encode?max_pixels=${SMALL}`, { method: 'POST', body: await imageBytes('chelsea.png'), headers: { 'content-type': 'image/png' } });
  t.is(raw.status, 200);
  const one = await json(raw);
  const tokens = one.items[0]!.tokens;
  t.is(differing(tensorOf(one, 0, 'image_embeds'), (expected.get('image_embeds') as HostTensor<'float32'>).data.subarray(0, tokens * 80)), 0);
});

test('64 concurrent requests of mixed sizes: each result bit-identical to its solo encoding; batches hold several requests', async (t) => {
  const { url } = await startServer(t, tiny(), { batcher: { maxWaitMs: 15 } });
  const names = ['astronaut.png', 'camera.png', 'chelsea.png', 'rocket.jpg'];
  const budgets = [66_000, 90_000, 120_000];
  const bytes = await Promise.all(names.map(imageBytes));
  const requests = Array.from({ length: 64 }, (_, i) => ({ images: i % 3 === 0 ? [i % 4, (i + 1) % 4] : [i % 4], budget: budgets[i % 3]! }));
  const solo = new Map<string, Float32Array[]>();
  for (const r of requests) {
    const key = `${r.images.join(',')}@${r.budget}`;
    if (!solo.has(key))
      solo.set(
        key,
        (
          await encoder.encode(
            r.images.map((k) => bytes[k]!),
            { maxPixels: r.budget },
          )
        ).items.map((i) => i.outputs.image_embeds!.data),
      );
  }
  const responses = await Promise.all(requests.map((r) => postJson(url, { max_pixels: r.budget, items: r.images.map((k) => ({ image: b64(bytes[k]!) })) }).then(json)));
  let mismatched = 0;
  responses.forEach((body, i) => {
    const ref = solo.get(`${requests[i]!.images.join(',')}@${requests[i]!.budget}`)!;
    t.is(body.items.length, ref.length);
    ref.forEach((embeds, k) => (mismatched += differing(tensorOf(body, k, 'image_embeds'), embeds)));
  });
  t.is(mismatched, 0);
  const shared = responses.filter((r) => r.timings.batch.requests > 1).length;
  t.log(`${shared} of 64 requests shared their runtime call with others`);
  t.true(shared > 0);
});

test('a corrupt image and non-finite pixels among good concurrent requests: only those requests get 400', async (t) => {
  const { url } = await startServer(t, tiny(), { batcher: { maxWaitMs: 20 } });
  const good = b64(await imageBytes('camera.png'));
  const nan = new Float32Array(4 * 1536).fill(0.5);
  nan[1536 * 2 + 7] = Number.NaN;
  const bodies = [
    { items: [{ image: good }], max_pixels: SMALL },
    { items: [{ image: good }, { image: b64(await imageBytes('truncated.jpg')) }], max_pixels: SMALL },
    { items: [{ image: good }], max_pixels: SMALL },
    { items: [{ pixel_values: b64(new Uint8Array(nan.buffer)), grid_thw: [1, 2, 2] }] },
    { items: [{ pixel_values: b64(new Uint8Array(new Float32Array(4 * 1536).fill(0.25).buffer)), grid_thw: [1, 2, 2] }] },
  ];
  const responses = await Promise.all(bodies.map((b) => postJson(url, b)));
  t.deepEqual(
    responses.map((r) => r.status),
    [200, 400, 200, 400, 200],
  );
  const corrupt = await errorOf(responses[1]!);
  t.is(corrupt.code, 'invalid_file');
  t.regex(corrupt.message, /items\[1\]/);
  const nonFinite = await errorOf(responses[3]!);
  t.is(nonFinite.code, 'invalid_argument');
  t.regex(nonFinite.message, /pixel_values item 0: expected finite values, got NaN at row 2/);
  const ok = await json(responses[4]!);
  t.deepEqual(ok.items[0]!.grid_thw, [1, 2, 2]);
  t.true(tensorOf(ok, 0, 'image_embeds').every(Number.isFinite));
});

test('limits: an over-size body gets 413 (JSON, raw, multipart); too many items 413; other media types 415', async (t) => {
  const { url } = await startServer(t, tiny(), { limits: { maxBodyBytes: 300_000, maxItems: 2 } });
  const big = await imageBytes('astronaut.png'); // 791 kB
  const asJson = await postJson(url, { items: [{ image: b64(big) }] });
  const asRaw = await fetch(`${url}/v1/encode`, { method: 'POST', body: big, headers: { 'content-type': 'image/png' } });
  const form = new FormData();
  form.append('image', new Blob([big]), 'a.png');
  const asForm = await fetch(`${url}/v1/encode`, { method: 'POST', body: form });
  for (const response of [asJson, asRaw, asForm]) {
    t.is(response.status, 413);
    t.is((await errorOf(response)).code, 'too_large');
  }
  const small = 'aGk='; // counted before anything is decoded
  const many = await postJson(url, { items: [{ image: small }, { image: small }, { image: small }] });
  t.is(many.status, 413);
  t.regex((await errorOf(many)).message, /items per request: expected at most 2, got 3/);
  const text = await fetch(`${url}/v1/encode`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
  t.is(text.status, 415);
  t.is((await errorOf(text)).code, 'unsupported_media_type');
  const greedy = await postJson(url, { items: [{ image: small, min_pixels: 100_000_000 }] });
  t.is(greedy.status, 413);
});

test('URLs are refused with the reason and never fetched', async (t) => {
  let hits = 0;
  const bait = createServer((_req, res) => {
    hits++;
    res.end();
  });
  await new Promise<void>((resolve) => bait.listen(0, '127.0.0.1', resolve));
  t.teardown(() => bait.close());
  const target = `http://127.0.0.1:${(bait.address() as AddressInfo).port}/cat.png`;
  const { url } = await startServer(t, tiny());
  for (const item of [{ image: target }, { url: target }, { image_url: target }, { video: [target] }]) {
    const response = await postJson(url, { items: [item] });
    t.is(response.status, 400);
    t.regex((await errorOf(response)).message, /URLs are never fetched.*server-side request forgery/);
  }
  t.is(hits, 0);
});

test('bad JSON shapes get typed 400s; an unknown route 404', async (t) => {
  const { url } = await startServer(t, tiny());
  const cases: [unknown, RegExp][] = [
    [{}, /items: expected a non-empty array/],
    [{ items: [{ image: '***' }] }, /items\[0\]\.image: expected base64/],
    [{ items: [{ image: 'aGk=', max_pixels: -3 }] }, /max_pixels: expected a positive integer/],
    [{ items: [{ pixel_values: b64(new Uint8Array(12)), grid_thw: [1, 2, 2] }] }, /pixel_values/],
    [{ items: [{ pixel_values: b64(new Uint8Array(4 * 1536 * 4)), grid_thw: [1, 3, 3] }] }, /grid_thw|pixel_values/],
  ];
  for (const [body, message] of cases) {
    const response = await postJson(url, body);
    t.is(response.status, 400, JSON.stringify(body).slice(0, 80));
    t.regex((await errorOf(response)).message, message);
  }
  const broken = await fetch(`${url}/v1/encode`, { method: 'POST', body: '{"items": [', headers: { 'content-type': 'application/json' } });
  t.is(broken.status, 400);
  t.is((await errorOf(broken)).code, 'invalid_argument');
  const missing = await fetch(`${url}/v2/nothing`);
  t.is(missing.status, 404);
  t.is((await errorOf(missing)).code, 'not_found');
});
