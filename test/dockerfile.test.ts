// The Dockerfile, checked without a Docker engine: its instructions parsed, every path it copies
// from the build context present (and not excluded by .dockerignore), every path it copies out of
// the build stage produced by this repository's build, the tsconfig's sources all copied, the
// runtime stage unprivileged under an init; then its CMD run as a process here and its HEALTHCHECK
// command run against it.

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeAvailable } from '../index.js';
import { ROOT } from './helpers/files.js';

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

/** Instructions with line continuations joined and comments dropped; `stage` counts FROMs (0-based). */
function parse(text: string): Instruction[] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  let stage = -1;
  return joined.split('\n').flatMap((line) => {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trim().startsWith('#')) return [];
    if (m[1] === 'FROM') stage++;
    return [{ op: m[1]!, args: m[2]!.trim(), stage }];
  });
}

const DOCKERFILE = parse(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const IGNORED = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const execForm = (args: string): string[] => JSON.parse(args.replace(/^.*?(?=\[)/, '')) as string[];
const lastStage = Math.max(...DOCKERFILE.map((i) => i.stage));
const runtime = DOCKERFILE.filter((i) => i.stage === lastStage);

test('multi-stage; the runtime stage runs as a non-root user under tini, with a HEALTHCHECK on /readyz', (t) => {
  t.true(lastStage >= 1, 'a build stage and a runtime stage');
  const user = runtime.filter((i) => i.op === 'USER').at(-1);
  t.truthy(user);
  t.false(/^(root|0)(:|$)/.test(user!.args), `USER ${user!.args}`);
  t.deepEqual(execForm(runtime.find((i) => i.op === 'ENTRYPOINT')!.args).slice(0, 2), ['/usr/bin/tini', '--']);
  t.true(
    runtime.some((i) => i.op === 'RUN' && /apt-get install .*\btini\b/.test(i.args)),
    'tini is installed where it runs',
  );
  const health = runtime.find((i) => i.op === 'HEALTHCHECK');
  t.regex(health?.args ?? '', /\/readyz/);
  t.false(
    runtime.some((i) => (i.op === 'CMD' || i.op === 'ENTRYPOINT') && /\bnpx?\b/.test(i.args)),
    'node runs the server itself, not npm/npx',
  );
});

test('every COPY source from the build context exists and is not excluded by .dockerignore; the build copies every tsconfig source', (t) => {
  const copied: string[] = [];
  for (const copy of DOCKERFILE.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
    const parts = copy.args.split(/\s+/);
    for (const source of parts.slice(0, -1)) {
      t.true(existsSync(join(ROOT, source)), `COPY ${source}: missing`);
      t.false(
        IGNORED.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)),
        `COPY ${source}: excluded by .dockerignore`,
      );
      copied.push(source);
    }
  }
  const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
  for (const pattern of tsconfig.include) t.true(copied.includes(pattern.split('/')[0]!), `tsconfig includes ${pattern}, which the build stage does not copy`);
  for (const file of ['package.json', 'package-lock.json']) t.true(copied.includes(file), file);
  t.true(IGNORED.includes('node_modules') && IGNORED.includes('dist'), 'the host node_modules and dist stay out of the image');
});

test('every path copied out of the build stage is what this repository builds', (t) => {
  for (const copy of DOCKERFILE.filter((i) => i.op === 'COPY' && i.args.startsWith('--from'))) {
    const source = copy.args.split(/\s+/)[1]!.replace(/^\/app\/?/, '');
    if (source.endsWith('.node') && !nativeAvailable().ok) {
      t.log(`${source}: the native addon is not built on this machine (the image's build stage installs a compiler)`);
      continue;
    }
    t.true(existsSync(join(ROOT, source)), `COPY --from=build /app/${source}: not produced by npm ci here`);
  }
  const cmd = execForm(DOCKERFILE.filter((i) => i.op === 'CMD').at(-1)!.args);
  t.is(cmd[0], 'node');
  t.true(existsSync(join(ROOT, cmd[1]!)), `CMD runs ${cmd[1]}`);
});

test('the CMD serves and the HEALTHCHECK command passes against it once ready', async (t) => {
  const cmd = execForm(DOCKERFILE.filter((i) => i.op === 'CMD').at(-1)!.args);
  // Here, on loopback and a free port instead of 0.0.0.0:8080.
  const args = cmd.slice(1).map((a, i, all) => (all[i - 1] === '--host' ? '127.0.0.1' : all[i - 1] === '--port' ? '0' : a));
  const child = spawn(process.execPath, [...args, '--threads', '1'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const deadline = performance.now() + 60_000;
  while (!/ready \(warmup/.test(stderr) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
  t.truthy(port, stderr);
  const health = execForm(runtime.find((i) => i.op === 'HEALTHCHECK')!.args);
  t.is(health[0], 'node');
  const probe = spawnSync(
    process.execPath,
    health.slice(1).map((a) => a.replace(':8080/', `:${port}/`)),
    { timeout: 10_000 },
  );
  t.is(probe.status, 0, 'HEALTHCHECK passes on a ready server');
  const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM'); // what tini forwards on `docker stop`
  t.is(await exit, 0, stderr);
});
