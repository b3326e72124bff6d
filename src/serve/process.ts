// Running the server as a process: one server, or `workers` node:cluster processes behind one
// port (each with its own runtime), and SIGTERM / SIGINT as a graceful, bounded stop with exit 0.

import cluster from 'node:cluster';
import { runtimeError } from '../errors.js';
import { startedByNpm, watchLauncher } from './launcher.js';
import { assertPortFree } from './port.js';
import { EncoderServer, type EncoderServerOptions } from './server.js';
import type { BatchEncoder } from './types.js';

export interface ServeProcessOptions extends EncoderServerOptions {
  /** Loads the model; called once per serving process. */
  load: () => Promise<BatchEncoder>;
  /** Processes behind one port (default 1: serve in this process). */
  workers?: number;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Serves until SIGTERM / SIGINT and resolves after a clean drain; rejects if the model (or a worker) fails to start. */
export async function serveProcess(options: ServeProcessOptions): Promise<void> {
  const workers = options.workers ?? 1;
  // Workers share the primary's port (it binds for them): the primary checks it, once.
  if (cluster.isPrimary) await assertPortFree(options.host ?? '127.0.0.1', options.port ?? 8080);
  if (workers > 1 && cluster.isPrimary) return runPrimary(workers, options);
  return runOne(options, cluster.isWorker);
}

async function runOne(options: ServeProcessOptions, worker: boolean): Promise<void> {
  const tag = worker ? `[worker ${cluster.worker!.id}] ` : '';
  const log = options.log ?? ((line: string) => process.stderr.write(`${tag}${line}\n`));
  const server = await EncoderServer.start(options.load(), { ...options, log, ...(worker ? { listenWhenReady: true } : {}) });
  await server.ready; // on failure the server has closed itself; the caller reports the error
  if (worker) process.send?.({ vitgraph: 'ready' });
  const signal = await new Promise<string>((resolve) => {
    for (const name of SIGNALS) process.once(name, () => resolve(name));
    // A worker's primary watches for it (and stops its workers); a lone server watches for itself.
    if (!worker && startedByNpm()) watchLauncher(() => resolve('the npm process that started it exited'));
  });
  log(`vitgraph serve: ${signal}: stopping`);
  // The process must end within the bound even if something keeps the event loop alive.
  const bound = (options.shutdownTimeoutMs ?? 30_000) + 5_000;
  setTimeout(() => {
    log(`vitgraph serve: still running ${bound} ms after ${signal}; exiting`);
    process.exit(1);
  }, bound).unref();
  await server.close();
  if (worker) cluster.worker!.disconnect(); // the IPC channel would keep this process alive
}

/** The primary: forks workers, replaces one that dies after it was ready, forwards stop signals. */
async function runPrimary(workers: number, options: ServeProcessOptions): Promise<void> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let stopping = false;
  let failed = false;
  let ready = 0;
  const readyWorkers = new Set<number>();
  const fork = (): void => {
    const worker = cluster.fork();
    worker.on('message', (message: unknown) => {
      if ((message as { vitgraph?: string } | null)?.vitgraph !== 'ready') return;
      readyWorkers.add(worker.id);
      if (++ready === workers) log(`vitgraph serve: ${workers} workers ready`);
    });
  };
  const done = new Promise<void>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      const wasReady = readyWorkers.delete(worker.id);
      if (!stopping) {
        if (wasReady) {
          log(`vitgraph serve: worker ${worker.id} exited (${signal ?? code}); starting a replacement`);
          fork();
          return;
        }
        log(`vitgraph serve: worker ${worker.id} failed to start (exit ${signal ?? code}); stopping`);
        failed = true;
        stop('SIGTERM');
      }
      if (code !== 0) failed = true;
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve();
    });
  });
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`vitgraph serve: ${signal}: stopping ${Object.keys(cluster.workers ?? {}).length} worker(s)`);
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(
      () => {
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      },
      (options.shutdownTimeoutMs ?? 30_000) + 10_000,
    ).unref();
  };
  for (const name of SIGNALS) process.on(name, () => stop(name));
  if (startedByNpm()) watchLauncher(() => stop('the npm process that started it exited'));
  log(`vitgraph serve: starting ${workers} workers`);
  for (let i = 0; i < workers; i++) fork();
  await done;
  if (failed) throw runtimeError('a worker failed to start or exited with an error; see its log lines above');
}
