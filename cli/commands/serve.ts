import { DTYPE_OPTION, exportDType } from './encode.js';
import { availableParallelism } from 'node:os';
import { loadBatchEncoder } from '../../index.js';
import { DEFAULT_LIMITS, serveProcess } from '../../src/serve/index.js';
import { checkPort } from '../../src/serve/port.js';
import { choice, flag, int, str, type Command } from '../args.js';
import { BACKEND_OPTIONS, backendOptions, bucketNotice } from '../backend.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'An HTTP encoder service: POST /v1/encode with cross-request batching, limits, /healthz, /readyz, /metrics.',
  options: {
    model: { type: 'string', value: '<m>', description: 'a .onnx, an exported package dir, or a Hugging Face checkpoint dir (default: the embedded tiny tower)' },
    host: { type: 'string', value: '<addr>', description: 'address to listen on (default 127.0.0.1)' },
    port: { type: 'string', value: '<n>', description: 'port (default 8080; 0 picks a free one)' },
    workers: { type: 'string', value: '<n>', description: 'processes behind the one port, each with its own runtime (default 1)' },
    ...BACKEND_OPTIONS,
    ...DTYPE_OPTION,
    graphs: { type: 'string', value: 'dynamic|buckets', description: 'for a package: the dynamic graph (CPU default) or the padded buckets' },
    'max-wait-ms': { type: 'string', value: '<ms>', description: 'an idle encoder waits this long for more requests to batch (default 0 on the dynamic graph, 2 with buckets)' },
    'max-batch-patches': { type: 'string', value: '<n>', description: 'patches per runtime call (default 4096; a larger single request runs alone)' },
    'no-batching': { type: 'boolean', description: 'one request per runtime call (the baseline batching is measured against)' },
    'max-queue-patches': { type: 'string', value: '<n>', description: 'patches allowed to wait; beyond it requests get 503 + Retry-After (default 65536)' },
    'max-body-bytes': { type: 'string', value: '<n>', description: `request body limit, 413 beyond (default ${DEFAULT_LIMITS.maxBodyBytes})` },
    'max-items': { type: 'string', value: '<n>', description: `items per request (default ${DEFAULT_LIMITS.maxItems})` },
    'max-image-pixels': { type: 'string', value: '<n>', description: `pixels per decoded image, and the largest min/max_pixels a client may ask (default ${DEFAULT_LIMITS.maxImagePixels})` },
    'request-timeout-ms': { type: 'string', value: '<ms>', description: `arrival to response; 504 beyond; also bounds receiving the body (408) (default ${DEFAULT_LIMITS.requestTimeoutMs})` },
    'max-uploads': { type: 'string', value: '<n>', description: `request bodies received at once, over all clients; 503 busy beyond (default ${DEFAULT_LIMITS.maxUploads})` },
    'shutdown-timeout-ms': { type: 'string', value: '<ms>', description: 'on SIGTERM/SIGINT, most time to finish in-flight requests (default 30000)' },
  },
  details:
    'Examples:\n' +
    '  vitgraph serve --model ./Qwen3-VL-2B-Instruct --port 8080 --threads 4\n' +
    '  curl -s --data-binary @photo.jpg -H "Content-Type: image/jpeg" http://127.0.0.1:8080/v1/encode\n' +
    'Without --model the embedded tiny random-weight tower is served (numbers mean nothing).',
  async run(args) {
    const workers = int(args, 'workers', 1) ?? 1;
    const graphs = choice(args, 'graphs', ['dynamic', 'buckets'] as const);
    const backend = backendOptions(args);
    // Workers share the machine's cores unless told otherwise.
    const threads = backend.threads ?? (workers > 1 ? Math.max(1, Math.floor(availableParallelism() / workers)) : undefined);
    const buckets = graphs === 'buckets' || backend.backend === 'native' || backend.device === 'cuda';
    const model = str(args, 'model');
    const dtype = exportDType(args);
    bucketNotice(backend, graphs, false);
    const maxBatch = int(args, 'max-batch-patches', 1);
    const limit = (name: string): number | undefined => int(args, name, 1);
    await serveProcess({
      load: () => loadBatchEncoder(model, { ...backend, ...(threads ? { threads } : {}), ...(graphs ? { graphs } : {}), ...(dtype ? { dtype } : {}), ...(buckets ? { warmup: true } : {}) }),
      workers,
      host: str(args, 'host') ?? '127.0.0.1',
      port: checkPort(int(args, 'port', 0) ?? 8080),
      batcher: {
        maxWaitMs: int(args, 'max-wait-ms', 0) ?? (buckets ? 2 : 0),
        ...(maxBatch ? { maxBatchPatches: maxBatch } : {}),
        ...(limit('max-queue-patches') ? { maxQueuePatches: limit('max-queue-patches')! } : {}),
        batching: !flag(args, 'no-batching'),
      },
      limits: {
        ...(limit('max-body-bytes') ? { maxBodyBytes: limit('max-body-bytes')! } : {}),
        ...(limit('max-items') ? { maxItems: limit('max-items')! } : {}),
        ...(limit('max-image-pixels') ? { maxImagePixels: limit('max-image-pixels')! } : {}),
        ...(limit('request-timeout-ms') ? { requestTimeoutMs: limit('request-timeout-ms')! } : {}),
        ...(limit('max-uploads') ? { maxUploads: limit('max-uploads')! } : {}),
      },
      ...(limit('shutdown-timeout-ms') ? { shutdownTimeoutMs: limit('shutdown-timeout-ms')! } : {}),
    });
  },
};
