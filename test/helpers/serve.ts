// Serving tests: a real EncoderServer on 127.0.0.1 (port 0) over the embedded tiny tower, a gate
// that holds batches so queue states can be set up deterministically, and response decoding.

import type { ExecutionContext } from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBatchEncoder } from '../../index.js';
import { EncoderServer, type EncoderServerOptions } from '../../src/serve/index.js';
import type { EncodeResponse } from '../../src/serve/outputs.js';
import type { BatchEncoder, EncodedItem, PreparedItem } from '../../src/serve/types.js';
import { ROOT } from './files.js';

export const imageBytes = (name: string): Promise<Buffer> => readFile(join(ROOT, 'fixtures', 'images', name));

/** The tiny tower as a BatchEncoder, exported into `cacheDir` on first use; one intra-op thread. */
export const tinyEncoder = (cacheDir: string): Promise<BatchEncoder> => loadBatchEncoder(undefined, { cacheDir, threads: 1 });

/** A ready server on a free loopback port, closed when the test ends; its log lines are kept. */
export async function startServer(
  t: ExecutionContext,
  encoder: BatchEncoder | Promise<BatchEncoder>,
  options: EncoderServerOptions & { waitReady?: boolean } = {},
): Promise<{ server: EncoderServer; url: string; logs: string[] }> {
  const logs: string[] = [];
  const server = await EncoderServer.start(encoder, { host: '127.0.0.1', port: 0, log: (line) => logs.push(line), ...options });
  t.teardown(() => server.close());
  if (options.waitReady !== false) await server.ready;
  return { server, url: server.url, logs };
}

/** Wraps an encoder so each batch waits for `open()`; records every batch's items. */
export function gated(inner: BatchEncoder): BatchEncoder & { batches: PreparedItem[][]; open: () => void; started: () => Promise<void> } {
  let release: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (release = resolve));
  let onStart: (() => void) | undefined;
  const batches: PreparedItem[][] = [];
  return {
    get info() {
      return inner.info;
    },
    batches,
    prepare: (inputs, limits) => inner.prepare(inputs, limits),
    async encodeBatch(items): Promise<EncodedItem[]> {
      batches.push([...items]);
      onStart?.();
      await gate;
      return inner.encodeBatch(items);
    },
    warmup: () => inner.warmup(),
    close: () => inner.close(),
    open: () => {
      release();
      gate = Promise.resolve();
    },
    started: () => (batches.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (onStart = resolve))),
  };
}

/** POSTs a JSON body to /v1/encode. */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/encode`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** A JSON response's tensor as float32 values. */
export function tensorOf(response: EncodeResponse, item: number, name: string): Float32Array {
  const bytes = Buffer.from(response.items[item]!.outputs[name]!.data, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Number of positions where two arrays differ (Infinity when lengths differ): 0 means bit-identical here. */
export function differing(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}
