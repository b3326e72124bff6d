// ONNX Runtime ≥ 1.30 writes a device ID and an event database under
// ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and uploads them. vitgraph turns that off: a run
// with a fresh HOME (and no ORT_DISABLE_TELEMETRY of the caller's) creates no such folder, on
// onnxruntime-node, on the native addon and in `serve`; VITGRAPH_ORT_TELEMETRY=1 opts back in.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nativeAvailable } from '../index.js';
import { BIN, ROOT, tempDir } from './helpers/files.js';

const TELEMETRY_DIR = join('.cache', 'Microsoft', 'DeveloperTools', '.onnxruntime');

/** The CLI with HOME = `home` and the caller's telemetry settings removed. */
function cli(home: string, args: string[], extra: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), ...extra };
  delete env.ORT_DISABLE_TELEMETRY;
  if (!extra.VITGRAPH_ORT_TELEMETRY) delete env.VITGRAPH_ORT_TELEMETRY;
  // ONNX Runtime records nothing when CI is set (as in CI runs): the opted-in control runs as a user's shell would.
  else delete env.CI;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const encodeArgs = (home: string): string[] => ['encode', 'fixtures/images/astronaut.png', '--out', join(home, 'e.safetensors'), '-q'];

test('encode (onnxruntime-node) with a fresh HOME creates no ONNX Runtime telemetry files', async (t) => {
  const home = await tempDir(t);
  const r = await cli(home, encodeArgs(home));
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(join(home, '.cache', 'vitgraph')), 'the run used this HOME');
  t.false(existsSync(join(home, TELEMETRY_DIR)));
});

test('encode on the native addon creates no ONNX Runtime telemetry files', async (t) => {
  if (!nativeAvailable().ok) return t.pass('native addon not built here');
  const home = await tempDir(t);
  const r = await cli(home, [...encodeArgs(home), '--backend', 'native']);
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(join(home, TELEMETRY_DIR)));
});

test('serve, answering a request, creates no ONNX Runtime telemetry files', async (t) => {
  const home = await tempDir(t);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache') };
  delete env.ORT_DISABLE_TELEMETRY;
  delete env.VITGRAPH_ORT_TELEMETRY;
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--threads', '1'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const deadline = performance.now() + 60_000;
  while (!/ready \(warmup/.test(stderr) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const url = /listening on (http:\/\/[\d.:]+)/.exec(stderr)?.[1];
  t.truthy(url, stderr);
  const image = await readFile(join(ROOT, 'fixtures', 'images', 'astronaut.png'));
  const response = await fetch(`${url}/v1/encode?max_pixels=70000`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: image });
  t.is(response.status, 200);
  const exit = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exit;
  t.false(existsSync(join(home, TELEMETRY_DIR)));
});

test('VITGRAPH_ORT_TELEMETRY=1 leaves ONNX Runtime as it ships (the check above can fail)', async (t) => {
  const home = await tempDir(t);
  const r = await cli(home, encodeArgs(home), { VITGRAPH_ORT_TELEMETRY: '1' });
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(join(home, TELEMETRY_DIR)));
});
