#!/usr/bin/env node
// Builds the optional native addon (src/runtime/native → build/Release/vitgraph_native.node).
//
//   node scripts/build-native.mjs              build; exit non-zero when it fails
//   node scripts/build-native.mjs --optional   npm's postinstall: nothing to do when the package's
//                                             prebuilt addon loads here; else build, and a failed build
//                                             only prints why (everything keeps working on CPU via
//                                             onnxruntime-node)
//   node scripts/build-native.mjs --prebuild   npm's prepack: build (reusing an up-to-date build) and
//                                             copy it to prebuilds/<platform>/ for the tarball
//
// Needs python3, make and a C++17 compiler, plus the devDependencies node-gyp, node-addon-api and
// com.github.asus4.onnxruntime (ONNX Runtime C API headers; or set ORT_INCLUDE_DIR). ONNX Runtime
// itself is not linked: the addon opens it at run time. VITGRAPH_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'src', 'runtime', 'native');
const optional = process.argv.includes('--optional');
const prebuild = process.argv.includes('--prebuild');
const ADDON = 'vitgraph_native.node';
const built = join(dir, 'build', 'Release', ADDON);

// The prebuilds/ folder name for this machine; src/runtime/native/loader.ts's platformKey() looks for the same.
function platformKey() {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  return `linux-${process.arch}-${process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl'}`;
}
const prebuilt = join(root, 'prebuilds', platformKey(), ADDON);

/** Why `file` cannot be loaded by this node, or undefined when it loads. */
function loadProblem(file) {
  const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  return check.status === 0 ? undefined : check.stderr.trim().split('\n')[0] || `exit ${check.status}`;
}

function skip(reason) {
  console.warn(`vitgraph: native addon not built: ${reason}.`);
  console.warn('vitgraph: the CPU path (onnxruntime-node) works without it; `npm run build:native` retries.');
  process.exit(optional ? 0 : 1);
}

if (optional && existsSync(prebuilt) && loadProblem(prebuilt) === undefined) {
  // A consumer's install: the shipped binary works, so no compiler, headers or devDependency is needed.
  process.exit(0);
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

/** True when the build output is newer than every source file (prepack after `npm run build:native`). */
function upToDate() {
  if (!existsSync(built)) return false;
  const sources = readdirSync(dir).filter((f) => /\.(cc|h|gyp|cjs)$/.test(f));
  return sources.every((f) => statSync(join(dir, f)).mtimeMs <= statSync(built).mtimeMs);
}

if (!(prebuild && upToDate())) {
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    skip(result.error ? result.error.message : `node-gyp exited with ${result.status ?? result.signal} (see its output above)`);
  }
}
const problem = loadProblem(built);
if (problem) skip(`the built addon does not load: ${problem}`);
if (prebuild) {
  mkdirSync(dirname(prebuilt), { recursive: true });
  copyFileSync(built, prebuilt);
  console.log(`vitgraph: prebuilt addon for the package: ${prebuilt}`);
} else {
  console.log(`vitgraph: native addon built: ${built}`);
}
