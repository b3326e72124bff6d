// Prints the directory holding onnxruntime_c_api.h for binding.gyp's include_dirs.
// Order: $ORT_INCLUDE_DIR, then the headers inside the devDependency com.github.asus4.onnxruntime
// (ORT 1.29, shipped in its iOS framework folder; the C API headers are platform-neutral).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const HEADER = 'onnxruntime_c_api.h';

function fromEnv() {
  const dir = process.env.ORT_INCLUDE_DIR;
  if (!dir) return undefined;
  if (!fs.existsSync(path.join(dir, HEADER))) {
    throw new Error(`ORT_INCLUDE_DIR=${dir} does not contain ${HEADER}`);
  }
  return dir;
}

function search(dir, depth) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  if (entries.some((e) => e.isFile() && e.name === HEADER)) return dir;
  if (depth === 0) return undefined;
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const found = search(path.join(dir, e.name), depth - 1);
    if (found) return found;
  }
  return undefined;
}

function fromPackage() {
  let pkg;
  try {
    pkg = path.dirname(require.resolve('com.github.asus4.onnxruntime/package.json', { paths: [__dirname] }));
  } catch {
    return undefined;
  }
  return search(pkg, 8);
}

const dir = fromEnv() ?? fromPackage();
if (!dir) {
  process.stderr.write(
    `vitgraph native: ${HEADER} not found. Install the devDependency com.github.asus4.onnxruntime ` + `(npm install) or set ORT_INCLUDE_DIR to a folder with the ONNX Runtime C API headers.\n`,
  );
  process.exit(1);
}
process.stdout.write(dir);
