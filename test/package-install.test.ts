// vitgraph as a dependency, the way a user gets it: `npm pack` this repo, install the tarball into a
// fresh app with ONNXRUNTIME_NODE_INSTALL=skip, type-check a consumer file under `strict` without
// skipLibCheck, run it on astronaut.png with the embedded model, and compare the native addon
// (the prebuilt binary in the tarball) with onnxruntime-node.
//
// `npm test` has just built dist/, so the pack runs the prepack's other half only (the prebuilt
// addon: scripts/build-native.mjs --prebuild, which reuses an up-to-date build) and then
// `npm pack --ignore-scripts`, rather than rebuilding dist/ while other test files read it.
// The install uses npm's cache (--offline, then --prefer-offline for the package metadata); the
// tests skip, saying so, only when npm can install neither way (no cache and no registry).

import anyTest from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/files.js';

const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const IMAGE = join(ROOT, 'fixtures', 'images', 'astronaut.png');
/** Native CPU run vs onnxruntime-node run of the same bucket graph. */
const NATIVE_ATOL = 1e-5;

interface Step {
  ok: boolean;
  stdout: string;
  output: string;
}

function sh(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Step {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000 });
  return { ok: r.status === 0, stdout: r.stdout ?? '', output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

const work = await mkdtemp(join(tmpdir(), 'vitgraph-pkg-'));
const app = join(work, 'app');

/** Packs the repo into `work`; returns the tarball's path and its file list. */
function pack(): { tgz: string; files: string[] } | { error: string } {
  const prebuild = sh(process.execPath, ['scripts/build-native.mjs', '--prebuild'], ROOT);
  if (!prebuild.ok) return { error: `prebuilt addon: ${prebuild.output}` };
  const packed = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
  if (!packed.ok) return { error: `npm pack: ${packed.output}` };
  const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  return { tgz: join(work, info[0]!.filename), files: info[0]!.files.map((f) => f.path) };
}

/** Installs the tarball (+ @types/node for the consumer's tsc) into a fresh app, from npm's cache. */
async function install(tgz: string): Promise<{ ok: true; output: string } | { ok: false; offline: boolean; output: string }> {
  await mkdir(app, { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const args = ['install', '--no-audit', '--no-fund', tgz, '@types/node@20'];
  const env = { ONNXRUNTIME_NODE_INSTALL: 'skip' };
  const offline = sh('npm', [...args, '--offline'], app, env);
  if (offline.ok) return { ok: true, output: offline.output };
  const preferOffline = sh('npm', [...args, '--prefer-offline'], app, env);
  if (preferOffline.ok) return { ok: true, output: preferOffline.output };
  const unreachable = /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|network/i.test(preferOffline.output);
  return { ok: false, offline: unreachable, output: preferOffline.output };
}

const packed = pack();
const installed = 'tgz' in packed ? await install(packed.tgz) : undefined;
const cannotInstall = installed && !installed.ok && installed.offline;
if (cannotInstall) {
  console.log('package-install tests skipped: npm can install the tarball neither from its cache (--offline) nor from a registry (--prefer-offline); CI has the registry');
}
const test = cannotInstall ? anyTest.serial.skip : anyTest.serial;

anyTest.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

anyTest.serial('the tarball holds the prebuilt addon and the embedded tower, no sourcemaps, no goldens, no tests', (t) => {
  if ('error' in packed) return t.fail(packed.error);
  t.true(packed.files.includes('prebuilds/linux-x64-glibc/vitgraph_native.node'), 'prebuilt addon');
  t.true(packed.files.includes('fixtures/encoder/tiny/model.safetensors'), 'embedded model weights');
  t.deepEqual(
    packed.files.filter((f) => f.endsWith('.map')),
    [],
    'no sourcemaps (their sources are not shipped)',
  );
  t.deepEqual(
    packed.files.filter((f) => /io\.safetensors$|^dist\/test\/|^test\//.test(f)),
    [],
    'no goldens or tests',
  );
});

test('the consumer install prints no EBADENGINE, resolves the tested onnxruntime-node, and npm pack builds once', async (t) => {
  if (!installed?.ok) return t.fail(`npm install of the tarball failed:\n${installed?.output}`);
  t.notRegex(installed.output, /EBADENGINE|Unknown (project|user) config/, installed.output);
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; engines: { node: string }; scripts: Record<string, string> };
  const versionIn = async (name: string): Promise<string> => (JSON.parse(await readFile(join(app, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  t.is(manifest.dependencies['onnxruntime-node'], '1.30.0', 'pinned: the version the native addon and the tests run against');
  t.is(await versionIn('onnxruntime-node'), '1.30.0');
  // Every installed package supports the Node versions vitgraph claims (cookie 2 wants node >= 22).
  t.is(manifest.engines.node, '>=20');
  t.regex(await versionIn('cookie'), /^1\./);
  // prepare builds dist/ (npm runs it for pack too); prepack only adds the prebuilt addon.
  t.regex(manifest.scripts.prepare!, /npm run build/);
  t.notRegex(manifest.scripts.prepack!, /npm run build|\btsc\b/);
});

const CONSUMER = `import { VisionEncoder, nativeAvailable, type EncodeResult } from 'vitgraph';

const image = process.argv[2]!;
const native = nativeAvailable();
if (!native.ok) throw new Error(native.reason);
// The native backend binds static shapes, so both runs use the same padded bucket graph.
const ortNode = await VisionEncoder.load(undefined, { graphs: 'buckets', threads: 1 });
const reference: EncodeResult = await ortNode.encode([image]);
await ortNode.close();
const nativeCpu = await VisionEncoder.load(undefined, { backend: 'native', device: 'cpu', threads: 1 });
const result: EncodeResult = await nativeCpu.encode([image]);
await nativeCpu.close();

let maxDiff = 0;
const pairs: [Float32Array, Float32Array][] = [
  [result.outputs.image_embeds!.data, reference.outputs.image_embeds!.data],
  [result.outputs.deepstack_embeds!.data, reference.outputs.deepstack_embeds!.data],
];
for (const [a, b] of pairs) {
  if (a.length !== b.length) throw new Error(\`lengths differ: \${a.length} vs \${b.length}\`);
  a.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - b[i]!))));
}
console.log(JSON.stringify({ addon: native.addon.source, shape: result.outputs.image_embeds!.shape, grid: result.items[0]?.gridThw, maxDiff }));
`;

const TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], rootDir: 'src', outDir: 'out' },
  include: ['src'],
};

test('a strict consumer type-checks without skipLibCheck, and the installed package encodes astronaut.png natively = ort-node', async (t) => {
  if ('error' in packed) return t.fail(packed.error);
  if (!installed?.ok) return t.fail(`npm install of the tarball failed:\n${installed?.output}`);
  t.deepEqual(await readdir(join(app, 'node_modules', 'vitgraph', 'prebuilds', 'linux-x64-glibc')), ['vitgraph_native.node']);
  t.false((await readdir(join(app, 'node_modules', 'vitgraph', 'src', 'runtime', 'native'))).includes('build'), 'postinstall built nothing: the prebuilt loads');
  await mkdir(join(app, 'src'), { recursive: true });
  await writeFile(join(app, 'src', 'main.ts'), CONSUMER);
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG));

  const check = sh(process.execPath, [TSC, '-p', '.', '--noEmit'], app);
  t.true(check.ok, `tsc --noEmit (strict, no skipLibCheck):\n${check.output}`);
  t.notRegex(check.output, /onnx-proto|protobufjs|Long/);
  const emit = sh(process.execPath, [TSC, '-p', '.'], app);
  t.true(emit.ok, emit.output);

  const run = sh(process.execPath, ['out/main.js', IMAGE], app, { VITGRAPH_CACHE: join(work, 'cache') });
  t.true(run.ok, run.output);
  const summary = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as { addon: string; shape: number[]; grid: number[]; maxDiff: number };
  t.is(summary.addon, 'prebuilt');
  t.deepEqual(summary.grid, [1, 32, 32], 'astronaut.png 512² → 32×32 patches');
  t.deepEqual(summary.shape, [256, 80], 'tiny tower: 1024 patches / 4 tokens, out_hidden_size 80');
  t.true(summary.maxDiff <= NATIVE_ATOL, `native CPU vs ort-node max |Δ| ${summary.maxDiff} > ${NATIVE_ATOL}`);
  t.log(`native vs ort-node max |Δ| = ${summary.maxDiff}`);
});
