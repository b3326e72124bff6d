// Errors the serving layer adds to vitgraph's vocabulary (limits, backpressure, lifecycle), and
// the one table that turns any error into an HTTP status and a JSON body with a typed code.

import { VitgraphError, type ErrorCode } from '../errors.js';

export type ServeErrorCode =
  | 'too_large' // a body, an image or a request over a configured limit → 413
  | 'unsupported_media_type' // a Content-Type the endpoint does not read → 415
  | 'queue_full' // the queue holds its limit in patches → 503 + Retry-After
  | 'busy' // as many request bodies are being received as --max-uploads allows → 503 + Retry-After
  | 'not_ready' // the model is still loading or warming up → 503
  | 'shutting_down' // the server is draining → 503
  | 'timeout' // the request waited longer than the per-request timeout → 504
  | 'cancelled' // the client went away (or the caller aborted) before its items ran
  | 'not_found'; // no such route → 404

export class ServeError extends Error {
  constructor(
    readonly code: ServeErrorCode,
    readonly status: number,
    message: string,
    /** Seconds a client should wait before retrying (503 only). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'ServeError';
  }
}

export const tooLarge = (what: string, limit: number, got: number | string, hint: string): ServeError => new ServeError('too_large', 413, `${what}: expected at most ${limit}, got ${got}. ${hint}`);

export const queueFull = (queued: number, limit: number, retryAfterS: number): ServeError =>
  new ServeError('queue_full', 503, `queue full: ${queued} patches waiting (limit ${limit}). Retry after ${retryAfterS} s`, retryAfterS);

export const cancelled = (): ServeError => new ServeError('cancelled', 499, 'request cancelled before its items ran');

export const timedOut = (ms: number): ServeError => new ServeError('timeout', 504, `request timed out after ${ms} ms in the queue or the encoder. Retry later or raise --request-timeout-ms`);

export const shuttingDown = (): ServeError => new ServeError('shutting_down', 503, 'server is shutting down; send the request to another replica', 1);

export const notReady = (): ServeError => new ServeError('not_ready', 503, 'model is loading or warming up; poll GET /readyz', 1);

/** 4xx for a caller's mistake, 5xx for ours: by VitgraphError code. */
const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  invalid_argument: 400,
  invalid_config: 400,
  invalid_file: 400,
  input_mismatch: 400,
  closed: 503, // the encoder was closed (shutdown): another replica can take the request
  not_found: 400, // the server reads no paths: a "not found" is about something the client named
  unsupported: 400,
  weight_binding: 500,
  graph_build: 500,
  runtime: 500,
  file_system: 500, // the server's own cache or files: not the client's doing
};

export interface ErrorBody {
  readonly error: { readonly code: ServeErrorCode | ErrorCode | 'internal'; readonly message: string; readonly details?: Readonly<Record<string, unknown>> };
}

/** Status, body and headers for any thrown value; unknown errors are 500 without internals. */
export function errorResponse(error: unknown): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (error instanceof ServeError) {
    return {
      status: error.status,
      body: { error: { code: error.code, message: error.message } },
      headers: error.retryAfterS !== undefined ? { 'retry-after': String(error.retryAfterS) } : {},
    };
  }
  if (error instanceof VitgraphError) {
    const details = Object.keys(error.details).length > 0 ? { details: jsonSafe(error.details) } : {};
    return { status: STATUS_BY_CODE[error.code], body: { error: { code: error.code, message: error.message, ...details } }, headers: {} };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'internal error while encoding; see the server log' } }, headers: {} };
}

/** Details as JSON can carry them (bigints as numbers; nothing that throws in JSON.stringify). */
function jsonSafe(details: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(details, (_key, value: unknown) => (typeof value === 'bigint' ? Number(value) : value))) as Record<string, unknown>;
}
