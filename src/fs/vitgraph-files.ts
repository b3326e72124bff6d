// Recognising what vitgraph wrote, positively, so that replacing an output never destroys a user's
// file: a package (its manifest, and nothing in the folder that the manifest does not list), a .onnx
// carrying vitgraph's metadata, a safetensors file whose metadata names vitgraph as its producer.

import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { inspectModel } from '../onnx/inspect.js';
import { MANIFEST, openPackage, VERIFIED_STAMP } from '../runtime/package.js';
import { readSafetensorsHeader } from '../weights/safetensors.js';
import { readRegularHead } from './confined.js';
import { checkOutput, type OutputState } from './output.js';
import { parseTemporary } from './temporary.js';

const quietly = <T>(promise: Promise<T>): Promise<T | undefined> => promise.catch(() => undefined);

/** A safetensors file whose `__metadata__` says vitgraph wrote it (encode, run, preprocess, serve, synth). */
export async function isVitgraphSafetensors(path: string): Promise<boolean> {
  const metadata = (await quietly(readSafetensorsHeader(path)))?.metadata;
  return [metadata?.producer, metadata?.generator].some((v) => v?.startsWith('vitgraph') === true);
}

/** A .onnx file with vitgraph's metadata (protobuf field 1, ir_version, comes first in every file vitgraph writes). */
export async function isVitgraphOnnx(path: string): Promise<boolean> {
  const head = await quietly(readRegularHead(path, 1, 'ONNX model'));
  if (head?.[0] !== 0x08) return false;
  const summary = await quietly(inspectModel(path));
  return summary?.metadata['vitgraph.version'] !== undefined;
}

/** A package directory holding its manifest's files and vitgraph's own files, nothing else. */
export async function isVitgraphPackage(dir: string): Promise<boolean> {
  const manifest = (await quietly(openPackage(dir, { verify: false })))?.manifest;
  if (!manifest) return false;
  const listed = new Set([MANIFEST, VERIFIED_STAMP, ...manifest.graphs.map((g) => g.file), ...(manifest.weights ? [manifest.weights.file] : [])]);
  const entries = await readdir(dir);
  return entries.every((entry) => listed.has(entry) || parseTemporary(entry) !== undefined);
}

/**
 * Checks an export's output before any work: a package directory, or a .onnx and the `<file>.data`
 * its weights may go to (which must then belong to the .onnx being replaced).
 */
export async function checkExportOutput(out: string, isFile: boolean, overwrite: boolean): Promise<OutputState> {
  if (!isFile) return checkOutput(out, { shape: 'package', overwrite, createsParents: true, ownedByVitgraph: (dir) => isVitgraphPackage(dir) });
  const state = await checkOutput(out, { shape: 'file', overwrite, createsParents: true, ownedByVitgraph: (path, info) => isOwnedFile(path, info, isVitgraphOnnx) });
  const data = `${out}.data`;
  const referenced = state.kind === 'replace' && (await quietly(inspectModel(out)))?.externalFiles.includes(basename(data)) === true;
  await checkOutput(data, { shape: 'file', overwrite, createsParents: true, ownedByVitgraph: async () => referenced });
  return state;
}

/** Checks a safetensors output (encode, run, preprocess) before any work: one vitgraph wrote is replaced; stdout and devices are written through. */
export function checkSafetensorsOutput(path: string): Promise<OutputState> {
  return checkOutput(path, { shape: 'file', overwrite: true, streamable: true, ownedByVitgraph: (p, info) => isOwnedFile(p, info, isVitgraphSafetensors) });
}

/**
 * Checks a checkpoint directory that synth will fill: its config.json and model.safetensors are
 * replaced (with overwrite) only when the weights are synth's own.
 */
export async function checkSynthOutput(dir: string, overwrite: boolean): Promise<void> {
  const weights = join(dir, 'model.safetensors');
  const synthesized = (await quietly(lstat(weights)))?.isFile() === true && (await isVitgraphSafetensors(weights));
  for (const name of ['config.json', 'model.safetensors']) {
    await checkOutput(join(dir, name), { shape: 'file', overwrite, createsParents: true, ownedByVitgraph: async () => synthesized });
  }
}

const isOwnedFile = async (path: string, info: Stats, recognise: (path: string) => Promise<boolean>): Promise<boolean> => info.isFile() && (await recognise(path));
