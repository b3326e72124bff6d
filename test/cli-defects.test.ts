// One test per CLI defect of issue 8, mostly in-process (main() with captured output, command
// functions), with a few real processes where the process is the point (gpu-check.sh --help).

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCommandArgs } from '../cli/args.js';
import { encodeCommand } from '../cli/commands/encode.js';
import { visualInputs } from '../cli/options.js';
import { runCommand } from '../cli/commands/run.js';
import { synthCommand } from '../cli/commands/synth.js';
import { cliMessage } from '../cli/hints.js';
import { itemProgress } from '../cli/progress.js';
import { exportModel, synthCheckpoint } from '../index.js';
import { VisionEncoder, VitgraphError } from '../index.js';
import { invalidArgument, unsupported } from '../src/errors.js';
import { readSafetensors } from '../src/weights/index.js';
import { runMain } from './helpers/cli.js';
import { ROOT, loadGolden, tempDir } from './helpers/files.js';

const lines = (s: string): string[] => s.split('\n').filter((l) => l.length > 0);
const IMAGES = join(ROOT, 'fixtures', 'images');

test.serial('encode --video a,b,c img.jpg keeps command-line order', (t) => {
  const args = parseCommandArgs(encodeCommand, ['--video', 'a.png,b.png', 'img.jpg', '--out', 'x.safetensors', '--video', 'c.png,d.png', 'last.png']);
  t.deepEqual(visualInputs(args), [{ frames: ['a.png', 'b.png'] }, 'img.jpg', { frames: ['c.png', 'd.png'] }, 'last.png']);
});

test.serial('encode writes items in command-line order (video before image)', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'e.safetensors');
  const frames = `${join(IMAGES, 'camera.png')},${join(IMAGES, 'camera.png')}`;
  const r = await runMain(['encode', '--video', frames, join(IMAGES, 'rocket.jpg'), '--out', out, '--json', '-q']);
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { items: { kind: string }[] };
  t.deepEqual(
    summary.items.map((i) => i.kind),
    ['video', 'image'],
  );
  t.is(r.stderr, '', '-q: nothing on stderr');
  const grid = (await readSafetensors(out)).get('grid_thw')!.data as BigInt64Array;
  t.is(grid[0], 1n, 'first row is the 2-frame video: t = 1');
});

test.serial('encode progress: silent before 1 s, then done/total, elapsed and ETA on a terminal; nothing when not a TTY or quiet', (t) => {
  let clock = 0;
  const written: string[] = [];
  const tty = { isTTY: true, write: (s: string) => written.push(s) > 0 };
  const progress = itemProgress('encoding', 5, { stream: tty, now: () => clock, intervalMs: 60_000 });
  clock = 500;
  progress.update(1);
  t.deepEqual(written, [], 'nothing before 1 s');
  clock = 2000;
  progress.tick();
  t.regex(written.at(-1) ?? '', /encoding: 1\/5 items, 2\.0 s elapsed, ETA 8\.0 s/);
  progress.update(5);
  progress.stop();
  t.is(written.at(-1), '\n', 'the line is ended');

  for (const options of [{ stream: { isTTY: false, write: (s: string) => written.push(s) > 0 } }, { stream: tty, quiet: true }]) {
    written.length = 0;
    const quiet = itemProgress('encoding', 2, { ...options, now: () => clock, intervalMs: 60_000 });
    clock += 5000;
    quiet.update(1);
    quiet.stop();
    t.deepEqual(written, []);
  }
});

test.serial('--device cuda without a usable GPU fails before exporting the checkpoint', async (t) => {
  const dir = await tempDir(t);
  const cache = join(dir, 'cache');
  const previous = process.env.VITGRAPH_CACHE;
  process.env.VITGRAPH_CACHE = cache;
  try {
    const error = await t.throwsAsync(VisionEncoder.load(join(ROOT, 'fixtures', 'encoder', 'tiny'), { device: 'cuda' }), { instanceOf: VitgraphError });
    if (error?.code !== 'unsupported') t.log(`a usable CUDA device here? ${error?.message}`);
    t.is(error?.code, 'unsupported', error?.message);
    t.regex(error?.message ?? '', /CUDA|cuda/);
    t.log(error?.message);
  } finally {
    if (previous === undefined) delete process.env.VITGRAPH_CACHE;
    else process.env.VITGRAPH_CACHE = previous;
  }
  t.deepEqual(await readdir(cache).catch(() => []), [], 'nothing exported');
});

test.serial('inspect <package dir> summarizes the manifest and each graph', async (t) => {
  const dir = await tempDir(t);
  const pkg = join(dir, 'pkg');
  await exportModel({ model: (await loadGolden('tiny')).dir, out: pkg, maxPatches: [64, 256] });
  const r = await runMain(['inspect', pkg]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^package: /);
  t.regex(r.stdout, /model: qwen3-vl {3}dtype: float32/);
  t.regex(r.stdout, /== dynamic\.onnx: dynamic/);
  t.regex(r.stdout, /== padded-64\.onnx: padded bucket, 64 patches, 1 items/);
  t.regex(r.stdout, /== padded-256\.onnx: padded bucket, 256 patches/);
  const json = await runMain(['inspect', pkg, '--json']);
  t.is((JSON.parse(json.stdout) as { graphs: unknown[] }).graphs.length, 3);
});

test.serial('hints name CLI flags in the CLI and option keys in the API', async (t) => {
  const dir = await tempDir(t);
  await synthCheckpoint(dir, 'tiny');
  const api = await t.throwsAsync(synthCheckpoint(dir, 'tiny'), { instanceOf: VitgraphError });
  t.regex(api?.message ?? '', /Pass overwrite: true to replace them$/);
  const cli = await runMain(['synth', '--preset', 'tiny', '--out', dir]);
  t.is(cli.code, 1);
  t.regex(cli.stderr, /Pass --force to replace them\n$/);
  t.notRegex(cli.stderr, /overwrite/);

  const existing = join(dir, 'taken.onnx');
  await exportModel({ model: dir, out: existing }); // replaceable with --force: vitgraph wrote it
  const exported = await runMain(['export', '--model', dir, '--out', existing]);
  t.deepEqual(lines(exported.stderr), [`vitgraph export: --out: expected a file that does not exist yet, got ${JSON.stringify(existing)}. Pass --force to replace it, or choose another path`]);

  const maxPixels = invalidArgument('maxPixels', 'a number ≥ 1024', 3);
  t.is(maxPixels.message, 'maxPixels: expected a number ≥ 1024, got 3');
  t.is(cliMessage(maxPixels, encodeCommand), '--max-pixels: expected a number ≥ 1024, got 3');
  t.is(
    cliMessage(invalidArgument('out', 'a new file', 'x', { fixes: [{ option: 'overwrite', action: 'pass' }], then: 'to replace it' }), synthCommand),
    '--out: expected a new file, got "x". Pass --force to replace it',
  );
});

test.serial('run does not suggest options it lacks', (t) => {
  const oversize = unsupported('an item of 9000 patches is larger than the largest bucket (4096 patches)', {
    fixes: [{ option: 'maxPixels', action: 'lower' }],
    otherwise: 'export a package with a larger bucket',
  });
  t.regex(oversize.message, /Lower maxPixels, or export a package with a larger bucket$/);
  t.regex(cliMessage(oversize, encodeCommand), /Lower --max-pixels, or export a package with a larger bucket$/);
  const forRun = cliMessage(oversize, runCommand);
  t.regex(forRun, /\. Export a package with a larger bucket$/);
  t.notRegex(forRun, /pixels/i);
});

test.serial('an unknown flag prints one clean line, no nested quoting', async (t) => {
  const r = await runMain(['encode', '--bogus', 'x.png']);
  t.is(r.code, 1);
  t.deepEqual(lines(r.stderr), ['vitgraph encode: unknown option --bogus. See vitgraph encode --help']);
  const missingValue = await runMain(['encode', 'x.png', '--out']);
  t.deepEqual(lines(missingValue.stderr), ['vitgraph encode: --out: expected a value, got nothing. See vitgraph encode --help']);
});

test.serial("vitgraph help <command> shows that command's help", async (t) => {
  const r = await runMain(['help', 'encode']);
  t.is(r.code, 0);
  t.regex(r.stdout, /^Usage: vitgraph encode <image…> \[options\]/);
  t.regex(r.stdout, /--video/);
  const unknown = await runMain(['help', 'frobnicate']);
  t.is(unknown.code, 2);
});

test.serial('bench states the graph, patches and threads it timed', async (t) => {
  const golden = await loadGolden('tiny');
  const dir = await tempDir(t);
  const onnx = join(dir, 'tiny.onnx');
  await exportModel({ model: golden.dir, out: onnx });
  const r = await runMain(['bench', '--onnx', onnx, '--inputs', golden.io, '--runs', '1', '--warmup', '0', '--threads', '1']);
  t.is(r.code, 0, r.stderr);
  const rows = golden.pixelValues.data.length / 1536;
  t.regex(r.stdout, new RegExp(`^timed: .*tiny\\.onnx, the \\.onnx file; ${rows} patches in ${golden.grid.length} item\\(s\\); 1 thread\\(s\\); ort-node on cpu\\n`));
  const json = await runMain(['bench', '--onnx', onnx, '--inputs', golden.io, '--runs', '1', '--warmup', '0', '--json']);
  const parsed = JSON.parse(json.stdout) as { patches: number; threads: unknown; graph: string };
  t.is(parsed.patches, rows);
  t.is(parsed.threads, 'default');
});

test.serial('bash scripts/gpu-check.sh --help prints help and runs no check', (t) => {
  const r = spawnSync('bash', ['scripts/gpu-check.sh', '--help'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, OUT: join(ROOT, 'gpu-check-out-help-test') } });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /one-burst device check/);
  t.notRegex(r.stdout, /== vitgraph gpu-check/, 'the check did not start');
  t.false(spawnSync('test', ['-e', join(ROOT, 'gpu-check-out-help-test')]).status === 0, 'no output folder was made');
});
