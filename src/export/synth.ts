// Random-weight vision checkpoints with a released tower's names and shapes, for building, timing
// and smoke-testing graphs without downloading weights. Values are seeded and deterministic; they
// are initialization-scale noise, so outputs are finite but meaningless. Presets (config.json
// objects) come from each tower's descriptor; the tensor list from building its graph.

import { access, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../errors.js';
import type { ModelDescriptor, ModelRegistry, TowerConfig } from '../model.js';
import { mulberry32 } from '../random.js';
import { numel } from '../tensor.js';
import { f32ToBf16 } from '../dtype.js';
import { writeSafetensorsStream, type SafetensorsSpec } from '../weights/safetensors.js';
import { temporaryPath } from '../fs/temporary.js';
import { checkSynthOutput } from '../fs/vitgraph-files.js';

export interface SynthOptions {
  /** PRNG seed, an unsigned 32-bit integer (default 0). */
  seed?: number;
  /** Stored dtype (default float32). */
  dtype?: 'float32' | 'bfloat16';
  /** Replace an existing config.json / model.safetensors in outDir (default: refuse). */
  overwrite?: boolean;
  /** Called after each tensor with data bytes written so far and in total. */
  onProgress?: (done: number, total: number) => void;
  /** Fewer blocks than the preset (block indexes past the last block are dropped): full-width layers, less time. */
  depth?: number;
}

const PREFIX = 'model.visual.';

/** Every preset of every tower: `vitgraph synth --preset <name>`. */
export function synthPresets(models: ModelRegistry): { name: string; model: string }[] {
  return models.models.flatMap((m) => Object.keys(m.presets).map((name) => ({ name, model: m.id })));
}

/**
 * The tower's tensors, unprefixed, in the order the graph claims them: [name, shape]. Taken from
 * building the dynamic graph, so they are exactly what an export will bind.
 */
export function towerTensorShapes(model: ModelDescriptor, config: TowerConfig): [string, number[]][] {
  const shapes: [string, number[]][] = [];
  model.buildDynamic(config, { take: (name, shape) => (shapes.push([name, [...shape]]), () => Promise.resolve(new Uint8Array(0))) }, { dtype: 'float32' });
  return shapes;
}

/**
 * Writes `config.json` and `model.safetensors` (every vision tensor under `model.visual.`) into
 * `outDir`, streaming tensor by tensor (the 2B tower is ~1.6 GB in float32).
 */
export async function synthCheckpoint(
  models: ModelRegistry,
  outDir: string,
  preset: string,
  opts: SynthOptions = {},
): Promise<{ configPath: string; weightsPath: string; bytes: number; model: string }> {
  const model = models.models.find((m) => Object.hasOwn(m.presets, preset));
  if (!model)
    throw invalidArgument(
      'synth preset',
      synthPresets(models)
        .map((p) => p.name)
        .join(' | '),
      preset,
    );
  const { seed = 0, dtype = 'float32', overwrite = false, onProgress } = opts;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw invalidArgument('synth seed', 'an integer in [0, 2^32)', seed);
  const configJson = withDepth(model.presets[preset]!, opts.depth);
  const config = model.parseConfig(configJson);
  const configPath = join(outDir, 'config.json');
  const weightsPath = join(outDir, 'model.safetensors');
  const existing = [];
  for (const path of [configPath, weightsPath]) if (await exists(path)) existing.push(path);
  if (existing.length > 0 && !overwrite) {
    throw invalidArgument('synth output', 'a directory without config.json or model.safetensors', existing.join(', '), { fixes: [{ option: 'overwrite', action: 'pass' }], then: 'to replace them' });
  }
  await checkSynthOutput(outDir, overwrite); // a real checkpoint there is never replaced, overwrite or not
  await mkdir(outDir, { recursive: true });

  const shapes = towerTensorShapes(model, config);
  const specs: SafetensorsSpec[] = shapes.map(([name, shape]) => ({ name: PREFIX + name, dtype: dtype === 'float32' ? 'F32' : 'BF16', shape }));
  const bytesPerElement = dtype === 'float32' ? 4 : 2;
  const total = specs.reduce((sum, s) => sum + numel(s.shape) * bytesPerElement, 0);
  let done = 0;
  const metadata = { format: 'pt', generator: `vitgraph synthCheckpoint preset=${preset} seed=${seed} (random weights)` };
  await writeSafetensorsStream(
    weightsPath,
    specs,
    (spec) => {
      const values = randomTensor(spec.name, spec.shape, seed);
      const bytes = dtype === 'float32' ? values : f32ToBf16(values);
      done += bytes.byteLength;
      onProgress?.(done, total);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    metadata,
  );
  const configTemp = temporaryPath(configPath); // atomic: a kill leaves the old config.json or the new one
  await writeFile(configTemp, `${JSON.stringify(configJson, null, 2)}\n`, { flag: 'wx' });
  await rename(configTemp, configPath);
  return { configPath, weightsPath, bytes: (await stat(weightsPath)).size, model: model.id };
}

/** The preset with `depth` blocks: block-index lists (deepstack, full-attention) keep indexes below it. */
function withDepth(preset: Record<string, unknown>, depth: number | undefined): Record<string, unknown> {
  if (depth === undefined) return preset;
  if (!Number.isInteger(depth) || depth < 1) throw invalidArgument('synth depth', 'an integer ≥ 1', depth);
  const vision: Record<string, unknown> = { ...(preset.vision_config as Record<string, unknown>), depth };
  for (const [key, value] of Object.entries(vision)) {
    if (key.endsWith('_indexes') && Array.isArray(value)) vision[key] = value.filter((i) => typeof i === 'number' && i < depth);
  }
  return { ...preset, vision_config: vision };
}

/**
 * Initialization-scale values for one tensor: uniform noise with standard deviation 0.02 for
 * weights, 0.01 for biases, and 1 ± noise for norm scales (the 1-D weights). The stream is seeded from the
 * name and the seed, so a tensor's values do not depend on which other tensors exist.
 */
function randomTensor(name: string, shape: readonly number[], seed: number): Float32Array {
  const n = numel(shape);
  const isNormScale = shape.length === 1 && name.endsWith('.weight'); // LayerNorm / RMSNorm scales
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
