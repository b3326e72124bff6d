// Temp directories and the encoder fixtures (fixtures/encoder/<case>, see its README.md).

import type { ExecutionContext } from 'ava';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '../../src/tensor.js';
import { readSafetensors } from '../../src/weights/index.js';
import type { GridRow } from '../reference/qwen3vl.js';

/** The project root (this file runs as dist/test/helpers/files.js). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const ENCODER_FIXTURES = join(ROOT, 'fixtures', 'encoder');
export const BIN = join(ROOT, 'dist', 'cli', 'main.js');

/** A fresh directory removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'vitgraph-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export type GoldenCase = 'tiny' | 'tiny_single' | 'qwen3_5_tiny';

export interface Golden {
  /** The model directory (config.json + model.safetensors), usable as `exportModel({ model })`. */
  readonly dir: string;
  /** io.safetensors, usable as `vitgraph run --inputs`. */
  readonly io: string;
  readonly config: Record<string, unknown>;
  readonly pixelValues: HostTensor<'float32'>; // [N, 1536]
  readonly gridThw: HostTensor<'int64'>; // [I, 3]
  readonly grid: GridRow[];
  readonly expected: { readonly imageEmbeds: Float32Array; readonly deepstack: readonly Float32Array[] };
  readonly debug: { readonly patchEmbed: Float32Array; readonly posEmbed: Float32Array; readonly rotaryFreqs: Float32Array; readonly block0: Float32Array };
  /** Weights by prefix-stripped name ('blocks.0.norm1.weight'), float32 values as float64. */
  readonly weights: Map<string, Float64Array>;
}

export async function loadGolden(name: GoldenCase): Promise<Golden> {
  const dir = join(ENCODER_FIXTURES, name);
  const io = join(dir, 'io.safetensors');
  const tensors = await readSafetensors(io);
  const get = (key: string): HostTensor => {
    const tensor = tensors.get(key);
    if (!tensor) throw new Error(`fixture ${name}: ${key} missing from io.safetensors`);
    return tensor;
  };
  const f32 = (key: string): Float32Array => get(key).data as Float32Array;
  const gridThw = get('grid_thw') as HostTensor<'int64'>;
  const values = Array.from(gridThw.data, Number);
  const grid = Array.from({ length: values.length / 3 }, (_, i) => values.slice(3 * i, 3 * i + 3) as unknown as GridRow);
  const deepstack: Float32Array[] = [];
  for (let j = 0; tensors.has(`expected.deepstack_embeds.${j}`); j++) deepstack.push(f32(`expected.deepstack_embeds.${j}`));
  return {
    dir,
    io,
    config: JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>,
    pixelValues: get('pixel_values') as HostTensor<'float32'>,
    gridThw,
    grid,
    expected: { imageEmbeds: f32('expected.image_embeds'), deepstack },
    debug: { patchEmbed: f32('debug.patch_embed'), posEmbed: f32('debug.pos_embed'), rotaryFreqs: f32('debug.rotary_freqs'), block0: f32('debug.block0') },
    weights: await loadWeights(join(dir, 'model.safetensors')),
  };
}

/** A checkpoint's vision tensors as float64, names with `model.visual.` stripped. */
export async function loadWeights(path: string): Promise<Map<string, Float64Array>> {
  const weights = new Map<string, Float64Array>();
  for (const [key, tensor] of await readSafetensors(path)) {
    if (tensor.dtype !== 'float32') throw new Error(`${path}: ${key} is ${tensor.dtype}, the tests expect F32 checkpoints`);
    weights.set(key.replace(/^model\.visual\./, ''), Float64Array.from(tensor.data as Float32Array));
  }
  return weights;
}

/** deepstack_embeds [K, T, O] as K row blocks. */
export function deepstackBlocks(data: Float32Array, k: number): Float32Array[] {
  const size = data.length / Math.max(k, 1);
  return Array.from({ length: k }, (_, j) => data.subarray(j * size, (j + 1) * size));
}
