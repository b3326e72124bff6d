// `EncoderServer`: the HTTP face of a BatchEncoder (fastify + @fastify/multipart + prom-client).
//   POST /v1/encode   JSON | multipart/form-data | raw image body  →  JSON or safetensors (by Accept)
//   GET  /healthz     alive;   GET /readyz   model loaded and warmed, not draining;   GET /metrics
// Every error is JSON `{ error: { code, message } }` with a typed code (errors.ts). The server
// listens before the model is ready, so liveness holds during a long load; readiness follows it.

import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { invalidArgument } from '../errors.js';
import { Batcher, type BatcherOptions } from './batcher.js';
import { ServeError, cancelled, errorResponse, notReady, queueFull, shuttingDown, timedOut, tooLarge } from './errors.js';
import { checkPort, listenError } from './port.js';
import { UploadSlots, httpServerOptions, multipartParseError, requestError } from './guards.js';
import { inputFromRaw, inputsFromJson, inputsFromParts, type InputLimits } from './request-inputs.js';
import { ServeMetrics } from './metrics.js';
import { jsonResponse, safetensorsResponse, type Timings } from './outputs.js';
import type { BatchEncoder, EncoderInfo, ServeInput } from './types.js';

export interface ServeLimits extends InputLimits {
  /** Bytes per request body (JSON, raw image, or all multipart parts together). */
  readonly maxBodyBytes: number;
  /**
   * From arrival to response; past it the request's pending items are dropped and it gets 504. It
   * also bounds receiving the body (a slow upload is cut with 408) and the headers (at most 10 s).
   */
  readonly requestTimeoutMs: number;
  /** Request bodies being received at once (over all clients); one more gets 503 busy + Retry-After. */
  readonly maxUploads: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxBodyBytes: 32 * 2 ** 20,
  maxItems: 64,
  maxImagePixels: 16_777_216, // 4096², the shipped processor's largest resize budget
  maxVideoPixels: 25_165_824, // the shipped video processor's budget
  maxFrames: 256,
  requestTimeoutMs: 120_000,
  maxUploads: 64,
};

export interface EncoderServerOptions {
  host?: string;
  /** 0 picks a free port (see `url`). */
  port?: number;
  limits?: Partial<ServeLimits>;
  batcher?: BatcherOptions;
  /** Most time `close()` waits for in-flight requests before cutting connections (default 30 s). */
  shutdownTimeoutMs?: number;
  /** Listen only once the model is ready (cluster workers: connections go to ready processes only). */
  listenWhenReady?: boolean;
  /** One line per event (startup, shutdown); default: stderr. */
  log?: (line: string) => void;
}

type Stage = 'loading' | 'ready' | 'draining' | 'closed';

/** The server's stage when each request's headers arrived. */
const accepted = new WeakMap<FastifyRequest, Stage>();

/** Bytes per multipart form field: fields carry numbers (min_pixels, max_pixels). */
const FIELD_BYTES = 1024;

export class EncoderServer {
  private stage: Stage = 'loading';
  private encoder: BatchEncoder | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  /** Resolves when the model is loaded and warmed; rejects (and the server closes) if loading fails. */
  readonly ready: Promise<void>;
  readonly metrics: ServeMetrics;
  readonly limits: ServeLimits;
  private url_ = '';
  private readonly uploads: UploadSlots;

  private constructor(
    private readonly app: FastifyInstance,
    private readonly batcher: Batcher,
    private readonly loading: Promise<BatchEncoder>,
    private readonly options: EncoderServerOptions,
    limits: ServeLimits,
    metrics: ServeMetrics,
  ) {
    this.limits = limits;
    this.metrics = metrics;
    this.uploads = new UploadSlots(limits.maxUploads);
    this.ready = this.becomeReady(loading);
    this.ready.catch(() => undefined); // observed by callers; never an unhandled rejection
  }

  /**
   * Starts serving `encoder` (or the promise of one, so liveness answers while it loads). The server
   * owns the encoder: `close()` closes it.
   */
  static async start(encoder: BatchEncoder | Promise<BatchEncoder>, options: EncoderServerOptions = {}): Promise<EncoderServer> {
    const limits: ServeLimits = { ...DEFAULT_LIMITS, ...options.limits };
    const host = options.host ?? '127.0.0.1';
    const port = checkPort(options.port ?? 8080);
    const loading = Promise.resolve(encoder);
    const batcher = new Batcher(lazyEncoder(loading), { ...options.batcher, onBatch: (stats) => metrics.batch(stats) });
    const metrics = new ServeMetrics({ patches: () => batcher.queuedPatches, requests: () => batcher.queuedRequests });
    const app = Fastify({ bodyLimit: limits.maxBodyBytes, logger: false, return503OnClosing: false, forceCloseConnections: 'idle', ...httpServerOptions(limits) });
    await app.register(multipart, { limits: { fileSize: limits.maxBodyBytes, files: limits.maxItems * limits.maxFrames, fields: 16, fieldSize: FIELD_BYTES }, throwFileSizeLimit: true });
    for (const type of [/^image\//, 'application/octet-stream']) {
      app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes }, (_req, body, done) => done(null, body));
    }
    const server = new EncoderServer(app, batcher, loading, options, limits, metrics);
    server.routes();
    if (options.listenWhenReady) await server.ready;
    try {
      server.url_ = await app.listen({ host, port });
    } catch (error) {
      void server.close(); // frees the model once it has loaded
      throw listenError(error, host, port);
    }
    server.log(`listening on ${server.url_}`);
    return server;
  }

  /** e.g. http://127.0.0.1:8080 */
  get url(): string {
    return this.url_;
  }

  get isReady(): boolean {
    return this.stage === 'ready';
  }

  private async becomeReady(loading: Promise<BatchEncoder>): Promise<void> {
    try {
      const encoder = await loading;
      this.encoder = encoder;
      const { info } = encoder;
      this.log(`model ${info.model}`);
      this.log(`graphs ${info.graphs}`);
      this.log(`backend ${info.backend}`);
      this.log(`threads ${info.threads}`);
      this.log(
        `batching ${this.batcher.batching ? `on: max-wait ${this.batcher.maxWaitMs} ms, max-batch ${this.batcher.maxBatchPatches} patches` : 'off: one request per run'}, queue ${this.batcher.maxQueuePatches} patches`,
      );
      const start = performance.now();
      await encoder.warmup();
      if (this.stage !== 'loading') return;
      this.stage = 'ready';
      this.log(`ready (warmup ${Math.round(performance.now() - start)} ms)`);
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  private routes(): void {
    const { app } = this;
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      if (this.stage === 'ready') return { status: 'ready' };
      return reply.code(503).send({ status: this.stage });
    });
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.text()));
    // A request is accepted when its headers arrive: one accepted before a SIGTERM is finished, not refused.
    // It is in flight until its response ends or its connection closes, whichever comes first: a
    // client that aborts, stalls until a timeout cuts it, or sends a body that never parses still
    // brings the gauge back (the response's 'close' fires in every one of those cases, once).
    app.addHook('onRequest', async (request, reply) => {
      accepted.set(request, this.stage);
      if (!request.url.startsWith('/v1/encode')) return;
      this.metrics.inFlight(+1);
      reply.raw.once('close', () => {
        this.metrics.inFlight(-1);
        this.uploads.release(request);
      });
      // Refused before the body is read, so a flood of slow uploads holds at most maxUploads bodies.
      if (request.method === 'POST') this.uploads.acquire(request);
    });
    // While draining, each answer closes its connection, so keep-alive clients cannot hold the stop up.
    app.addHook('onSend', async (_request, reply) => {
      if (this.stage === 'draining') reply.header('connection', 'close');
    });
    app.post('/v1/encode', (request, reply) => this.track(this.encode(request, reply, accepted.get(request) ?? this.stage)));
    app.setNotFoundHandler((request, reply) => {
      const { status, body } = errorResponse(new ServeError('not_found', 404, `no route ${request.method} ${request.url}; POST /v1/encode, GET /healthz, /readyz, /metrics`));
      return reply.code(status).send(body);
    });
    app.setErrorHandler((error, request, reply) => {
      const { status, body, headers } = errorResponse(requestError(error, this.limits));
      if (request.url.startsWith('/v1/encode')) this.metrics.request(status, reply.elapsedTime / 1000); // rejected before the handler (body limit, media type, busy)
      // A request refused before its body was read leaves unread bytes on the connection: close it.
      if (!request.raw.complete) reply.header('connection', 'close');
      return reply.code(status).headers(headers).send(body);
    });
  }

  private async encode(request: FastifyRequest, reply: FastifyReply, stageAtArrival: Stage): Promise<FastifyReply> {
    const arrived = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(timedOut(this.limits.requestTimeoutMs)), this.limits.requestTimeoutMs);
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort(cancelled()); // the client went away
    });
    try {
      if (stageAtArrival === 'draining' || stageAtArrival === 'closed') throw shuttingDown();
      if (stageAtArrival !== 'ready' || !this.encoder) throw notReady();
      if (this.batcher.wouldOverflow(1)) throw queueFull(this.batcher.queuedPatches, this.batcher.maxQueuePatches, this.batcher.retryAfterSeconds());
      const inputs = await this.readInputs(request, controller.signal).finally(() => this.uploads.release(request));
      const items = await this.encoder.prepare(inputs, { maxInputPixels: this.limits.maxImagePixels });
      const prepared = performance.now();
      if (controller.signal.aborted) throw controller.signal.reason;
      const result = await this.batcher.submit(items, { signal: controller.signal }).catch((error: unknown) => {
        throw controller.signal.aborted ? controller.signal.reason : error;
      });
      const timings: Timings = {
        preprocess_ms: round(prepared - arrived),
        queue_ms: round(result.queueMs),
        encode_ms: round(result.encodeMs),
        total_ms: round(performance.now() - arrived),
        batch: result.batch,
      };
      this.metrics.request(200, (performance.now() - arrived) / 1000);
      reply.header('server-timing', `preprocess;dur=${timings.preprocess_ms}, queue;dur=${timings.queue_ms}, encode;dur=${timings.encode_ms}`);
      if (wantsSafetensors(request.headers.accept)) {
        const metadata = { producer: 'vitgraph serve', model: this.encoder.info.model, timings: JSON.stringify(timings) };
        return reply.type('application/octet-stream').send(safetensorsResponse(result.items, this.encoder.info.outputs, metadata));
      }
      return reply.send(jsonResponse(result.items, timings));
    } catch (thrown) {
      const { status, body, headers } = errorResponse(requestError(thrown, this.limits));
      if (!request.raw.complete) reply.header('connection', 'close');
      this.metrics.request(status, (performance.now() - arrived) / 1000);
      return reply.code(status).headers(headers).send(body);
    } finally {
      clearTimeout(timer);
    }
  }

  private async readInputs(request: FastifyRequest, signal: AbortSignal): Promise<ServeInput[]> {
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (request.isMultipart()) return this.readParts(request, signal);
    if (type === 'application/json') return inputsFromJson(request.body, this.limits);
    if (Buffer.isBuffer(request.body)) return inputFromRaw(request.body, request.query as Record<string, string | undefined>, this.limits);
    throw new ServeError('unsupported_media_type', 415, `Content-Type: expected application/json, multipart/form-data, image/* or application/octet-stream, got ${JSON.stringify(type || 'none')}`);
  }

  /** Multipart parts as they stream in; the request's timeout answers a body that trickles (504, connection closed). */
  private async readParts(request: FastifyRequest, signal: AbortSignal): Promise<ServeInput[]> {
    const files: { field: string; bytes: Uint8Array }[] = [];
    const fields: Record<string, string> = {};
    let total = 0;
    const reading = (async () => {
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (part.valueTruncated)
            throw tooLarge(`multipart field ${JSON.stringify(part.fieldname)} bytes`, FIELD_BYTES, 'more', 'Form fields carry numbers (min_pixels, max_pixels); send images as file parts');
          fields[part.fieldname] = String(part.value);
          continue;
        }
        const bytes = await part.toBuffer();
        total += bytes.byteLength;
        if (total > this.limits.maxBodyBytes)
          throw tooLarge('multipart body bytes', this.limits.maxBodyBytes, `more than ${this.limits.maxBodyBytes}`, 'Send fewer or smaller files, or raise --max-body-bytes');
        files.push({ field: part.fieldname, bytes });
      }
    })();
    reading.catch(() => undefined); // abandoned on timeout: the connection closes under it
    let stop: () => void = () => undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      stop = () => reject(signal.reason);
      signal.addEventListener('abort', stop, { once: true });
    });
    try {
      await Promise.race([reading, timedOut]);
    } catch (error) {
      throw signal.aborted ? signal.reason : multipartParseError(error);
    } finally {
      signal.removeEventListener('abort', stop);
    }
    return inputsFromParts(files, fields, this.limits);
  }

  /** Counts a request in flight until its response is sent (close() waits for these). */
  private track(work: Promise<FastifyReply>): Promise<FastifyReply> {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  /**
   * Graceful stop: readiness fails and new encode requests get 503 at once; the listener closes;
   * requests already accepted finish (bounded by shutdownTimeoutMs, then connections are cut);
   * then the batcher drains and the encoder closes. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const from = this.stage;
    this.stage = 'draining';
    if (from !== 'loading') this.log(`draining: ${this.inFlight.size} request(s) in flight`);
    const bound = this.options.shutdownTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), bound)));
    const outcome = await Promise.race([Promise.allSettled([this.app.close(), ...this.inFlight]).then(() => 'done' as const), cut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.log(`shutdown: ${this.inFlight.size} request(s) still running after ${bound} ms; closing their connections`);
      this.app.server.closeAllConnections();
    }
    await this.batcher.close();
    await (await this.loading.catch(() => undefined))?.close(); // a close during loading waits for the model, then frees it
    this.stage = 'closed';
    if (from !== 'loading') this.log('closed');
  }

  private log(line: string): void {
    (this.options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(`vitgraph serve: ${line}`);
  }
}

/** A BatchEncoder whose calls wait for the real one (the batcher is built before the model loads). */
function lazyEncoder(loading: Promise<BatchEncoder>): BatchEncoder {
  return {
    get info(): EncoderInfo {
      throw invalidArgument('encoder', 'a loaded model', 'one still loading');
    },
    prepare: async (inputs, limits) => (await loading).prepare(inputs, limits),
    encodeBatch: async (items) => (await loading).encodeBatch(items),
    warmup: async () => (await loading).warmup(),
    close: async () => (await loading).close(),
  };
}

/** JSON unless the client asks for octet-stream ahead of (or without) JSON. */
function wantsSafetensors(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  const binary = types.indexOf('application/octet-stream');
  const json = types.indexOf('application/json');
  return binary >= 0 && (json < 0 || binary < json);
}

const round = (ms: number): number => Math.round(ms * 10) / 10;
