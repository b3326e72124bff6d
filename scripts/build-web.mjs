// npm run build:web: bundles the browser entry (vitgraph-web.js) and the demo page (demo.js) with
// esbuild into dist/web/, with onnxruntime-web's WASM runtime beside them, the demo's sample images,
// and the embedded tiny tower exported by this checkout's own CLI (dist/cli, so `npm run build` first).
//   node scripts/build-web.mjs [outDir]

import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'dist/web'));
/** The onnxruntime-web build for WebGPU + WASM loads these at run time, from beside the bundle. */
const ORT_FILES = ['ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'];

await rm(out, { recursive: true, force: true });
await mkdir(join(out, 'images'), { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { 'vitgraph-web': 'src/web/index.ts', demo: 'examples/web/demo.ts' },
  bundle: true,
  format: 'esm',
  platform: 'browser', // a Node built-in reached from the entry fails the build here
  target: 'es2022',
  // onnxruntime-web's build that loads its .mjs/.wasm from beside the bundle instead of inlining them
  conditions: ['onnxruntime-web-use-extern-wasm'],
  minify: true,
  sourcemap: true,
  metafile: true,
  legalComments: 'none',
  outdir: out,
  logLevel: 'warning',
});
const ortDist = join(root, 'node_modules/onnxruntime-web/dist');
for (const file of ORT_FILES) await copyFile(join(ortDist, file), join(out, file));
await copyFile(join(root, 'examples/web/index.html'), join(out, 'index.html'));
for (const file of await readdir(join(root, 'fixtures/images'))) {
  if (file.endsWith('.png')) await copyFile(join(root, 'fixtures/images', file), join(out, 'images', file));
}

const cli = spawnSync(
  process.execPath,
  [
    join(root, 'dist/cli/main.js'),
    'export',
    '--model',
    join(root, 'fixtures/encoder/tiny'),
    '--out',
    join(out, 'models/tiny'),
    '--external-data',
    'always',
    '--max-patches',
    '1024',
    '--force',
    '--quiet',
  ],
  { stdio: 'inherit' },
);
if (cli.status !== 0) throw new Error(`exporting the tiny tower failed (status ${cli.status}): run \`npm run build\` first`);

const size = async (file) => (await stat(join(out, file))).size;
const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
for (const file of ['vitgraph-web.js', 'demo.js', ...ORT_FILES]) console.log(`${file.padEnd(40)} ${kib(await size(file))}`);
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`dist/web: ${inputs} modules bundled, tiny tower in models/tiny/`);
