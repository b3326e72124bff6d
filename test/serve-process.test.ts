// `vitgraph serve` as a process: SIGTERM during load finishes every accepted request and exits 0
// within a bound; --workers 2 serves one port from two processes. Real child processes on 127.0.0.1.

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT } from './helpers/files.js';
import { b64, imageBytes, postJson } from './helpers/serve.js';

let cache: string;
test.before(async () => {
  cache = await mkdtemp(join(tmpdir(), 'vitgraph-serve-proc-'));
});
test.after.always(() => rm(cache, { recursive: true, force: true }));

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stderr: () => string;
  readonly exit: Promise<number | null>;
}

/** Starts `vitgraph serve --port 0 …` and resolves once it logged `needle` (and its URL). */
async function serve(args: string[], needle: RegExp): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--threads', '1', ...args], { cwd: ROOT, env: { ...process.env, VITGRAPH_CACHE: cache }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 60_000);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      const listening = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (listening && needle.test(stderr)) {
        clearTimeout(timer);
        resolve(listening[1]!);
      }
    });
    void exit.then((code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr, exit };
}

test('SIGTERM during load: every accepted request is answered 200, new ones are refused, exit 0 within the bound', async (t) => {
  const served = await serve(['--shutdown-timeout-ms', '20000'], /ready \(warmup/);
  t.teardown(() => void served.child.kill('SIGKILL'));
  const image = b64(await imageBytes('astronaut.png'));
  // 8 requests of ~2048 patches each (upscaled): about a second of work on the tiny tower.
  let answered = 0;
  const inFlight = Array.from({ length: 8 }, () =>
    postJson(served.url, { items: [{ image }], min_pixels: 524_288, max_pixels: 524_288 }).then(
      (r) => (answered++, r.status),
      (e: Error) => e.message,
    ),
  );
  const running = async (): Promise<number> => Number(/vitgraph_requests_in_flight (\d+)/.exec(await (await fetch(`${served.url}/metrics`)).text())?.[1] ?? 0);
  // Every request received (in flight or answered), and some still running when the signal comes.
  let atSignal = await running();
  for (let i = 0; i < 500 && atSignal + answered < 8; i++) atSignal = await running();
  t.is(atSignal + answered, 8, 'all 8 requests were received before the signal');
  t.true(atSignal > 0, 'some requests were still running at the signal');
  const signalled = performance.now();
  served.child.kill('SIGTERM');
  const statuses = await Promise.all(inFlight);
  t.deepEqual(statuses, Array(8).fill(200));
  const late = await postJson(served.url, { items: [{ image }] }).then(
    (r) => r.status,
    () => 'refused',
  );
  t.true(late === 'refused' || late === 503, String(late));
  t.is(await served.exit, 0, served.stderr());
  t.true(performance.now() - signalled < 25_000);
  t.log(`${atSignal} request(s) running at SIGTERM; exit ${Math.round(performance.now() - signalled)} ms after it`);
  t.regex(served.stderr(), /SIGTERM: stopping/);
  t.regex(served.stderr(), /draining: \d+ request\(s\) in flight/);
});

test('--workers 2: two processes serve one port; SIGTERM stops both and exits 0', async (t) => {
  const served = await serve(['--workers', '2'], /2 workers ready/);
  t.teardown(() => void served.child.kill('SIGKILL'));
  const image = b64(await imageBytes('camera.png'));
  const statuses = await Promise.all(Array.from({ length: 4 }, () => postJson(served.url, { items: [{ image }], max_pixels: 70_000 }).then((r) => r.status)));
  t.deepEqual(statuses, [200, 200, 200, 200]);
  t.is((served.stderr().match(/\[worker \d\] vitgraph serve: ready/g) ?? []).length, 2);
  served.child.kill('SIGTERM');
  t.is(await served.exit, 0, served.stderr());
});
