#!/usr/bin/env node
// Builds the optional native addon (src/runtime/native → build/Release/vitgraph_native.node).
//
//   node scripts/build-native.mjs              build; exit non-zero when it fails
//   node scripts/build-native.mjs --optional   for npm's install hook: a failed build only prints why,
//                                             and everything keeps working on CPU via onnxruntime-node
//
// Needs python3, make and a C++17 compiler, plus the devDependencies node-gyp, node-addon-api and
// com.github.asus4.onnxruntime (ONNX Runtime C API headers; or set ORT_INCLUDE_DIR). ONNX Runtime
// itself is not linked: the addon opens it at run time. VITGRAPH_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'src', 'runtime', 'native');
const optional = process.argv.includes('--optional');

function skip(reason) {
  console.warn(`vitgraph: native addon not built: ${reason}.`);
  console.warn('vitgraph: the CPU path (onnxruntime-node) works without it; `npm run build:native` retries.');
  process.exit(optional ? 0 : 1);
}

if (process.env.VITGRAPH_SKIP_NATIVE) {
  console.warn('vitgraph: VITGRAPH_SKIP_NATIVE is set, native addon not built.');
  process.exit(0);
}
if (process.platform !== 'linux') skip(`the native backend supports Linux only (this is ${process.platform})`);

// npm hands lifecycle scripts its own node-gyp; otherwise use the devDependency.
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    skip('node-gyp is not installed (it is a devDependency: npm install)');
  }
}

const args = [gyp, 'rebuild', '--directory', dir];
// Headers installed with node itself (distribution packages) spare node-gyp a download,
// which offline machines cannot make.
const prefix = resolve(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) {
  args.push(`--nodedir=${prefix}`);
}

const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  skip(result.error ? result.error.message : `node-gyp exited with ${result.status ?? result.signal} (see its output above)`);
}
const addon = join(dir, 'build', 'Release', 'vitgraph_native.node');
const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { encoding: 'utf8' });
if (check.status !== 0) skip(`the built addon does not load: ${check.stderr.trim()}`);
console.log(`vitgraph: native addon built: ${addon}`);
