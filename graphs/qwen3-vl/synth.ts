// Random-weight Qwen3-VL vision checkpoints with the real tower's names and shapes, for building,
// timing and smoke-testing graphs without downloading weights. Values are seeded and deterministic;
// they are initialization-scale noise, so outputs are finite but meaningless.
// Tensor names and shapes follow Qwen3VLVisionModel (transformers modeling_qwen3_vl.py @00709b86),
// as tabulated in notes/qwen3-vl-vision-spec.md §2.1; preset sizes from §1.2.

import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../../src/errors.js';
import { mulberry32 } from '../../src/random.js';
import { numel } from '../../src/tensor.js';
import { f32ToBf16 } from '../../src/weights/dtype.js';
import { writeSafetensorsStream, type SafetensorsSpec } from '../../src/weights/safetensors.js';

/** The vision_config fields that vary between presets; the rest are fixed for Qwen3-VL. */
export interface SynthVisionConfig {
  depth: number;
  hidden_size: number;
  intermediate_size: number;
  num_heads: number;
  out_hidden_size: number;
  deepstack_visual_indexes: number[];
}

export type SynthPreset = '2b' | '8b' | 'tiny';

export const SYNTH_PRESETS: Readonly<Record<SynthPreset, Readonly<SynthVisionConfig>>> = {
  '2b': { depth: 24, hidden_size: 1024, intermediate_size: 4096, num_heads: 16, out_hidden_size: 2048, deepstack_visual_indexes: [5, 11, 17] },
  '8b': { depth: 27, hidden_size: 1152, intermediate_size: 4304, num_heads: 16, out_hidden_size: 4096, deepstack_visual_indexes: [8, 16, 24] },
  tiny: { depth: 2, hidden_size: 64, intermediate_size: 128, num_heads: 4, out_hidden_size: 80, deepstack_visual_indexes: [0] },
};

export interface SynthOptions {
  /** PRNG seed, an unsigned 32-bit integer (default 0). */
  seed?: number;
  /** Stored dtype (default float32). */
  dtype?: 'float32' | 'bfloat16';
  /** Replace an existing config.json / model.safetensors in outDir (default: refuse). */
  overwrite?: boolean;
  /** Called after each tensor with data bytes written so far and in total. */
  onProgress?: (done: number, total: number) => void;
  /** Fewer blocks than the preset (deepstack taps past the last block are dropped): full-width layers, less time. */
  depth?: number;
}

const PREFIX = 'model.visual.';

/** The vision tower's tensors, unprefixed, in module order: [name, shape]. */
export function synthTensorShapes(v: SynthVisionConfig): [string, number[]][] {
  const H = v.hidden_size;
  const merged = 4 * H; // spatial_merge_size² patches concatenated
  const linear = (name: string, out: number, inp: number): [string, number[]][] => [
    [`${name}.weight`, [out, inp]],
    [`${name}.bias`, [out]],
  ];
  const norm = (name: string, width: number): [string, number[]][] => [
    [`${name}.weight`, [width]],
    [`${name}.bias`, [width]],
  ];
  const merger = (name: string, normWidth: number): [string, number[]][] => [
    ...norm(`${name}.norm`, normWidth), // main merger: per-patch norm (H); deepstack: post-shuffle (4H)
    ...linear(`${name}.linear_fc1`, merged, merged),
    ...linear(`${name}.linear_fc2`, v.out_hidden_size, merged),
  ];
  const block = (i: number): [string, number[]][] => [
    ...norm(`blocks.${i}.norm1`, H),
    ...linear(`blocks.${i}.attn.qkv`, 3 * H, H),
    ...linear(`blocks.${i}.attn.proj`, H, H),
    ...norm(`blocks.${i}.norm2`, H),
    ...linear(`blocks.${i}.mlp.linear_fc1`, v.intermediate_size, H),
    ...linear(`blocks.${i}.mlp.linear_fc2`, H, v.intermediate_size),
  ];
  return [
    ['patch_embed.proj.weight', [H, 3, 2, 16, 16]], // Conv3d [out, in, t, kh, kw]
    ['patch_embed.proj.bias', [H]],
    ['pos_embed.weight', [2304, H]],
    ...Array.from({ length: v.depth }, (_, i) => block(i)).flat(),
    ...merger('merger', H),
    ...v.deepstack_visual_indexes.flatMap((_, j) => merger(`deepstack_merger_list.${j}`, merged)),
  ];
}

/**
 * Writes `config.json` and `model.safetensors` (every vision tensor under `model.visual.`) into
 * `outDir`, streaming tensor by tensor (the 2B tower is ~1.6 GB in float32).
 */
export async function synthCheckpoint(
  outDir: string,
  preset: SynthPreset,
  opts: SynthOptions = {},
): Promise<{ configPath: string; weightsPath: string; bytes: number }> {
  const presetConfig = SYNTH_PRESETS[preset];
  if (!presetConfig) throw invalidArgument('synth preset', Object.keys(SYNTH_PRESETS).join(' | '), preset);
  const { seed = 0, dtype = 'float32', overwrite = false, onProgress, depth = presetConfig.depth } = opts;
  if (!Number.isInteger(depth) || depth < 1) throw invalidArgument('synth depth', 'an integer ≥ 1', depth);
  const vision = { ...presetConfig, depth, deepstack_visual_indexes: presetConfig.deepstack_visual_indexes.filter((i) => i < depth) };
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw invalidArgument('synth seed', 'an integer in [0, 2^32)', seed);
  const configPath = join(outDir, 'config.json');
  const weightsPath = join(outDir, 'model.safetensors');
  await mkdir(outDir, { recursive: true });
  const existing = [];
  for (const path of [configPath, weightsPath]) if (await exists(path)) existing.push(path);
  if (existing.length > 0 && !overwrite) {
    throw invalidArgument('synth output', 'a directory without config.json or model.safetensors', existing.join(', '), { fixes: [{ option: 'overwrite', action: 'pass' }], then: 'to replace them' });
  }

  const specs: SafetensorsSpec[] = synthTensorShapes(vision).map(([name, shape]) => ({
    name: PREFIX + name,
    dtype: dtype === 'float32' ? 'F32' : 'BF16',
    shape,
  }));
  const bytesPerElement = dtype === 'float32' ? 4 : 2;
  const total = specs.reduce((sum, s) => sum + numel(s.shape) * bytesPerElement, 0);
  let done = 0;
  const metadata = { format: 'pt', generator: `vitgraph synthCheckpoint preset=${preset} seed=${seed} (random weights)` };
  await writeSafetensorsStream(
    weightsPath,
    specs,
    (spec) => {
      const values = randomTensor(spec.name, numel(spec.shape), seed);
      const bytes = dtype === 'float32' ? values : f32ToBf16(values);
      done += bytes.byteLength;
      onProgress?.(done, total);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    metadata,
  );

  const config = {
    architectures: ['Qwen3VLForConditionalGeneration'],
    model_type: 'qwen3_vl',
    vision_config: {
      model_type: 'qwen3_vl',
      depth: vision.depth,
      hidden_size: vision.hidden_size,
      intermediate_size: vision.intermediate_size,
      num_heads: vision.num_heads,
      out_hidden_size: vision.out_hidden_size,
      in_channels: 3,
      patch_size: 16,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      num_position_embeddings: 2304,
      deepstack_visual_indexes: [...vision.deepstack_visual_indexes],
      hidden_act: 'gelu_pytorch_tanh',
      initializer_range: 0.02,
    },
  };
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  return { configPath, weightsPath, bytes: (await stat(weightsPath)).size };
}

/**
 * Initialization-scale values for one tensor: uniform noise with standard deviation 0.02 for
 * weights, 0.01 for biases, and 1 ± noise for LayerNorm scales. The stream is seeded from the
 * name and the seed, so a tensor's values do not depend on which other tensors exist.
 */
function randomTensor(name: string, n: number, seed: number): Float32Array {
  const isNormScale = /norm\d?\.weight$/.test(name);
  const std = name.endsWith('.bias') ? 0.01 : 0.02;
  const center = isNormScale ? 1 : 0;
  const amplitude = std * Math.sqrt(3); // uniform on [−a, a] has std a / √3
  const next = mulberry32(hash(name) ^ seed);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = center + amplitude * (2 * next() - 1);
  return values;
}

/** FNV-1a over the name's UTF-16 code units. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
