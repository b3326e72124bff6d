// What a new user meets first on the command line: options that conflict with the model are
// refused before any work (never silently ignored), a harmless implied choice is one line, and
// progress lines appear only on a terminal.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VisionEncoder, nativeAvailable } from '../index.js';
import { byteProgress } from '../cli/progress.js';
import { readSafetensorsHeader } from '../src/weights/safetensors.js';
import { runMain } from './helpers/cli.js';
import { BIN, ENCODER_FIXTURES, ROOT, tempDir } from './helpers/files.js';

const TINY = join(ENCODER_FIXTURES, 'tiny');
const IMAGE = join(ROOT, 'fixtures', 'images', 'astronaut.png');

/** The CLI in a child process whose stderr is a pipe (not a terminal), with its own cache. */
function cli(args: string[], cache: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, VITGRAPH_CACHE: cache }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('--dtype with a .onnx or a package, and --graphs buckets with a single .onnx, are refused before any work', async (t) => {
  const dir = await tempDir(t);
  const onnx = join(dir, 'm.onnx');
  const pkg = join(dir, 'pkg');
  t.is((await runMain(['export', '--model', TINY, '--out', onnx, '-q'])).code, 0);
  t.is((await runMain(['export', '--model', TINY, '--out', pkg, '-q', '--max-patches', '256'])).code, 0);
  const out = join(dir, 'e.safetensors');
  for (const [model, extra, flag] of [
    [onnx, ['--dtype', 'int8'], '--dtype'],
    [pkg, ['--dtype', 'int8'], '--dtype'],
    [onnx, ['--graphs', 'buckets'], '--graphs'],
  ] as const) {
    const r = await runMain(['encode', IMAGE, '--model', model, '--out', out, ...extra]);
    t.is(r.code, 1, `${model} ${extra.join(' ')}`);
    t.regex(r.stderr, new RegExp(`^vitgraph encode: ${flag}: expected `));
    t.is(r.stderr.split('\n').length, 2, 'one line');
    t.false(existsSync(out), 'nothing was encoded');
  }
  // The library refuses the same, with a typed code.
  await t.throwsAsync(VisionEncoder.load(onnx, { dtype: 'int8' }), { code: 'invalid_argument', message: /dtype/ } as never);
});

test('--backend native on CPU says in one line that it runs the bucket graphs', async (t) => {
  if (!nativeAvailable().ok) return t.pass('native addon not built here');
  const dir = await tempDir(t);
  const r = await cli(['encode', IMAGE, '--backend', 'native', '--out', join(dir, 'e.safetensors')], join(dir, 'cache'));
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr.split('\n').filter((l) => l.startsWith('note: --backend native runs the padded bucket graphs')).length, 1);
  const quiet = await cli(['encode', IMAGE, '--backend', 'native', '--graphs', 'buckets', '--out', join(dir, 'e.safetensors')], join(dir, 'cache'));
  t.notRegex(quiet.stderr, /note:/, 'asked for buckets: nothing to say');
});

test('no progress lines when stderr is not a terminal: encode (first-use export), export, synth', async (t) => {
  const dir = await tempDir(t);
  const cache = join(dir, 'cache');
  const encode = await cli(['encode', IMAGE, '--out', join(dir, 'e.safetensors')], cache);
  t.is(encode.code, 0, encode.stderr);
  t.is(encode.stderr, `encoded 1 item(s), 256 tokens → ${join(dir, 'e.safetensors')}\n`);
  const exported = await cli(['export', '--model', TINY, '--out', join(dir, 'pkg')], cache);
  t.is(exported.code, 0, exported.stderr);
  t.is(exported.stderr.split('\n').filter(Boolean).length, 1, exported.stderr);
  const synth = await cli(['synth', '--preset', 'tiny', '--out', join(dir, 'synth')], cache);
  t.is(synth.code, 0, synth.stderr);
  t.is(synth.stderr.split('\n').filter(Boolean).length, 1, synth.stderr);
});

test('byteProgress draws a live line on a terminal only', (t) => {
  const writes: string[] = [];
  const stream = (isTTY: boolean) => ({ isTTY, write: (s: string) => writes.push(s) > 0 });
  const pipe = byteProgress('writing', stream(false));
  for (let i = 0; i <= 10; i++) pipe(i, 10);
  t.deepEqual(writes, []);
  const tty = byteProgress('writing', stream(true));
  tty(5, 10);
  tty(10, 10);
  t.is(writes.length, 2);
  t.true(writes[0]!.startsWith('\rwriting:  50%'));
  t.true(writes[1]!.endsWith('\n'));
});

test('help and errors speak CLI: pixel defaults per family, and an SVG error that names no API option', async (t) => {
  for (const command of ['encode', 'preprocess']) {
    const help = await runMain([command, '--help']);
    t.regex(help.stdout, /--min-pixels <n> +smallest resized image area in pixels \(default: the model's processor; 65536 for Qwen3-VL and Qwen3\.5, 3136 for Qwen2-VL and Qwen2\.5-VL\)/, command);
    t.regex(help.stdout, /12845056 for Qwen2-VL/, command);
  }
  const dir = await tempDir(t);
  const svg = join(dir, 'x.svg');
  await writeFile(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>');
  const r = await runMain(['encode', svg, '--out', join(dir, 'x.safetensors')]);
  t.is(r.code, 1);
  t.notRegex(r.stderr, /allowSvg/);
  t.regex(r.stderr, /SVG is not decoded by default.*Convert the image to PNG first\n$/);
});

test("encode's output metadata names a cached checkpoint by its content key, never by the cache's absolute path", async (t) => {
  const dir = await tempDir(t);
  const cache = join(dir, 'cache');
  const out = join(dir, 'e.safetensors');
  t.is((await cli(['encode', IMAGE, '--out', out, '-q'], cache)).code, 0);
  const { metadata } = await readSafetensorsHeader(out);
  t.regex(metadata.model ?? '', /^vitgraph-cache:[0-9a-f]{20}-float32$/);
  t.false(JSON.stringify(metadata).includes(cache));
});
