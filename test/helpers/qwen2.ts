// The Qwen2-VL / Qwen2.5-VL encoder fixtures (fixtures/encoder/{qwen2vl_tiny,qwen2_5vl_tiny}, see
// its README.md) and the graph plumbing their tests share: build with checkpoint weights, save,
// run on onnxruntime-node.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { GraphBuilder } from '../../src/onnx/index.js';
import { saveModel } from '../../src/onnx/index.js';
import { Session } from '../../src/runtime/session.js';
import { hostTensor, type HostTensor } from '../../src/tensor.js';
import { Checkpoint, readSafetensors } from '../../src/weights/index.js';
import { checkpointParameters } from '../../graphs/qwen3-vl/checkpoint.js';
import type { GridRow } from '../reference/qwen3vl.js';
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
export function padToBucket(pixelValues: HostTensor<'float32'>, grid: readonly GridRow[], maxPatches: number, maxItems: number): { pixel_values: HostTensor<'float32'>; grid_thw: HostTensor<'int64'> } {
  const width = pixelValues.shape[1]!;
  const pixels = new Float32Array(maxPatches * width);
  pixels.set(pixelValues.data);
  const rows = new BigInt64Array(maxItems * 3);
  rows.set(grid.flat().map(BigInt));
  return { pixel_values: hostTensor('float32', [maxPatches, width], pixels), grid_thw: hostTensor('int64', [maxItems, 3], rows) };
}
