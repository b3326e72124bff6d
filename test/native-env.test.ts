// Which ONNX Runtime library the native backend opens, and how it fails: a missing file named by
// VITGRAPH_ORT_LIB or ortLibraryPath, a file that is not ORT, a second library in one process.
// Also: the process lifecycle around unclosed sessions (runs in child processes).
// Its own test file, so that this process has no ORT loaded until the tests decide which.

import anyTest from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { VitgraphError } from '../src/errors.js';
import { NativeSession, loadNativeRuntime, nativeAddonFile, nativeAvailable, resolveOrtLibrary } from '../src/runtime/native/index.js';
import { writeAffineModel } from '../scripts/gpu-check.models.js';

const addonFile = nativeAddonFile();
const test = addonFile.built ? anyTest.serial : anyTest.serial.skip;
if (!addonFile.built) console.log(`native tests skipped: the addon is not built (${addonFile.path}); run npm run build:native`);

const nativeModule = pathToFileURL(fileURLToPath(new URL('../src/runtime/native/index.js', import.meta.url))).href;

test('VITGRAPH_ORT_LIB pointing nowhere is unsupported, naming the path and the variable', async (t) => {
  const saved = process.env.VITGRAPH_ORT_LIB;
  process.env.VITGRAPH_ORT_LIB = '/nonexistent/libonnxruntime.so';
  try {
    t.deepEqual(resolveOrtLibrary(), { path: '/nonexistent/libonnxruntime.so', source: 'VITGRAPH_ORT_LIB' });
    const error = t.throws(() => loadNativeRuntime());
    t.true(error instanceof VitgraphError);
    t.is((error as VitgraphError).code, 'unsupported');
    t.regex(error!.message, /\/nonexistent\/libonnxruntime\.so/);
    t.regex(error!.message, /VITGRAPH_ORT_LIB/);
    const created = await t.throwsAsync(NativeSession.create('/nonexistent/model.onnx', { device: 'cpu' }));
    t.is((created as VitgraphError).code, 'unsupported');
    const available = nativeAvailable();
    t.false(available.ok);
    if (!available.ok) t.regex(available.reason, /\/nonexistent\/libonnxruntime\.so/);
  } finally {
    if (saved === undefined) delete process.env.VITGRAPH_ORT_LIB;
    else process.env.VITGRAPH_ORT_LIB = saved;
  }
});

test('the ortLibraryPath option wins over the environment; a non-ORT library is refused', (t) => {
  const missing = t.throws(() => loadNativeRuntime('/nonexistent/custom/libonnxruntime.so.1'));
  t.is((missing as VitgraphError).code, 'unsupported');
  t.regex(missing!.message, /\/nonexistent\/custom\/libonnxruntime\.so\.1 \(from ortLibraryPath\)/);
  const libz = ['/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib/x86_64-linux-gnu/libz.so.1'].find(existsSync);
  if (!libz) return t.log('no libz.so.1 to try as a non-ORT library');
  const notOrt = t.throws(() => loadNativeRuntime(libz));
  t.is((notOrt as VitgraphError).code, 'unsupported');
  t.regex(notOrt!.message, /OrtGetApiBase/);
});

test('one ONNX Runtime library per process', (t) => {
  const info = loadNativeRuntime();
  t.is(info.source, process.env.VITGRAPH_ORT_LIB ? 'VITGRAPH_ORT_LIB' : 'onnxruntime-node');
  const other = fileURLToPath(new URL('../../node_modules/com.github.asus4.onnxruntime/Plugins/Linux/x64/libonnxruntime.so', import.meta.url));
  if (!existsSync(other)) return t.log(`no second ORT library at ${other}`);
  const error = t.throws(() => loadNativeRuntime(other));
  t.is((error as VitgraphError).code, 'unsupported');
  t.regex(error!.message, /already loaded/);
});

test('an unclosed session neither keeps the process alive nor crashes it on exit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vitgraph-native-exit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const model = await writeAffineModel(dir, 64, 48, 7);
  const script = (ending: string): string => `
    const { NativeSession } = await import(${JSON.stringify(nativeModule)});
    const s = await NativeSession.create(${JSON.stringify(model.path)}, { device: 'cpu', threads: 1 });
    const b = await s.bind({ inputs: { x: { dtype: 'float32', shape: [512, 64] } }, outputs: { y: { dtype: 'float32', shape: [512, 48] } } });
    const { y } = await b.run({ x: new Float32Array(512 * 64).fill(1) });
    console.log('ran', y.length);
    ${ending}`;
  for (const [label, ending] of [
    ['idle session, loop drains', ''],
    ['process.exit with runs in flight', 'for (let i = 0; i < 8; i++) b.run({ x: new Float32Array(512 * 64) }); process.exit(0);'],
    ['runs in flight when the loop would drain', "for (let i = 0; i < 8; i++) b.run({ x: new Float32Array(512 * 64) }).then(() => console.log('late run'));"],
  ] as const) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(ending)], { encoding: 'utf8', timeout: 30000 });
    t.is(r.status, 0, `${label}: exit ${r.status} signal ${r.signal}\n${r.stderr}`);
    t.regex(r.stdout, /ran 24576/, label);
    if (label.startsWith('runs in flight when')) t.is(r.stdout.match(/late run/g)?.length, 8, 'pending runs keep the process alive until they settle');
  }
});
