// `vitgraph serve` starting and stopping as users start it: a busy port fails in one line before
// the model loads, a bad --port is a usage error, and a server started through npx / npm exec stops
// (drains and exits) when that npm process is killed, leaving no orphan holding the port.

import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runBin } from './helpers/cli.js';
import { ROOT, tempDir } from './helpers/files.js';

test('a busy port fails in under 2 s with one line, before the model loads; --port 99999 is a usage error', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const port = (holder.address() as AddressInfo).port;
  const start = performance.now();
  const busy = await runBin(['serve', '--port', String(port)], { timeoutMs: 20_000 });
  const ms = performance.now() - start;
  t.log(`busy port refused in ${Math.round(ms)} ms`);
  t.is(busy.code, 1);
  t.true(ms < 2_000, `${Math.round(ms)} ms`);
  t.is(busy.stderr, `vitgraph serve: port ${port} is in use (EADDRINUSE): pass --port with a free port, or --port 0 to pick one\n`);
  const bad = await runBin(['serve', '--port', '99999'], { timeoutMs: 20_000 });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^vitgraph serve: --port: expected an integer 0–65535 \(0 picks a free port\), got "99999"\n$/);
});

/** A scratch app where `vitgraph` is an installed dependency (this checkout), as a user's app has it. */
async function app(dir: string): Promise<string> {
  await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true });
  await symlink(ROOT, join(dir, 'node_modules', 'vitgraph'));
  await symlink(join('..', 'vitgraph', 'dist', 'cli', 'main.js'), join(dir, 'node_modules', '.bin', 'vitgraph'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  return dir;
}

const alive = (group: number): boolean => {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
};

for (const launcher of [
  ['npx', 'vitgraph'],
  ['npm', 'exec', '--', 'vitgraph'],
]) {
  test.serial(`SIGTERM to \`${launcher.join(' ')} serve\` leaves no server running within 10 s`, async (t) => {
    const dir = await app(await tempDir(t));
    // Its own process group, so the test can see every process npm started and clean up after a failure.
    const npm = spawn(launcher[0]!, [...launcher.slice(1), 'serve', '--port', '0', '--threads', '1'], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, HOME: dir, VITGRAPH_CACHE: join(dir, 'cache'), npm_config_offline: 'true', npm_config_update_notifier: 'false' },
    });
    t.teardown(() => alive(npm.pid!) && process.kill(-npm.pid!, 'SIGKILL'));
    let stderr = '';
    npm.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const deadline = performance.now() + 60_000;
    while (!/ready \(warmup/.test(stderr) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.regex(stderr, /ready \(warmup/, stderr);
    const url = /listening on (http:\/\/[\d.:]+)/.exec(stderr)![1]!;
    t.is((await fetch(`${url}/readyz`)).status, 200);
    const killed = performance.now();
    process.kill(npm.pid!, 'SIGTERM'); // npm alone, as a container runtime or a terminal would
    while (alive(npm.pid!) && performance.now() - killed < 10_000) await new Promise((r) => setTimeout(r, 50));
    const ms = performance.now() - killed;
    t.log(`no process left ${Math.round(ms)} ms after SIGTERM`);
    t.false(alive(npm.pid!), `processes still running 10 s after SIGTERM:\n${stderr}`);
    await t.throwsAsync(fetch(`${url}/healthz`), undefined, 'the port is released');
    t.regex(stderr, /the npm process that started it exited: stopping/);
  });
}
