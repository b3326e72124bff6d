// Loading the native addon: the prebuilt binary shipped in the package, a local source build, or
// $VITGRAPH_NATIVE_ADDON; and loading ONNX Runtime into it (by default the very file
// onnxruntime-node ships, so one ORT lives in the process; else `ortLibraryPath` or $VITGRAPH_ORT_LIB).

import '../telemetry.js'; // first: before the addon opens ONNX Runtime
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { unsupported } from '../../errors.js';
import { fromAddon, type Addon, type NativeRuntimeInfo } from './surface.js';

// ---------------------------------------------------------------------------------------------
// Loading

const require = createRequire(import.meta.url);
const ADDON_NAME = 'vitgraph_native.node';
const SOURCE_BUILD = 'src/runtime/native/build/Release';
const BUILD_HINT = 'Build it from source with `npm run build:native` (needs python3, make, g++, node-addon-api, node-gyp and the ONNX Runtime ' + 'C API headers: see README "Native addon")';
export const GPU_HINT =
  'See README "GPU setup": for CUDA 12, `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` puts the CUDA ' +
  "provider next to onnxruntime-node's library; for CUDA 13, set VITGRAPH_ORT_LIB to a core library with a matching " +
  'libonnxruntime_providers_cuda.so beside it';

/** Where a native addon file came from: $VITGRAPH_NATIVE_ADDON, the package's prebuilt binary, or a local source build. */
export type NativeAddonSource = 'VITGRAPH_NATIVE_ADDON' | 'prebuilt' | 'source build';

let addonState: { addon: Addon; file: NativeAddonFile } | { error: string } | undefined;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
}

/** The prebuilds/ folder name for this machine, e.g. linux-x64-glibc (scripts/build-native.mjs names it the same way). */
function platformKey(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `linux-${process.arch}-${header?.glibcVersionRuntime ? 'glibc' : 'musl'}`;
}

export interface NativeAddonFile {
  path: string;
  source: NativeAddonSource;
  built: boolean;
}

/**
 * The addon files to try, in order: $VITGRAPH_NATIVE_ADDON alone when set; else the prebuilt
 * binary shipped in the package (prebuilds/<platform>/), then the node-gyp source build.
 */
export function nativeAddonCandidates(): NativeAddonFile[] {
  const file = (path: string, source: NativeAddonSource): NativeAddonFile => ({ path, source, built: existsSync(path) });
  const override = process.env.VITGRAPH_NATIVE_ADDON;
  if (override) return [file(override, 'VITGRAPH_NATIVE_ADDON')];
  const root = packageRoot();
  return [file(join(root, 'prebuilds', platformKey(), ADDON_NAME), 'prebuilt'), file(join(root, SOURCE_BUILD, ADDON_NAME), 'source build')];
}

/** The addon file the loader uses first: the first candidate that exists, else the last one looked for. */
export function nativeAddonFile(): NativeAddonFile {
  const candidates = nativeAddonCandidates();
  return candidates.find((c) => c.built) ?? candidates[candidates.length - 1]!;
}

function loadAddon(): { addon: Addon; file: NativeAddonFile } | { error: string } {
  if (addonState) return addonState;
  const candidates = nativeAddonCandidates();
  const failures: string[] = [];
  if (process.platform !== 'linux') {
    addonState = { error: `the vitgraph native addon supports Linux only (this is ${process.platform})` };
    return addonState;
  }
  for (const file of candidates.filter((c) => c.built)) {
    try {
      addonState = { addon: require(file.path) as Addon, file };
      return addonState;
    } catch (error) {
      failures.push(`the ${file.source} addon at ${file.path} cannot be loaded: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  addonState = {
    error: failures.length > 0 ? failures.join('; ') : `no vitgraph native addon for ${platformKey()} (looked for ${candidates.map((c) => c.path).join(', ')}). ${BUILD_HINT}`,
  };
  return addonState;
}

export function loaded(): { addon: Addon; file: NativeAddonFile } {
  const state = loadAddon();
  if ('error' in state) throw unsupported(`native backend: ${state.error}`);
  return state;
}

export function addon(): Addon {
  return loaded().addon;
}

/** The ORT library the native backend would load: option, then $VITGRAPH_ORT_LIB, then onnxruntime-node's. */
export function resolveOrtLibrary(ortLibraryPath?: string): { path: string; source: NativeRuntimeInfo['source'] } {
  if (ortLibraryPath) return { path: resolve(ortLibraryPath), source: 'option' };
  const fromEnv = process.env.VITGRAPH_ORT_LIB;
  if (fromEnv) return { path: resolve(fromEnv), source: 'VITGRAPH_ORT_LIB' };
  let pkg: string;
  try {
    pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    throw unsupported('native backend: onnxruntime-node is not installed, so there is no default ONNX Runtime library', 'Install it (npm ci) or set VITGRAPH_ORT_LIB to a libonnxruntime.so');
  }
  return { path: join(pkg, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime.so.1'), source: 'onnxruntime-node' };
}

/**
 * Loads ONNX Runtime into the native backend (once per process) and describes it.
 * Throws VitgraphError 'unsupported' when the addon is not built or the library cannot be loaded.
 */
export function loadNativeRuntime(ortLibraryPath?: string): NativeRuntimeInfo {
  const native = addon();
  const { path, source } = resolveOrtLibrary(ortLibraryPath);
  const origin = source === 'option' ? 'ortLibraryPath' : source === 'VITGRAPH_ORT_LIB' ? 'VITGRAPH_ORT_LIB' : "onnxruntime-node's install";
  if (!existsSync(path)) {
    throw unsupported(
      `native backend: ONNX Runtime library not found: ${path} (from ${origin})`,
      source === 'onnxruntime-node'
        ? 'Reinstall onnxruntime-node (npm ci) or set VITGRAPH_ORT_LIB to a libonnxruntime.so'
        : `Point ${origin} at an existing libonnxruntime.so, or unset it to use onnxruntime-node's library`,
    );
  }
  try {
    const info = native.loadRuntime(path);
    return { libraryPath: realpathSync(path), source, coreDir: info.coreDir, version: info.version, apiVersion: info.apiVersion, providers: info.providers };
  } catch (error) {
    throw fromAddon(error, 'native backend');
  }
}

/**
 * Whether the native backend can be used here (addon loadable and ORT loadable), and which addon
 * file loaded (the package's prebuilt binary or a local source build); never throws.
 */
export function nativeAvailable(options: { ortLibraryPath?: string } = {}): { ok: true; addon: NativeAddonFile; runtime: NativeRuntimeInfo } | { ok: false; reason: string } {
  try {
    const runtime = loadNativeRuntime(options.ortLibraryPath);
    return { ok: true, addon: loaded().file, runtime };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}
