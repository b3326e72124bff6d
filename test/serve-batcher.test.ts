// createBatcher as a library, model-free: a fake BatchEncoder whose outputs are a function of each
// item's own pixels, so any mix-up between items or requests shows. Then the real tiny tower:
// items batched across requests are bit-identical to their solo runs.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VitgraphError } from '../src/errors.js';
import { ServeError, createBatcher, type BatchEncoder, type EncodedItem, type PreparedItem } from '../src/serve/index.js';
import { hostTensor } from '../src/tensor.js';
import { differing, imageBytes, tinyEncoder } from './helpers/serve.js';

/** Items of `patches` rows of width 2 filled with `tag`; the fake encoder's token = its tag. */
const item = (tag: number, patches = 4): PreparedItem => ({ kind: 'pixels', gridThw: [1, 2, patches / 2], patches, pixels: new Float32Array(patches * 2).fill(tag) });

function fakeEncoder(options: { failOn?: number; delayMs?: number } = {}): BatchEncoder & { calls: number[][] } {
  const calls: number[][] = [];
  return {
    calls,
    info: { model: 'fake', graphs: 'dynamic', backend: 'none', threads: '1', outputs: [{ name: 'tag', tokenAxis: 0 }], buckets: false },
    prepare: async () => [],
    async encodeBatch(items): Promise<EncodedItem[]> {
      calls.push(items.map((i) => i.pixels[0]!));
      await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 5));
      if (items.some((i) => i.pixels[0] === options.failOn)) throw new VitgraphError('runtime', `item tagged ${options.failOn} fails`);
      return items.map((i) => ({ kind: i.kind, gridThw: i.gridThw, tokens: 1, outputs: { tag: hostTensor('float32', [1, 1], Float32Array.of(i.pixels[0]!)) } }));
    },
    warmup: async () => undefined,
    close: async () => undefined,
  };
}

const tags = (items: readonly EncodedItem[]): number[] => items.map((i) => i.outputs.tag!.data[0]!);

test('requests that arrive together share one runtime call; each gets its own items back in order', async (t) => {
  const encoder = fakeEncoder();
  const batcher = createBatcher(encoder, { maxWaitMs: 20 });
  const results = await Promise.all([batcher.submit([item(1), item(2)]), batcher.submit([item(3)]), batcher.submit([item(4), item(5), item(6)])]);
  t.deepEqual(
    results.map((r) => tags(r.items)),
    [[1, 2], [3], [4, 5, 6]],
  );
  t.deepEqual(encoder.calls, [[1, 2, 3, 4, 5, 6]]);
  t.deepEqual(results[0]!.batch, { requests: 3, items: 6, patches: 24 });
});

test('maxBatchPatches splits by whole requests; batching off runs one request per call; a lone large request still runs', async (t) => {
  const encoder = fakeEncoder();
  const batcher = createBatcher(encoder, { maxWaitMs: 20, maxBatchPatches: 8 });
  await Promise.all([batcher.submit([item(1)]), batcher.submit([item(2)]), batcher.submit([item(3), item(4)]), batcher.submit([item(5, 40)])]);
  t.deepEqual(encoder.calls, [[1, 2], [3, 4], [5]]);
  const off = fakeEncoder();
  const serial = createBatcher(off, { batching: false, maxWaitMs: 20 });
  await Promise.all([serial.submit([item(1)]), serial.submit([item(2)])]);
  t.deepEqual(off.calls, [[1], [2]]);
});

test('a failing batch is re-run request by request: only the bad request fails', async (t) => {
  const encoder = fakeEncoder({ failOn: 7 });
  const batcher = createBatcher(encoder, { maxWaitMs: 20 });
  const outcomes = await Promise.allSettled([batcher.submit([item(1)]), batcher.submit([item(2), item(7)]), batcher.submit([item(3)])]);
  t.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.regex(((outcomes[1] as PromiseRejectedResult).reason as Error).message, /item tagged 7 fails/);
  t.deepEqual(encoder.calls, [[1, 2, 7, 3], [1], [2, 7], [3]]);
});

test('non-finite pixels are refused before queueing, naming the item', async (t) => {
  const encoder = fakeEncoder();
  const batcher = createBatcher(encoder);
  const bad = item(1);
  bad.pixels[5] = Number.POSITIVE_INFINITY;
  const error = await t.throwsAsync(batcher.submit([item(2), bad]), { instanceOf: VitgraphError });
  t.regex(error!.message, /items\[1\] pixel values \(row 2\): expected finite numbers, got Infinity/);
  t.deepEqual(encoder.calls, []);
});

test('queue limit, abort and drain', async (t) => {
  const encoder = fakeEncoder({ delayMs: 50 });
  const batcher = createBatcher(encoder, { maxQueuePatches: 8, maxBatchPatches: 4 });
  const first = batcher.submit([item(1)]); // starts at once
  await new Promise((resolve) => setImmediate(resolve));
  const second = batcher.submit([item(2)]);
  const controller = new AbortController();
  const third = batcher.submit([item(3)], { signal: controller.signal });
  const full = await t.throwsAsync(batcher.submit([item(4)]), { instanceOf: ServeError });
  t.is(full!.code, 'queue_full');
  t.true(full!.retryAfterS! >= 1);
  controller.abort();
  const aborted = await t.throwsAsync(third, { instanceOf: ServeError });
  t.is(aborted!.code, 'cancelled');
  t.is(batcher.queuedPatches, 4);
  await batcher.close();
  t.deepEqual(tags((await first).items), [1]);
  t.deepEqual(tags((await second).items), [2]);
  t.deepEqual(encoder.calls, [[1], [2]]);
  await t.throwsAsync(batcher.submit([item(5)]), { message: /closed/ });
});

test('tiny tower: images batched across requests are bit-identical to each encoded alone', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'vitgraph-batcher-'));
  t.teardown(() => rm(cache, { recursive: true, force: true }));
  const encoder = await tinyEncoder(cache);
  t.teardown(() => encoder.close());
  const limits = { maxInputPixels: 16_777_216 };
  const requests = await Promise.all(
    [
      ['chelsea.png', 66_000],
      ['rocket.jpg', 150_000],
      ['camera.png', 90_000],
      ['logo.png', 200_000],
    ].map(async ([name, maxPixels]) => encoder.prepare([{ kind: 'image', bytes: await imageBytes(name as string), budget: { maxPixels: maxPixels as number } }], limits)),
  );
  const solo: EncodedItem[][] = [];
  for (const items of requests) solo.push(await encoder.encodeBatch(items));
  const batcher = createBatcher(encoder, { maxWaitMs: 50 });
  const batched = await Promise.all(requests.map((items) => batcher.submit(items)));
  t.is(batched[0]!.batch.requests, 4);
  batched.forEach((result, r) => {
    for (const name of ['image_embeds', 'deepstack_embeds']) {
      t.deepEqual(result.items[0]!.outputs[name]!.shape, solo[r]![0]!.outputs[name]!.shape);
      t.is(differing(result.items[0]!.outputs[name]!.data, solo[r]![0]!.outputs[name]!.data), 0, `request ${r} ${name}`);
    }
  });
});
