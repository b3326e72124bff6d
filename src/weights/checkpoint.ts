// A Hugging Face checkpoint (one safetensors file or a sharded index) seen as the vision tower's
// named tensors. Only headers are read when opening; `read` fetches one tensor's byte range.
// Language-model tensors of a full VLM checkpoint are never read, listed or reported.

import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { VitgraphError, invalidFile, notFound } from '../errors.js';
import { confinedPath, readRegularText, regularFileStats, requirePath } from '../fs/confined.js';
import { convertFloatBytes, dataTypeOfSafetensors, type FloatSource, type FloatTarget } from '../dtype.js';
import { parseJsonFile } from '../fs/json.js';
import { fileSystemError } from '../fs/system-errors.js';
import { openExisting, readExactly, readSafetensorsHeader, type SafetensorsDType, type SafetensorsEntry } from './safetensors.js';

export interface CheckpointTensor {
  /** Prefix-stripped name, e.g. 'blocks.0.attn.qkv.weight'. */
  name: string;
  /** The key as stored in the file, e.g. 'model.visual.blocks.0.attn.qkv.weight'. */
  key: string;
  dtype: SafetensorsDType;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  byteLength: number;
}

/** Prefixes tried in order; the first one any key starts with marks the vision tower. '' = bare. */
const VISION_PREFIXES = ['model.visual.', 'visual.', ''] as const;
export type VisionPrefix = (typeof VISION_PREFIXES)[number];

const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

const FLOAT_SOURCES: readonly FloatSource[] = ['float64', 'float32', 'float16', 'bfloat16'];

export class Checkpoint {
  private constructor(
    /** Directory holding the checkpoint (where config.json usually sits too). */
    readonly dir: string,
    readonly prefix: VisionPrefix,
    /** The vision tower's tensors only, by prefix-stripped name. */
    readonly tensors: ReadonlyMap<string, CheckpointTensor>,
  ) {}

  /**
   * Opens a `.safetensors` file, a `model.safetensors.index.json`, or a directory holding either
   * (the single file wins when both exist, as in transformers).
   */
  static async open(path: string): Promise<Checkpoint> {
    const target = resolve(requirePath(path, 'checkpoint path'));
    const kind = await fileKind(target);
    if (kind === 'missing') throw notFound('checkpoint', target, 'pass a .safetensors file, a model.safetensors.index.json, or a directory holding one');
    if (kind === 'directory') {
      for (const name of [SINGLE_FILE, INDEX_FILE]) {
        if ((await fileKind(join(target, name))) === 'file') return Checkpoint.open(join(target, name));
      }
      throw notFound(`checkpoint (${SINGLE_FILE} or ${INDEX_FILE})`, target);
    }
    const entries = target.endsWith('.json') ? await readIndex(target) : [...(await readSafetensorsHeader(target)).entries.values()];
    const prefix = visionPrefix(entries.map((e) => e.name));
    const tensors = new Map<string, CheckpointTensor>();
    for (const { name: key, ...entry } of entries) {
      if (!key.startsWith(prefix)) continue;
      const name = key.slice(prefix.length);
      tensors.set(name, { name, key, ...entry });
    }
    return new Checkpoint(dirname(target), prefix, tensors);
  }

  /**
   * Reads one tensor (by stripped name) as little-endian bytes of `as`, converting float types.
   * Reads exactly the tensor's byte range from its file.
   */
  async read(name: string, as: FloatTarget): Promise<Uint8Array> {
    const tensor = this.tensors.get(name);
    if (!tensor) {
      throw new VitgraphError('weight_binding', `${name}: not in the checkpoint's vision tensors (prefix "${this.prefix}")`, { name });
    }
    const from = FLOAT_SOURCES.find((f) => f === dataTypeOfSafetensors(tensor.dtype));
    if (!from) {
      throw new VitgraphError('weight_binding', `${name}: expected a float dtype (F32, F16, BF16), got ${tensor.dtype}`, { name, dtype: tensor.dtype });
    }
    const file = await openExisting(tensor.file, 'checkpoint shard');
    try {
      return convertFloatBytes(await readExactly(file, tensor.file, tensor.offset, tensor.byteLength), from, as);
    } finally {
      await file.close();
    }
  }
}

/** The vision prefix of a set of keys: 'model.visual.' if any key has it, else 'visual.', else ''. */
export function visionPrefix(keys: readonly string[]): VisionPrefix {
  return VISION_PREFIXES.find((p) => keys.some((k) => k.startsWith(p))) ?? '';
}

/**
 * Reads a sharded index. Every shard must exist; shards holding vision tensors get their headers
 * read and must contain the keys the map assigns them. Other shards (language model) are only
 * checked for existence, so their contents are never touched.
 */
async function readIndex(indexPath: string): Promise<SafetensorsEntry[]> {
  const dir = dirname(indexPath);
  const parsed = parseJsonFile(await readTextFile(indexPath), indexPath, 'the checkpoint index');
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw invalidFile(indexPath, 'expected an object with a "weight_map" of tensor name → shard file');
  }
  const keysByShard = new Map<string, string[]>();
  for (const [key, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') throw invalidFile(indexPath, `weight_map "${key}": expected a shard file name, got ${JSON.stringify(shard)}`);
    const keys = keysByShard.get(shard) ?? [];
    keys.push(key);
    keysByShard.set(shard, keys);
  }
  const prefix = visionPrefix(Object.keys(weightMap));
  const entries: SafetensorsEntry[] = [];
  for (const [shard, keys] of keysByShard) {
    // Confined to the index's directory and a regular file, checked before anything is opened.
    const what = `checkpoint shard (weight_map of ${indexPath})`;
    const shardPath = await confinedPath(dir, shard, what);
    await regularFileStats(shardPath, what);
    const wanted = keys.filter((k) => k.startsWith(prefix));
    if (wanted.length === 0) continue;
    const header = await readSafetensorsHeader(shardPath);
    for (const key of wanted) {
      const entry = header.entries.get(key);
      if (!entry) throw invalidFile(shardPath, `expected tensor "${key}" (weight_map of ${indexPath} says it is here), got no such tensor`, 'the index and its shards disagree');
      entries.push(entry);
    }
  }
  return entries;
}

async function fileKind(path: string): Promise<'file' | 'directory' | 'missing'> {
  try {
    return (await stat(path)).isDirectory() ? 'directory' : 'file';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw fileSystemError(error, path, 'read'); // ELOOP, EACCES, ...
  }
}

const readTextFile = (path: string): Promise<string> => readRegularText(path, 'checkpoint index');
