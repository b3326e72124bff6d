// npm run demo: serves dist/web on 127.0.0.1 with http-server, adding the COOP/COEP headers that
// make the page cross-origin isolated (SharedArrayBuffer, so onnxruntime-web can use WASM threads).
//   node scripts/serve-web.mjs [--port 8080] [--root dist/web]

import httpServer from 'http-server';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** Starts the server on 127.0.0.1 (port 0: any free one); resolves to its URL and a close(). */
export async function serveWeb({ dir = join(root, 'dist/web'), port = 8080 } = {}) {
  const server = httpServer.createServer({ root: dir, cache: -1, showDir: false, headers: { ...ISOLATION_HEADERS } });
  await new Promise((done, fail) => {
    server.server.once('error', fail);
    server.listen(port, '127.0.0.1', done);
  });
  const { port: bound } = server.server.address();
  return { url: `http://127.0.0.1:${bound}/`, close: () => new Promise((done) => server.server.close(() => done(undefined))) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, root: { type: 'string' } } });
  const { url } = await serveWeb({ port: Number(values.port), ...(values.root ? { dir: resolve(values.root) } : {}) });
  console.log(`vitgraph demo: ${url} (cross-origin isolated; Ctrl-C stops)`);
}
