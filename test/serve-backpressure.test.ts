// Backpressure and lifecycle over real HTTP on 127.0.0.1: a full queue answers 503 + Retry-After,
// a client that disconnects has its pending items dropped, a per-request timeout answers 504,
// readiness follows loading and draining, /metrics is valid Prometheus text. A gate holds the
// encoder's batches so each queue state is set up deterministically, not by timing.

import test from 'ava';
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchEncoder } from '../src/serve/types.js';
import { b64, gated, imageBytes, postJson, startServer, tinyEncoder } from './helpers/serve.js';

let cache: string;
test.before(async () => {
  cache = await mkdtemp(join(tmpdir(), 'vitgraph-serve-bp-'));
});
test.after.always(() => rm(cache, { recursive: true, force: true }));

const pixelsItem = (value: number): { pixel_values: string; grid_thw: number[] } => ({
  pixel_values: b64(new Uint8Array(new Float32Array(4 * 1536).fill(value).buffer)), // 4 patches
  grid_thw: [1, 2, 2],
});

const until = async (check: () => boolean | Promise<boolean>, what: string): Promise<void> => {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

test('a full queue answers 503 with Retry-After; the queued requests still complete', async (t) => {
  const encoder = gated(await tinyEncoder(cache));
  const { url, server } = await startServer(t, encoder, { batcher: { maxQueuePatches: 8, maxBatchPatches: 4 } });
  const running = postJson(url, { items: [pixelsItem(0.1)] }); // runs, held at the gate
  await encoder.started();
  const queued = [postJson(url, { items: [pixelsItem(0.2)] }), postJson(url, { items: [pixelsItem(0.3)] })]; // 8 patches wait
  await until(() => server.metrics.text().then((m) => /vitgraph_queue_patches 8\b/.test(m)), 'the queue to fill');
  const refused = await postJson(url, { items: [pixelsItem(0.4)] });
  t.is(refused.status, 503);
  t.regex(refused.headers.get('retry-after') ?? '', /^\d+$/);
  t.is(((await refused.json()) as { error: { code: string } }).error.code, 'queue_full');
  encoder.open();
  t.deepEqual(
    (await Promise.all([running, ...queued])).map((r) => r.status),
    [200, 200, 200],
  );
});

test('a client that disconnects has its pending items dropped: they never reach the encoder', async (t) => {
  const encoder = gated(await tinyEncoder(cache));
  const { url, server } = await startServer(t, encoder, { batcher: { maxBatchPatches: 4 } });
  const running = postJson(url, { items: [pixelsItem(0.1)] });
  await encoder.started();
  const body = JSON.stringify({ items: [pixelsItem(0.9), pixelsItem(0.8)] });
  const { port } = new URL(url);
  const leaving = httpRequest({ host: '127.0.0.1', port, path: '/v1/encode', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
  leaving.on('error', () => undefined); // the socket we destroy
  leaving.end(body);
  await until(() => server.metrics.text().then((m) => /vitgraph_queue_patches 8\b/.test(m)), 'the request to queue');
  leaving.destroy();
  await until(() => server.metrics.text().then((m) => /vitgraph_queue_patches 0\b/.test(m)), 'its items to leave the queue');
  encoder.open();
  t.is((await running).status, 200);
  const after = await postJson(url, { items: [pixelsItem(0.5)] });
  t.is(after.status, 200);
  // Batches seen: the held one and the one after; the disconnected request's 8 patches never ran.
  t.deepEqual(
    encoder.batches.map((b) => b.reduce((s, i) => s + i.patches, 0)),
    [4, 4],
  );
  t.regex(await server.metrics.text(), /vitgraph_requests_total\{status="499"\} 1/);
});

test('a request past its timeout gets 504 and its items are dropped', async (t) => {
  const encoder = gated(await tinyEncoder(cache));
  const { url } = await startServer(t, encoder, { limits: { requestTimeoutMs: 300 }, batcher: { maxBatchPatches: 4 } });
  const held = postJson(url, { items: [pixelsItem(0.1)] });
  await encoder.started();
  const late = await postJson(url, { items: [pixelsItem(0.2)] });
  t.is(late.status, 504);
  t.is(((await late.json()) as { error: { code: string } }).error.code, 'timeout');
  t.is((await held).status, 504); // the held batch itself outlived its timeout
  encoder.open();
  const next = await postJson(url, { items: [pixelsItem(0.3)] });
  t.is(next.status, 200);
  t.is(encoder.batches.length, 2); // the timed-out queued request never ran
});

test('readiness: /readyz is 503 while the model loads and after close() starts; /healthz answers throughout', async (t) => {
  let finish: (encoder: BatchEncoder) => void = () => undefined;
  const loading = new Promise<BatchEncoder>((resolve) => (finish = resolve));
  const { url, server, logs } = await startServer(t, loading, { waitReady: false });
  t.is((await fetch(`${url}/healthz`)).status, 200);
  t.is((await fetch(`${url}/readyz`)).status, 503);
  const early = await postJson(url, { items: [pixelsItem(0.1)] });
  t.is(early.status, 503);
  t.is(((await early.json()) as { error: { code: string } }).error.code, 'not_ready');
  finish(await tinyEncoder(cache));
  await server.ready;
  t.is((await fetch(`${url}/readyz`)).status, 200);
  for (const prefix of ['model ', 'graphs ', 'backend ', 'threads ', 'batching ', 'ready ']) {
    t.is(logs.filter((l) => l.startsWith(`vitgraph serve: ${prefix}`)).length, 1, prefix);
  }
  await server.close();
  t.false(server.isReady);
});

test('/metrics is valid Prometheus text: requests by status, latency histogram, queue depth, batch sizes, tokens', async (t) => {
  const { url } = await startServer(t, tinyEncoder(cache));
  const camera = b64(await imageBytes('camera.png'));
  t.is((await postJson(url, { items: [{ image: camera }, pixelsItem(0.2)], max_pixels: 70_000 })).status, 200);
  t.is((await postJson(url, { items: [{ image: 'aGk=' }] })).status, 400);
  const response = await fetch(`${url}/metrics`);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const samples = parsePrometheus(text);
  t.is(samples.get('vitgraph_requests_total{status="200"}'), 1);
  t.is(samples.get('vitgraph_requests_total{status="400"}'), 1);
  t.is(samples.get('vitgraph_request_duration_seconds_count{status="200"}'), 1);
  t.is(samples.get('vitgraph_batch_items_sum'), 2); // one batch of this request's 2 items (warmup runs outside the batcher)
  t.true((samples.get('vitgraph_tokens_total') ?? 0) > 0);
  t.is(samples.get('vitgraph_queue_patches'), 0);
  t.true(samples.has('vitgraph_batch_patches_bucket{le="+Inf"}'));
  t.true(samples.has('vitgraph_tokens_per_second'));
});

/**
 * A strict reader of the Prometheus text format 0.0.4: every line is a # HELP / # TYPE comment or
 * `name{labels} value`; each sample's family has a TYPE; throws on anything else.
 */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const label = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const sample = new RegExp(`^(${name})(\\{(?:${label})(?:,${label})*,?\\})? (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|NaN|\\+Inf|-Inf))(?: -?\\d+)?$`);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (comment) {
      if (comment[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(comment[3]!)) throw new Error(`bad TYPE line: ${line}`);
        types.set(comment[2]!, comment[3]!);
      }
      continue;
    }
    const match = sample.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    const family = match[1]!.replace(/_(bucket|sum|count|total)$/, '');
    if (!types.has(match[1]!) && !types.has(family)) throw new Error(`sample without a TYPE: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}
