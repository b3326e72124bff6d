// Prometheus metrics (prom-client) in a registry of the server's own, so several servers in one
// process (tests, embedding) never share or clash on series.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchStats } from './batcher.js';

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class ServeMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'vitgraph_requests_total', help: 'Encode requests by HTTP status', labelNames: ['status'] as const, registers: [this.registry] });
  private readonly latency = new Histogram({
    name: 'vitgraph_request_duration_seconds',
    help: 'Encode request latency, arrival to response, by HTTP status',
    labelNames: ['status'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly encodeSeconds = new Histogram({ name: 'vitgraph_batch_duration_seconds', help: 'Time of one runtime call (one batch)', buckets: SECONDS, registers: [this.registry] });
  private readonly batchItems = new Histogram({ name: 'vitgraph_batch_items', help: 'Items per runtime call', buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [this.registry] });
  private readonly batchPatches = new Histogram({ name: 'vitgraph_batch_patches', help: 'Patches per runtime call', buckets: [64, 256, 1024, 4096, 16384, 65536], registers: [this.registry] });
  private readonly batchRequests = new Histogram({ name: 'vitgraph_batch_requests', help: 'Requests per runtime call', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'vitgraph_tokens_total', help: 'Visual tokens produced (rate() gives tokens per second)', registers: [this.registry] });
  private readonly tokensPerSecond = new Gauge({ name: 'vitgraph_tokens_per_second', help: 'Tokens per second of encoder time in the last batch', registers: [this.registry] });
  private readonly requestsInFlight = new Gauge({ name: 'vitgraph_requests_in_flight', help: 'Encode requests received and not yet answered', registers: [this.registry] });
  private readonly failedBatches = new Counter({ name: 'vitgraph_batch_failures_total', help: 'Batches that failed and were re-run request by request', registers: [this.registry] });

  constructor(queue: { patches: () => number; requests: () => number }) {
    // Gauges read at scrape time from the batcher's queue.
    const sampled = (name: string, help: string, read: () => number): Gauge =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect: function (this: Gauge) {
          this.set(read());
        },
      });
    sampled('vitgraph_queue_patches', 'Patches waiting for the encoder', queue.patches);
    sampled('vitgraph_queue_requests', 'Requests waiting for the encoder', queue.requests);
    collectDefaultMetrics({ register: this.registry, prefix: 'vitgraph_' });
  }

  request(status: number, seconds: number): void {
    this.requests.inc({ status: String(status) });
    this.latency.observe({ status: String(status) }, seconds);
  }

  inFlight(change: number): void {
    this.requestsInFlight.inc(change);
  }

  batch(stats: BatchStats): void {
    if (!stats.ok) {
      this.failedBatches.inc();
      return;
    }
    this.encodeSeconds.observe(stats.encodeMs / 1000);
    this.batchItems.observe(stats.items);
    this.batchPatches.observe(stats.patches);
    this.batchRequests.observe(stats.requests);
    this.tokens.inc(stats.tokens);
    if (stats.encodeMs > 0) this.tokensPerSecond.set(stats.tokens / (stats.encodeMs / 1000));
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
