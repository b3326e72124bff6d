// Binding comes before loading: a port that cannot be bound is reported in one line, in well under
// a second, before any model is read (a busy port found after a minute of export and warmup helps
// nobody).

import { createServer } from 'node:net';
import { VitgraphError, invalidArgument } from '../errors.js';

/** The highest TCP port. */
const MAX_PORT = 65_535;

/** A port number as `--port` takes it: an integer 0–65535 (0 picks a free port). */
export function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) throw invalidArgument('port', `an integer 0–${MAX_PORT} (0 picks a free port)`, String(port));
  return port;
}

/** A listen error (EADDRINUSE, EACCES, EADDRNOTAVAIL) as one typed line naming the address and the fix. */
export function listenError(error: unknown, host: string, port: number): unknown {
  const code = (error as { code?: string } | null)?.code;
  const details = { host, port, errno: code };
  switch (code) {
    case 'EADDRINUSE':
      return new VitgraphError('invalid_argument', `port ${port} is in use (EADDRINUSE): pass --port with a free port, or --port 0 to pick one`, details, { cause: error });
    case 'EACCES':
      return new VitgraphError('invalid_argument', `port ${port} needs privileges to bind (EACCES): pass --port 1024 or higher`, details, { cause: error });
    case 'EADDRNOTAVAIL':
      return new VitgraphError('invalid_argument', `host ${host} is not an address of this machine (EADDRNOTAVAIL): pass --host 127.0.0.1 or 0.0.0.0`, details, { cause: error });
    default:
      return error;
  }
}

/**
 * Binds `host:port` and lets go, so a port that cannot be bound fails before the model loads. The
 * window between this check and the real listen is milliseconds; a port taken inside it still
 * fails with the same message (the server maps its listen error with `listenError`).
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error) => reject(listenError(error, host, port)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
