// Seeded random data and random-weight checkpoints written the way Hugging Face stores them, for
// configurations the goldens do not cover. Tensor names and shapes are listed here from the spec
// (notes/qwen3-vl-vision-spec.md §2.1), independently of graphs/qwen3-vl/synth.ts.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mulberry32 } from '../../src/random.js';
import { hostTensor, type HostTensor } from '../../src/tensor.js';
import { writeSafetensors } from '../../src/weights/index.js';
import type { GridRow } from '../reference/qwen3vl.js';

/** mulberry32: small seeded PRNG, uniform in [0, 1). */
export const rng = mulberry32;

/** Standard normal samples (Box–Muller) from a uniform source. */
export function normal(next: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** The `vision_config` fields a test varies; the rest are Qwen3-VL's fixed values. */
export interface VisionSpec {
  depth: number;
  hidden_size: number;
  intermediate_size: number;
  num_heads: number;
  out_hidden_size: number;
  num_position_embeddings: number;
  deepstack_visual_indexes: number[];
  hidden_act: 'gelu_pytorch_tanh' | 'gelu';
}

/** Every vision tensor of the spec's §2.1 table (names without `model.visual.`), in module order. */
export function visionTensorShapes(v: VisionSpec): [string, number[]][] {
  const H = v.hidden_size;
  const H4 = 4 * H;
  const out: [string, number[]][] = [
    ['patch_embed.proj.weight', [H, 3, 2, 16, 16]],
    ['patch_embed.proj.bias', [H]],
    ['pos_embed.weight', [v.num_position_embeddings, H]],
  ];
  for (let i = 0; i < v.depth; i++) {
    const b = `blocks.${i}`;
    out.push(
      [`${b}.norm1.weight`, [H]],
      [`${b}.norm1.bias`, [H]],
      [`${b}.attn.qkv.weight`, [3 * H, H]],
      [`${b}.attn.qkv.bias`, [3 * H]],
      [`${b}.attn.proj.weight`, [H, H]],
      [`${b}.attn.proj.bias`, [H]],
      [`${b}.norm2.weight`, [H]],
      [`${b}.norm2.bias`, [H]],
      [`${b}.mlp.linear_fc1.weight`, [v.intermediate_size, H]],
      [`${b}.mlp.linear_fc1.bias`, [v.intermediate_size]],
      [`${b}.mlp.linear_fc2.weight`, [H, v.intermediate_size]],
      [`${b}.mlp.linear_fc2.bias`, [H]],
    );
  }
  const merger = (prefix: string, normWidth: number): [string, number[]][] => [
    [`${prefix}.norm.weight`, [normWidth]],
    [`${prefix}.norm.bias`, [normWidth]],
    [`${prefix}.linear_fc1.weight`, [H4, H4]],
    [`${prefix}.linear_fc1.bias`, [H4]],
    [`${prefix}.linear_fc2.weight`, [v.out_hidden_size, H4]],
    [`${prefix}.linear_fc2.bias`, [v.out_hidden_size]],
  ];
  out.push(...merger('merger', H));
  v.deepstack_visual_indexes.forEach((_, j) => out.push(...merger(`deepstack_merger_list.${j}`, H4)));
  return out;
}

/** The HF config.json of a checkpoint with tower `v`. */
export function configJson(v: VisionSpec): Record<string, unknown> {
  return {
    architectures: ['Qwen3VLForConditionalGeneration'],
    model_type: 'qwen3_vl',
    vision_config: {
      model_type: 'qwen3_vl',
      ...v,
      in_channels: 3,
      patch_size: 16,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      initializer_range: 0.02,
    },
  };
}

/**
 * Random float32 weights at the goldens' scale (linear weights ~N(0, 1/fan_in), biases ~0.05,
 * LayerNorm scales 1 ± 0.2, position table ~0.5), so attention and GELUs work away from zero.
 * Returns them as float64 values (exactly the stored float32 values) by stripped name.
 */
export function randomWeights(v: VisionSpec, seed: number): Map<string, Float64Array> {
  const gauss = normal(rng(seed));
  const weights = new Map<string, Float64Array>();
  for (const [name, shape] of visionTensorShapes(v)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? n / shape[0]! : 1;
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const z = gauss();
      const value = name.startsWith('pos_embed') ? 0.5 * z : /norm\d?\.weight$/.test(name) ? 1 + 0.2 * z : name.endsWith('.bias') ? 0.05 * z : z / Math.sqrt(fanIn);
      values[i] = Math.fround(value);
    }
    weights.set(name, values);
  }
  return weights;
}

/**
 * Writes `config.json` + `model.safetensors` (F32, names under `model.visual.`) into `dir`.
 * `weights` defaults to `randomWeights(v, seed)`; returns what was written.
 */
export async function writeCheckpoint(dir: string, v: VisionSpec, seed: number, weights = randomWeights(v, seed)): Promise<Map<string, Float64Array>> {
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, HostTensor>();
  const shapes = new Map(visionTensorShapes(v));
  for (const [name, values] of weights) tensors.set(`model.visual.${name}`, hostTensor('float32', shapes.get(name) ?? [values.length], Float32Array.from(values)));
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(configJson(v), null, 2)}\n`);
  return weights;
}

/** Random pixel rows (unit normal, as float32) for `grid`, with the grid as an int64 tensor. */
export function randomInputs(grid: readonly GridRow[], seed: number): { pixelValues: HostTensor<'float32'>; gridThw: HostTensor<'int64'> } {
  const n = grid.reduce((s, [t, h, w]) => s + t * h * w, 0);
  const gauss = normal(rng(seed));
  const pixels = new Float32Array(n * 1536);
  for (let i = 0; i < pixels.length; i++) pixels[i] = gauss();
  return {
    pixelValues: hostTensor('float32', [n, 1536], pixels),
    gridThw: hostTensor('int64', [grid.length, 3], BigInt64Array.from(grid.flat().map(BigInt))),
  };
}
