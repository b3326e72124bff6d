// An exported package directory (vitgraph.json + the dynamic graph + weights.data, as `vitgraph
// export --out dir/` writes it) read in the browser: from a base URL with `fetch`, or from the files
// a person picked. Each file is read into one ArrayBuffer with progress, checked against the
// manifest's size and sha256.

import { invalidArgument, invalidFile, notFound, unsupported, VitgraphError } from '../errors.js';
import { parseEncoderIO, type EncoderIO } from '../contract.js';

/** A package: its base URL (ending in / or not), or the files picked from its directory. */
export type PackageSource = string | URL | readonly File[] | FileList;

export interface LoadProgress {
  /** The file being read, as the manifest names it. */
  file: string;
  loaded: number;
  /** Bytes the manifest records for it. */
  total: number;
}

export interface ReadOptions {
  onProgress?: (progress: LoadProgress) => void;
  /** Check every file's sha256 against vitgraph.json with WebCrypto (default true; skipped where crypto.subtle is absent, i.e. outside a secure context). */
  verify?: boolean;
}

export interface WebPackage {
  /** The tower's descriptor id, e.g. 'qwen3-vl'. */
  model: string;
  dtype: string;
  io: EncoderIO;
  graph: { file: string; data: Uint8Array };
  /** The external weights the graph points at (absent when they are inside the graph). */
  weights?: { file: string; data: Uint8Array };
}

/**
 * The largest file read into one ArrayBuffer: Chrome's ArrayBuffer limit (0x7fe00000 bytes, about
 * 2 GiB); a protobuf model is capped at 2 GiB anyway.
 */
export const MAX_FILE_BYTES = 0x7fe00000;

const MANIFEST = 'vitgraph.json'; // as src/runtime/package.ts names it
const FORMAT = 'vitgraph.package';

interface FileEntry {
  file: string;
  bytes: number;
  sha256: string;
}

/** Reads the manifest, the dynamic graph and its weights of the package at `source`. */
export async function readPackage(source: PackageSource, options: ReadOptions = {}): Promise<WebPackage> {
  const files = packageFiles(source);
  const manifest = parseJson(await (await files.open(MANIFEST)).arrayBuffer(), files.where(MANIFEST));
  const where = files.where(MANIFEST);
  if (manifest.format !== FORMAT) throw invalidFile(where, `format: expected "${FORMAT}", got ${JSON.stringify(manifest.format)}`, 'Point at a directory written by `vitgraph export --out dir/`');
  const io = parseEncoderIO(manifest.io, where);
  const graphs = Array.isArray(manifest.graphs) ? (manifest.graphs as Record<string, unknown>[]) : [];
  const dynamic = graphs.find((g) => g?.variant === 'dynamic');
  if (!dynamic) throw unsupported(`${where}: no dynamic graph: the browser runs the dynamic graph only`, 'Export the package without --variant padded');
  const graphEntry = fileEntry(dynamic, where);
  const weightsEntry = manifest.weights === undefined ? undefined : fileEntry(manifest.weights, where);
  const entries = weightsEntry ? [graphEntry, weightsEntry] : [graphEntry];
  for (const entry of entries) checkFits(entry, String(manifest.dtype));

  const read = async (entry: FileEntry): Promise<{ file: string; data: Uint8Array }> => {
    const data = await readAll(await files.open(entry.file), entry, files.where(entry.file), options.onProgress);
    if (options.verify !== false) await checkDigest(data, entry, files.where(entry.file));
    return { file: entry.file, data };
  };
  const graph = await read(graphEntry);
  const weights = weightsEntry ? await read(weightsEntry) : undefined;
  return { model: String(manifest.model), dtype: String(manifest.dtype), io, graph, ...(weights ? { weights } : {}) };
}

interface PackageFiles {
  open: (name: string) => Promise<Response>;
  where: (name: string) => string;
}

/** Opens package files by name, as HTTP responses (picked files are wrapped in one). */
function packageFiles(source: PackageSource): PackageFiles {
  if (typeof source === 'string' || source instanceof URL) {
    const base = new URL(String(source).endsWith('/') ? String(source) : `${String(source)}/`, globalThis.location?.href);
    const where = (name: string): string => new URL(name, base).href;
    return {
      where,
      open: async (name) => {
        const response = await fetch(where(name));
        if (!response.ok) throw notFound('package file', where(name), `HTTP ${response.status}: check the package URL`);
        return response;
      },
    };
  }
  const files: readonly File[] = typeof FileList !== 'undefined' && source instanceof FileList ? Array.from(source) : (source as readonly File[]);
  if (!Array.isArray(files)) throw invalidArgument('package source', 'a URL or the files of a package directory', typeof source);
  return {
    where: (name) => name,
    open: async (name) => {
      const file = files.find((f) => f.name === name);
      if (!file) throw notFound('package file', name, `Pick the whole package directory (vitgraph.json, the .onnx and weights.data)`);
      return new Response(file);
    },
  };
}

function parseJson(bytes: ArrayBuffer, where: string): Record<string, unknown> {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (typeof json === 'object' && json !== null) return json as Record<string, unknown>;
  } catch (cause) {
    throw new VitgraphError('invalid_file', `${where}: expected JSON, got a parse error (${(cause as Error).message})`, { path: where }, { cause });
  }
  throw invalidFile(where, 'expected a JSON object');
}

function fileEntry(value: unknown, where: string): FileEntry {
  const entry = value as Partial<FileEntry> | null;
  const ok = typeof entry?.file === 'string' && /^[\w.-]+$/.test(entry.file) && Number.isSafeInteger(entry.bytes) && (entry.bytes as number) >= 0 && typeof entry.sha256 === 'string';
  if (!ok) throw invalidFile(where, `expected a file entry {file, bytes, sha256}, got ${JSON.stringify(value)}`, 'Re-export the package');
  return entry as FileEntry;
}

/** Refuses a file no browser can hold in one buffer, saying what fits and how to get there. */
function checkFits(entry: FileEntry, dtype: string): void {
  if (entry.bytes <= MAX_FILE_BYTES) return;
  const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  throw unsupported(
    `${entry.file}: ${gib(entry.bytes)} (${dtype}): expected at most ${gib(MAX_FILE_BYTES)}, the largest ArrayBuffer Chrome allocates; ` +
      'and the WASM backend addresses 4 GiB in all (weights, activations and the runtime)',
    `Export a smaller precision: --dtype float16 halves float32 weights, --dtype int8 quarters the Linear layers (WASM backend), e.g. \`vitgraph export --model <dir> --out pkg/ --dtype float16\``,
  );
}

/** Streams `response` into one buffer of the manifest's size, reporting progress. */
async function readAll(response: Response, entry: FileEntry, where: string, onProgress?: (p: LoadProgress) => void): Promise<Uint8Array> {
  const data = new Uint8Array(entry.bytes);
  const report = (loaded: number): void => onProgress?.({ file: entry.file, loaded, total: entry.bytes });
  let loaded = 0;
  report(0);
  const reader = response.body?.getReader();
  if (!reader) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length !== entry.bytes) throw sizeMismatch(where, entry.bytes, bytes.length);
    data.set(bytes);
    report(bytes.length);
    return data;
  }
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > entry.bytes) throw sizeMismatch(where, entry.bytes, loaded + value.length);
    data.set(value, loaded);
    loaded += value.length;
    report(loaded);
  }
  if (loaded !== entry.bytes) throw sizeMismatch(where, entry.bytes, loaded);
  return data;
}

const sizeMismatch = (where: string, expected: number, got: number): VitgraphError =>
  invalidFile(where, `expected ${expected} bytes (vitgraph.json), got ${got === expected ? 'another' : `${got}`}`, 'The file is truncated or was replaced: re-export or re-upload the package');

async function checkDigest(data: Uint8Array, entry: FileEntry, where: string): Promise<void> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return;
  const digest = new Uint8Array(await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  if (hex !== entry.sha256) throw invalidFile(where, `sha256: expected ${entry.sha256} (vitgraph.json), got ${hex}`, 'The file was changed after export: re-export the package');
}
