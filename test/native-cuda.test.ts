// Asking for CUDA where it cannot work must fail with 'unsupported' naming what is missing. The
// core library is onnxruntime-node's own (which lists the CUDA EP), opened through a symlink in a
// temp dir where the tests put stand-in provider libraries, compiled here with cc:
//   1. no libonnxruntime_providers_cuda.so next to the core library;
//   2. a provider whose dependency is missing (named, from the provider's DT_NEEDED list);
//   3. a provider that loads libcudart.so.13 — on a machine without a GPU driver: no usable device.
// Its own test file: the process must not have loaded ORT from another path first.

import anyTest, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { VitgraphError } from '../src/errors.js';
import { NativeSession, nativeAddonFile } from '../src/runtime/native/index.js';
import { writeAffineModel } from '../scripts/gpu-check.models.js';

const addonFile = nativeAddonFile();
const test = addonFile.built ? anyTest.serial : anyTest.serial.skip;
if (!addonFile.built) console.log(`native tests skipped: the addon is not built (${addonFile.path}); run npm run build:native`);
const haveCc = spawnSync('cc', ['--version']).status === 0;

let dir = '';
let core = '';
let model = '';

anyTest.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vitgraph-native-cuda-'));
  const ortNode = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  core = join(dir, 'libonnxruntime.so.1');
  await symlink(join(ortNode, 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime.so.1'), core);
  model = (await writeAffineModel(dir, 4, 3, 1)).path;
  await writeFile(join(dir, 'stub.c'), 'int vitgraph_stub(void) { return 0; }\n');
});
anyTest.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function cc(t: ExecutionContext, ...args: string[]): void {
  const r = spawnSync('cc', ['-shared', '-fPIC', join(dir, 'stub.c'), ...args], { encoding: 'utf8' });
  if (r.status !== 0) t.fail(`cc ${args.join(' ')}: ${r.stderr}`);
}

/** Builds a library whose soname is `soname` in a scratch dir, links a provider against it, removes it. */
async function providerNeeding(t: ExecutionContext, soname: string): Promise<void> {
  const scratch = join(dir, `scratch-${soname}`);
  await mkdir(scratch, { recursive: true });
  cc(t, '-o', join(scratch, soname), `-Wl,-soname,${soname}`);
  await rm(join(dir, 'libonnxruntime_providers_cuda.so'), { force: true }); // a new inode, not a rewrite
  cc(t, '-o', join(dir, 'libonnxruntime_providers_cuda.so'), '-Wl,--no-as-needed', join(scratch, soname));
  await rm(scratch, { recursive: true });
}

async function cudaError(t: ExecutionContext): Promise<VitgraphError | undefined> {
  try {
    const session = await NativeSession.create(model, { device: 'cuda', ortLibraryPath: core });
    await session.close();
    t.fail('a CUDA session opened on a stand-in provider');
    return undefined;
  } catch (error) {
    t.true(error instanceof VitgraphError, String(error));
    const e = error as VitgraphError;
    t.is(e.code, 'unsupported', e.message);
    t.regex(e.message, /GPU setup/, 'points at the install instructions');
    t.log(e.message);
    return e;
  }
}

test('no CUDA provider library next to the core library', async (t) => {
  const e = await cudaError(t);
  t.regex(e?.message ?? '', new RegExp(`${dir}/libonnxruntime_providers_cuda\\.so not found`));
});

test('a provider whose dependency is missing names the missing library', async (t) => {
  if (!haveCc) return t.log('no cc to build a stand-in provider');
  cc(t, '-o', join(dir, 'libonnxruntime_providers_shared.so'));
  await providerNeeding(t, 'libvitgraph_absent_dependency.so.1');
  const e = await cudaError(t);
  t.regex(e?.message ?? '', /libonnxruntime_providers_cuda\.so needs libvitgraph_absent_dependency\.so\.1, which cannot be loaded/);
});

test('a provider that loads the CUDA runtime, without a GPU: no usable device', async (t) => {
  if (!haveCc) return t.log('no cc to build a stand-in provider');
  if (spawnSync('nvidia-smi', ['-L']).status === 0) return t.log('this machine has a GPU: the no-device path cannot be shown');
  await providerNeeding(t, 'libcudart.so.13');
  const e = await cudaError(t);
  // Where libcudart.so.13 is installed the probe reaches cudaGetDeviceCount; elsewhere it names the library.
  t.regex(e?.message ?? '', /no usable CUDA device: cudaGetDeviceCount \(.*libcudart\.so\.13\) returned|needs libcudart\.so\.13, which cannot be loaded/);
});
