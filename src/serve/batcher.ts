// Cross-request batching: requests' prepared items wait in one FIFO queue; the scheduler runs one
// batch at a time, taking whole requests in arrival order up to `maxBatchPatches`, after waiting at
// most `maxWaitMs` for company when the encoder is idle. While a batch runs, new requests queue and
// ride the next batch together, so batches grow with load without any wait at all.
//
// A request's items stay together and in order; each item's outputs are its own tokens only. On
// CPU the dynamic graph gives every item bit-identical numbers whether it runs alone or beside
// others (row-wise GEMMs, attention per item), and so do buckets; a failed batch is re-run request
// by request, so one client's bad item fails only that client.

import { invalidArgument } from '../errors.js';
import { cancelled, queueFull } from './errors.js';
import type { BatchEncoder, EncodedItem, PreparedItem } from './types.js';

export interface BatcherOptions {
  /** How long an idle encoder waits for more requests before running what it has (default 0). */
  maxWaitMs?: number;
  /** Patches per batch; a single larger request still runs, alone (default 4096). */
  maxBatchPatches?: number;
  /** Patches allowed to wait; beyond this `submit` fails with queue_full (default 65 536). */
  maxQueuePatches?: number;
  /** false: one request per runtime call, in arrival order (the "batching off" baseline). */
  batching?: boolean;
  /** Called after each runtime call (metrics). */
  onBatch?: (batch: BatchStats) => void;
}

export interface BatchStats {
  readonly requests: number;
  readonly items: number;
  readonly patches: number;
  readonly tokens: number;
  readonly encodeMs: number;
  /** false when the batch failed and its requests were re-run one by one. */
  readonly ok: boolean;
}

export interface SubmitOptions {
  /** Aborting drops the request's items if they have not started; the promise rejects. */
  signal?: AbortSignal;
}

export interface BatchResult {
  readonly items: EncodedItem[];
  readonly queueMs: number;
  readonly encodeMs: number;
  /** The runtime call this request rode in. */
  readonly batch: { readonly requests: number; readonly items: number; readonly patches: number };
}

interface Pending {
  readonly items: readonly PreparedItem[];
  readonly patches: number;
  readonly enqueuedAt: number;
  readonly resolve: (result: BatchResult) => void;
  readonly reject: (error: unknown) => void;
  readonly detach: () => void;
}

export class Batcher {
  private readonly queue: Pending[] = [];
  private queued = 0; // patches waiting
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private patchesPerSecond = 0; // moving average, for Retry-After
  private readonly idleWaiters: (() => void)[] = [];
  readonly maxWaitMs: number;
  readonly maxBatchPatches: number;
  readonly maxQueuePatches: number;
  readonly batching: boolean;

  constructor(
    private readonly encoder: BatchEncoder,
    private readonly options: BatcherOptions = {},
  ) {
    this.maxWaitMs = nonNegative('maxWaitMs', options.maxWaitMs ?? 0);
    this.maxBatchPatches = positive('maxBatchPatches', options.maxBatchPatches ?? 4096);
    this.maxQueuePatches = positive('maxQueuePatches', options.maxQueuePatches ?? 65_536);
    this.batching = options.batching ?? true;
  }

  /** Patches and requests waiting (not counting the batch that is running). */
  get queuedPatches(): number {
    return this.queued;
  }
  get queuedRequests(): number {
    return this.queue.length;
  }

  /** Whether `patches` more would overflow the queue now (checked again by `submit`). */
  wouldOverflow(patches: number): boolean {
    return this.queue.length > 0 && this.queued + patches > this.maxQueuePatches;
  }

  /** Seconds a rejected client should wait: the time to work off the queue, at least 1. */
  retryAfterSeconds(): number {
    return this.patchesPerSecond > 0 ? Math.max(1, Math.ceil(this.queued / this.patchesPerSecond)) : 1;
  }

  /**
   * Queues one request's items and resolves with one result per item, in order. Rejects with a
   * VitgraphError for non-finite pixels (before queueing), queue_full when the queue holds its
   * limit, or cancelled when `signal` aborts first.
   */
  submit(items: readonly PreparedItem[], options: SubmitOptions = {}): Promise<BatchResult> {
    if (this.closing) return Promise.reject(invalidArgument('batcher', 'an open batcher', 'a closed one'));
    if (items.length === 0) return Promise.reject(invalidArgument('items', 'at least one item', 'an empty list'));
    try {
      items.forEach(checkFinite);
    } catch (error) {
      return Promise.reject(error);
    }
    const patches = items.reduce((sum, item) => sum + item.patches, 0);
    // An empty queue always takes a request, so one larger than the limit is served, alone.
    if (this.wouldOverflow(patches)) return Promise.reject(queueFull(this.queued, this.maxQueuePatches, this.retryAfterSeconds()));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(cancelled());
    return new Promise<BatchResult>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.queue.indexOf(pending);
        if (at >= 0) {
          this.queue.splice(at, 1);
          this.queued -= pending.patches;
          this.notifyIdle();
        }
        reject(cancelled()); // a running request's results are dropped: its promise is settled
      };
      const pending: Pending = {
        items,
        patches,
        enqueuedAt: performance.now(),
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(pending);
      this.queued += patches;
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or running. */
  drain(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new requests and resolves when the queued and running ones are done. Does not close the encoder. */
  async close(): Promise<void> {
    this.closing = true;
    await this.drain();
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    const waited = performance.now() - this.queue[0]!.enqueuedAt;
    const full = !this.batching || this.queued >= this.maxBatchPatches;
    if (!full && waited < this.maxWaitMs) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, this.maxWaitMs - waited);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.take();
    this.running = this.run(batch).finally(() => {
      this.running = undefined;
      this.schedule();
      this.notifyIdle();
    });
  }

  /** Whole requests in arrival order up to maxBatchPatches (at least one). */
  private take(): Pending[] {
    const batch: Pending[] = [this.queue.shift()!];
    let patches = batch[0]!.patches;
    while (this.batching && this.queue.length > 0 && patches + this.queue[0]!.patches <= this.maxBatchPatches) {
      patches += this.queue[0]!.patches;
      batch.push(this.queue.shift()!);
    }
    this.queued -= patches;
    return batch;
  }

  private async run(batch: Pending[]): Promise<void> {
    const items = batch.flatMap((p) => p.items);
    const patches = batch.reduce((sum, p) => sum + p.patches, 0);
    const start = performance.now();
    let outputs: EncodedItem[];
    try {
      outputs = await this.encoder.encodeBatch(items);
      if (outputs.length !== items.length) throw new Error(`encoder returned ${outputs.length} results for ${items.length} items`);
    } catch (error) {
      await this.isolate(batch, error, start);
      return;
    }
    const encodeMs = performance.now() - start;
    this.record(batch.length, items.length, patches, outputs, encodeMs, true);
    let at = 0;
    for (const pending of batch) {
      const mine = outputs.slice(at, at + pending.items.length);
      at += pending.items.length;
      this.settle(pending, () => pending.resolve({ items: mine, queueMs: start - pending.enqueuedAt, encodeMs, batch: { requests: batch.length, items: items.length, patches } }));
    }
  }

  /** A failed batch: a lone request gets the error; several are re-run one by one, so only the bad one fails. */
  private async isolate(batch: Pending[], error: unknown, start: number): Promise<void> {
    if (batch.length === 1) {
      const [pending] = batch as [Pending];
      this.record(1, pending.items.length, pending.patches, [], performance.now() - start, false);
      this.settle(pending, () => pending.reject(error));
      return;
    }
    for (const pending of batch) await this.run([pending]);
  }

  private settle(pending: Pending, action: () => void): void {
    pending.detach();
    action(); // a request aborted while running was already rejected: this is a no-op for it
  }

  private record(requests: number, items: number, patches: number, outputs: readonly EncodedItem[], encodeMs: number, ok: boolean): void {
    if (ok && encodeMs > 0) {
      const rate = patches / (encodeMs / 1000);
      this.patchesPerSecond = this.patchesPerSecond === 0 ? rate : 0.8 * this.patchesPerSecond + 0.2 * rate;
    }
    const tokens = outputs.reduce((sum, o) => sum + o.tokens, 0);
    this.options.onBatch?.({ requests, items, patches, tokens, encodeMs, ok });
  }

  private notifyIdle(): void {
    if (this.running || this.queue.length > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/** The library entry: a batcher over any `BatchEncoder` (see adapter.ts for vitgraph's own encoder). */
export function createBatcher(encoder: BatchEncoder, options: BatcherOptions = {}): Batcher {
  return new Batcher(encoder, options);
}

/** Non-finite pixels never reach a batch: they fail their own request with a typed error naming the item. */
function checkFinite(item: PreparedItem, index: number): void {
  const { pixels } = item;
  for (let i = 0; i < pixels.length; i++) {
    if (!Number.isFinite(pixels[i]!)) {
      const row = Math.floor(i / (pixels.length / Math.max(item.patches, 1)));
      throw invalidArgument(`items[${index}] pixel values (row ${row})`, 'finite numbers', pixels[i], 'Send decoded images, or pixel rows without NaN or Infinity');
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw invalidArgument(name, 'an integer ≥ 1', value);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw invalidArgument(name, 'a number ≥ 0', value);
  return value;
}
