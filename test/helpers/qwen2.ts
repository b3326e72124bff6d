// The Qwen2-VL / Qwen2.5-VL encoder fixtures (fixtures/encoder/{qwen2vl_tiny,qwen2_5vl_tiny}, see
// its README.md) and the graph plumbing their tests share: build with checkpoint weights, save,
// run on onnxruntime-node.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { GraphBuilder } from '../../src/onnx/index.js';
import { saveModel } from '../../src/onnx/index.js';
import { Session } from '../../src/runtime/session.js';
import { hostTensor, type HostTensor } from '../../src/tensor.js';
import { Checkpoint, readSafetensors, writeSafetensors } from '../../src/weights/index.js';
import { checkpointParameters } from '../../src/export/model-directory.js';
import type { GridRow } from '../reference/qwen3vl.js';
import { qwen2ReferenceConfig, type Qwen2ReferenceConfig } from '../reference/qwen2vl.js';
import { normal, rng } from './random.js';
import { ENCODER_FIXTURES, loadWeights, tempDir } from './files.js';
import { TEST_OPSET } from './onnx.js';

export type Qwen2Case = 'qwen2vl_tiny' | 'qwen2_5vl_tiny';

export interface Qwen2Golden {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  readonly pixelValues: HostTensor<'float32'>; // [N, 1176]
  readonly gridThw: HostTensor<'int64'>; // [I, 3]
  readonly grid: GridRow[];
  readonly imageEmbeds: Float32Array; // [N/4, O]
  readonly debug: ReadonlyMap<string, HostTensor>; // debug.* tensors by name without the prefix
  /** Weights by prefix-stripped name, float32 values as float64. */
  readonly weights: Map<string, Float64Array>;
}

export async function loadQwen2Golden(name: Qwen2Case): Promise<Qwen2Golden> {
  const dir = join(ENCODER_FIXTURES, name);
  const tensors = await readSafetensors(join(dir, 'io.safetensors'));
  const get = (key: string): HostTensor => {
    const tensor = tensors.get(key);
    if (!tensor) throw new Error(`fixture ${name}: ${key} missing from io.safetensors`);
    return tensor;
  };
  const gridThw = get('grid_thw') as HostTensor<'int64'>;
  const values = Array.from(gridThw.data, Number);
  const debug = new Map([...tensors].filter(([k]) => k.startsWith('debug.')).map(([k, v]) => [k.slice('debug.'.length), v]));
  return {
    dir,
    config: JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>,
    pixelValues: get('pixel_values') as HostTensor<'float32'>,
    gridThw,
    grid: Array.from({ length: values.length / 3 }, (_, i) => values.slice(3 * i, 3 * i + 3) as unknown as GridRow),
    imageEmbeds: get('expected.image_embeds').data as Float32Array,
    debug,
    weights: await loadWeights(join(dir, 'model.safetensors')),
  };
}

/** Builds a graph from checkpoint `dir` (strict binding, float32 source), saves and opens it. */
export async function sessionOf(t: ExecutionContext, dir: string, dtype: 'float32' | 'float16', build: (params: ReturnType<typeof checkpointParameters>) => GraphBuilder): Promise<Session> {
  const params = checkpointParameters(await Checkpoint.open(dir), dtype);
  const g = build(params);
  params.finish();
  const path = join(await tempDir(t), 'model.onnx');
  await saveModel(g, path, { opset: TEST_OPSET });
  const session = await Session.load(path, { threads: 1 });
  t.teardown(() => session.close());
  return session;
}

/** Packs `pixelValues` [N, D] + `grid` into a bucket's fixed shapes: zero rows after N, zero grid rows after I. */
export function padToBucket(
  pixelValues: HostTensor<'float32'>,
  grid: readonly GridRow[],
  maxPatches: number,
  maxItems: number,
): { pixel_values: HostTensor<'float32'>; grid_thw: HostTensor<'int64'> } {
  const width = pixelValues.shape[1]!;
  const pixels = new Float32Array(maxPatches * width);
  pixels.set(pixelValues.data);
  const rows = new BigInt64Array(maxItems * 3);
  rows.set(grid.flat().map(BigInt));
  return { pixel_values: hostTensor('float32', [maxPatches, width], pixels), grid_thw: hostTensor('int64', [maxItems, 3], rows) };
}

/** Every vision tensor of a Qwen2-VL / Qwen2.5-VL tower (spec §2.2/§2.3; names without the prefix). */
export function qwen2TensorShapes(c: Qwen2ReferenceConfig): [string, number[]][] {
  const E = c.hidden;
  const I = c.intermediate;
  const out: [string, number[]][] = [['patch_embed.proj.weight', [E, 3, 2, 14, 14]]];
  const norm = (name: string): [string, number[]][] =>
    c.family === 'qwen2_vl'
      ? [
          [`${name}.weight`, [E]],
          [`${name}.bias`, [E]],
        ]
      : [[`${name}.weight`, [E]]];
  const linear = (name: string, o: number, i: number): [string, number[]][] => [
    [`${name}.weight`, [o, i]],
    [`${name}.bias`, [o]],
  ];
  for (let b = 0; b < c.depth; b++) {
    const p = `blocks.${b}`;
    out.push(...norm(`${p}.norm1`), ...linear(`${p}.attn.qkv`, 3 * E, E), ...linear(`${p}.attn.proj`, E, E), ...norm(`${p}.norm2`));
    if (c.family === 'qwen2_vl') out.push(...linear(`${p}.mlp.fc1`, I, E), ...linear(`${p}.mlp.fc2`, E, I));
    else out.push(...linear(`${p}.mlp.gate_proj`, I, E), ...linear(`${p}.mlp.up_proj`, I, E), ...linear(`${p}.mlp.down_proj`, E, I));
  }
  out.push(...norm('merger.ln_q'), ...linear('merger.mlp.0', 4 * E, 4 * E), ...linear('merger.mlp.2', c.out, 4 * E));
  return out;
}

/**
 * Writes `config.json` + `model.safetensors` (F32, names under `visual.` as the released
 * checkpoints store them) with random weights at the goldens' scale: linear ~N(0, 1/fan_in),
 * biases ~0.05, norm scales 1 ± 0.2. Returns the weights (float32 values as float64) by stripped name.
 */
export async function writeQwen2Checkpoint(dir: string, config: Record<string, unknown>, seed: number): Promise<Map<string, Float64Array>> {
  const gauss = normal(rng(seed));
  const weights = new Map<string, Float64Array>();
  const tensors = new Map<string, HostTensor>();
  for (const [name, shape] of qwen2TensorShapes(qwen2ReferenceConfig(config))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? n / shape[0]! : 1;
    const scale = (z: number): number => (/(norm\d|ln_q)\.weight$/.test(name) ? 1 + 0.2 * z : name.endsWith('.bias') ? 0.05 * z : z / Math.sqrt(fanIn));
    const values = Float32Array.from({ length: n }, () => scale(gauss()));
    weights.set(name, Float64Array.from(values));
    tensors.set(`visual.${name}`, hostTensor('float32', shape, values));
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return weights;
}

/** Random pixel rows (unit normal, float32) of width 1176 for `grid`. */
export function randomQwen2Inputs(grid: readonly GridRow[], seed: number): HostTensor<'float32'> {
  const n = grid.reduce((s, [t, h, w]) => s + t * h * w, 0);
  const gauss = normal(rng(seed));
  return hostTensor('float32', [n, 1176], Float32Array.from({ length: n * 1176 }, gauss));
}
