// The service against hostile HTTP, over raw sockets on 127.0.0.1: malformed multipart gets a
// typed 400/413 (never 500), a trickled body or header block is cut at --request-timeout-ms, the
// bodies received at once are capped, and vitgraph_requests_in_flight returns to 0 after clients
// stall and abort. Every socket is bounded in time.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchEncoder } from '../src/serve/types.js';
import { startServer, tinyEncoder } from './helpers/serve.js';

let cache: string;
test.before(async () => {
  cache = await mkdtemp(join(tmpdir(), 'vitgraph-guards-'));
});
test.after.always(async () => {
  await rm(cache, { recursive: true, force: true });
});
// Each server owns (and closes) its encoder, so each test loads its own (the export is cached).
const tiny = (): Promise<BatchEncoder> => tinyEncoder(cache);

interface RawAnswer {
  /** 0 when the server closed without an answer. */
  status: number;
  code: string | undefined;
  ms: number;
  closed: boolean;
}

/** Writes `payload` to a fresh connection and reads until the server closes it or `limitMs` passes. */
function raw(port: number, payload: string | Buffer, limitMs = 5_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const start = performance.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const code = /"code":"([a-z_]+)"/.exec(text)?.[1];
      resolve({ status, code, ms: performance.now() - start, closed });
    };
    const timer = setTimeout(() => finish(false), limitMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
    socket.write(payload);
  });
}

const portOf = (url: string): number => Number(new URL(url).port);

function post(body: string, contentType: string, extra = ''): string {
  return `POST /v1/encode HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

const part = (name: string, value: string, filename?: string): string => `--B\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n${value}\r\n`;

test('malformed multipart and multipart over its limits: typed 400 / 413, never 500', async (t) => {
  const { url } = await startServer(t, tiny(), { limits: { maxItems: 1 } }); // at most 1 × 256 file parts
  const port = portOf(url);
  const form = 'multipart/form-data; boundary=B';
  const cases: [string, string, string, number][] = [
    ['no closing boundary', '--B\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\nabc', form, 400],
    ['a body cut inside a part header', '--B\r\nContent-Disposition: form-da', form, 400],
    ['garbage after the closing boundary', `${part('image', 'abc', 'a')}--B--garbage`, form, 400],
    ['a part without headers', '--B\r\n\r\nabc\r\n--B--\r\n', form, 400],
    ['no boundary parameter', `${part('image', 'abc', 'a')}--B--\r\n`, 'multipart/form-data', 400],
    ['an empty boundary', `${part('image', 'abc', 'a')}--B--\r\n`, 'multipart/form-data; boundary=', 400],
    ['a boundary that never appears', `${part('image', 'abc', 'a')}--B--\r\n`, 'multipart/form-data; boundary=Z', 400],
    ['a header block that never ends', `--B\r\nContent-Disposition: form-data; name="x"\r\n${'X-A: b\r\n'.repeat(3000)}`, form, 400],
    ['more fields than allowed', `${Array.from({ length: 40 }, (_, i) => part(`f${i}`, '1')).join('')}--B--\r\n`, form, 413],
    ['a field over its size limit', `${part('min_pixels', '1'.repeat(5000))}--B--\r\n`, form, 413],
    ['more files than allowed', `${Array.from({ length: 257 }, () => part('image', '', 'a')).join('')}--B--\r\n`, form, 413],
  ];
  for (const [what, body, type, status] of cases) {
    const answer = await raw(port, post(body, type));
    t.is(answer.status, status, what);
    t.not(answer.code, 'internal', what);
    t.true(answer.code === (status === 413 ? 'too_large' : 'invalid_argument') || (status === 400 && answer.code === 'invalid_file'), `${what}: ${answer.code}`);
  }
});

test('a client that sends headers and 10 bytes of a 100 kB body is cut at --request-timeout-ms with a typed 408', async (t) => {
  const { url } = await startServer(t, tiny(), { limits: { requestTimeoutMs: 1_500 } });
  const port = portOf(url);
  for (const type of ['image/png', 'multipart/form-data; boundary=B', 'application/json']) {
    const answer = await raw(port, `POST /v1/encode HTTP/1.1\r\nHost: t\r\nContent-Type: ${type}\r\nContent-Length: 100000\r\n\r\n0123456789`, 10_000);
    t.true(answer.closed, `${type}: the server closed the connection`);
    t.true(answer.ms < 4_000, `${type}: cut after ${Math.round(answer.ms)} ms`);
    t.true(answer.status === 408 || answer.status === 504, `${type}: status ${answer.status}`);
  }
  // Headers that never finish are cut too.
  const headers = await raw(port, 'POST /v1/encode HTTP/1.1\r\nHost: t\r\nX-Slow: ', 10_000);
  t.true(headers.closed && headers.ms < 4_000, `headers cut after ${Math.round(headers.ms)} ms`);
});

test('uploads are capped: past --max-uploads bodies in progress a request gets 503 busy, and a slot frees when a client leaves', async (t) => {
  const { url, server } = await startServer(t, tiny(), { limits: { maxUploads: 2, requestTimeoutMs: 20_000 } });
  const port = portOf(url);
  const stalled = [0, 1].map(() => connect(port, '127.0.0.1'));
  t.teardown(() => stalled.forEach((s) => s.destroy()));
  for (const socket of stalled) socket.write('POST /v1/encode HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n0123');
  const metricsOf = async (): Promise<string> => server.metrics.text();
  for (let i = 0; i < 100 && !/vitgraph_requests_in_flight 2\b/.test(await metricsOf()); i++) await new Promise((r) => setTimeout(r, 20));
  const refused = await raw(port, post('{"items":[]}', 'application/json'));
  t.is(refused.status, 503);
  t.is(refused.code, 'busy');
  stalled[0]!.destroy();
  for (let i = 0; i < 100 && !/vitgraph_requests_in_flight 1\b/.test(await metricsOf()); i++) await new Promise((r) => setTimeout(r, 20));
  const admitted = await raw(port, post('{"items":[]}', 'application/json'));
  t.is(admitted.status, 400, 'a slot is free again: the request is read (and its empty item list refused)');
});

test('vitgraph_requests_in_flight returns to 0 after stalled, aborted and timed-out requests', async (t) => {
  const { url, server } = await startServer(t, tiny(), { limits: { requestTimeoutMs: 1_000, maxUploads: 100 } });
  const port = portOf(url);
  const sockets = Array.from({ length: 40 }, (_, i) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const type = i % 2 === 0 ? 'image/png' : 'multipart/form-data; boundary=B';
    socket.write(`POST /v1/encode HTTP/1.1\r\nHost: t\r\nContent-Type: ${type}\r\nContent-Length: 100000\r\n\r\n--B\r\n`);
    return socket;
  });
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const gauge = async (): Promise<number> => Number(/^vitgraph_requests_in_flight (\d+)/m.exec(await server.metrics.text())?.[1]);
  for (let i = 0; i < 100 && (await gauge()) < 40; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(await gauge(), 40);
  sockets.slice(0, 20).forEach((s) => s.destroy()); // half abort; the other half stall until the timeout cuts them
  const deadline = performance.now() + 5_000;
  while ((await gauge()) !== 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(await gauge(), 0);
});
