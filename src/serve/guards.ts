// What keeps one slow or malformed client from costing the service more than its own request:
// socket-level timeouts for headers and bodies, a cap on bodies being received at once, and the
// translation of fastify's, @fastify/multipart's and busboy's errors into typed 4xx answers.

import { STATUS_CODES, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { invalidArgument } from '../errors.js';
import { ServeError, tooLarge } from './errors.js';

export interface GuardLimits {
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  /** Request bodies being received at once; one more gets 503 + Retry-After before its body is read. */
  readonly maxUploads: number;
}

/** Headers arrive in one round trip from any real client; a client that trickles them is cut early. */
const HEADERS_TIMEOUT_MS = 10_000;

/**
 * Node's own request timers, so a client that sends headers and then trickles (or never finishes)
 * its body is cut at `requestTimeoutMs` from arrival even before any handler runs (Node answers
 * 408 and closes). Node checks these timers every `connectionsCheckingInterval` (30 s by default,
 * which would let a 5 s timeout run 35 s), so the check runs every second or faster.
 */
export function httpServerOptions(limits: Pick<GuardLimits, 'requestTimeoutMs'>): { http: ServerOptions; requestTimeout: number; connectionTimeout: number; clientErrorHandler: typeof clientError } {
  const requestTimeout = limits.requestTimeoutMs;
  return {
    http: {
      requestTimeout,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeout),
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(requestTimeout / 4))),
    },
    requestTimeout,
    // An idle socket (no bytes either way) outlives every legitimate request, whose response comes
    // (a 504 at worst) at requestTimeoutMs.
    connectionTimeout: requestTimeout + 5_000,
    clientErrorHandler: clientError,
  };
}

/**
 * Node's 'clientError' (a request timer fired, headers too large, bytes that are not HTTP) answered
 * in the service's JSON error shape, so even a request cut below fastify carries a typed code.
 */
export function clientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'timeout', 'the request (headers and body) did not arrive within --request-timeout-ms; send the body at once']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'too_large', 'request headers over the size limit']
        : [400, 'invalid_argument', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy();
}

/** A fixed number of upload slots; a slot is held from a request's arrival until its body is read or it closes. */
export class UploadSlots {
  private readonly holders = new Set<object>();

  constructor(readonly limit: number) {}

  get used(): number {
    return this.holders.size;
  }

  /** Takes a slot for `holder`, or refuses with 503 busy when all are taken. */
  acquire(holder: object): void {
    if (this.holders.size >= this.limit) {
      throw new ServeError('busy', 503, `${this.limit} request bodies are being received already (--max-uploads). Retry after 1 s`, 1);
    }
    this.holders.add(holder);
  }

  /** Frees `holder`'s slot; safe to call more than once, and for a holder that never got one. */
  release(holder: object): void {
    this.holders.delete(holder);
  }
}

/**
 * Fastify's own errors (body limit, content type, bad JSON), @fastify/multipart's limits and
 * busboy's parse errors (which carry no status) in vitgraph's vocabulary: a typed 4xx, never 500.
 */
export function requestError(error: unknown, limits: Pick<GuardLimits, 'maxBodyBytes'>): unknown {
  if (error instanceof ServeError || !(error instanceof Error)) return error;
  const { statusCode: status, code } = error as { statusCode?: number; code?: string };
  switch (code) {
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ServeError('too_large', 413, `multipart body: ${error.message.replace(/^reach /, 'over the ')}. Send fewer parts per request`);
    case 'FST_REQ_FILE_TOO_LARGE':
      return tooLarge('multipart file bytes', limits.maxBodyBytes, 'more', 'Send a smaller file or raise --max-body-bytes');
  }
  if (status === 413) return tooLarge('request body bytes', limits.maxBodyBytes, 'more', 'Send a smaller body or raise --max-body-bytes');
  if (status === 415) return new ServeError('unsupported_media_type', 415, `${error.message}. Send application/json, multipart/form-data, image/* or application/octet-stream`);
  if (status !== undefined && status >= 400 && status < 500) return invalidArgument('request', 'a well-formed body', error.message);
  return error;
}

/** A multipart stream that failed to parse (busboy: no boundary, a malformed header, a body cut short) is the client's mistake. */
export function multipartParseError(error: unknown): unknown {
  if (error instanceof ServeError || !(error instanceof Error) || (error as { statusCode?: number }).statusCode !== undefined) return error;
  return invalidArgument('multipart body', 'well-formed multipart/form-data (a boundary in Content-Type, a header block per part, a closing boundary)', error.message);
}
