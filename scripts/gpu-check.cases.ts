// The encoder's cases for scripts/gpu-check.ts (the one-burst GPU check): the tiny goldens
// through exact-size padded buckets at fp32 and fp16, and latency of the 2B-shape tower
// (random weights) at each image side in its own bucket. No onnxruntime-node or sharp here:
// on the GPU machine only the native addon and protobuf packages are carried.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IO } from '../graphs/qwen3-vl/io.js';
import { exportModel, synthCheckpoint } from '../index.js';
import { padInputs, unitsOf, type GridRow } from '../src/runtime/buckets.js';
import type { HostTensor } from '../src/tensor.js';
import { readSafetensors } from '../src/weights/index.js';
import type { CheckCaseEntry, CheckCaseOptions, CheckCaseSource, CheckDtype } from './gpu-check.models.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/encoder/', import.meta.url));

/** fp32 must match the float64 reference like the CPU path; fp16 within its precision. */
const TOLERANCE: Readonly<Record<CheckDtype, { atol: number; rtol: number }>> = {
  float32: { atol: 1e-4, rtol: 0 },
  float16: { atol: 1e-2, rtol: 1e-2 },
};

const rowsOf = (flat: readonly number[]): GridRow[] => Array.from({ length: flat.length / 3 }, (_, i) => [flat[3 * i]!, flat[3 * i + 1]!, flat[3 * i + 2]!]);

function goldenCase(name: 'tiny' | 'tiny_single', dtype: CheckDtype): CheckCaseEntry {
  return {
    name: `golden ${name} ${dtype === 'float32' ? 'fp32' : 'fp16'}`,
    kind: 'golden',
    dtype,
    async prepare(dir) {
      const io = await readSafetensors(join(FIXTURES, name, 'io.safetensors'));
      const pixels = io.get(IO.pixelValues) as HostTensor<'float32'>;
      const grid = Array.from(io.get(IO.gridThw)!.data as BigInt64Array, Number);
      const rows = pixels.shape[0]!;
      const bucket = { maxPatches: rows, maxItems: grid.length / 3 }; // exact size: every output row is real
      const out = join(dir, `${name}-${dtype}-${rows}.onnx`);
      await exportModel({ model: join(FIXTURES, name), out, variant: 'padded', maxPatches: [rows], maxItems: bucket.maxItems, dtype, overwrite: true });
      const padded = padInputs(pixels.data, pixels.shape[1]!, unitsOf(rowsOf(grid)), bucket);
      const k = [...io.keys()].filter((key) => key.startsWith('expected.deepstack_embeds.')).length;
      const deep = new Float32Array(k * (rows / 4) * (io.get('expected.image_embeds')!.shape[1] ?? 0));
      for (let j = 0; j < k; j++) deep.set(io.get(`expected.deepstack_embeds.${j}`)!.data as Float32Array, (j * deep.length) / k);
      return {
        modelPath: out,
        spec: {
          inputs: { [IO.pixelValues]: { dtype: 'float32', shape: padded.pixels.shape }, [IO.gridThw]: { dtype: 'int64', shape: padded.grid.shape } },
          outputs: {
            [IO.imageEmbeds]: { dtype: 'float32', shape: [rows / 4, io.get('expected.image_embeds')!.shape[1]!] },
            [IO.deepstackEmbeds]: { dtype: 'float32', shape: [k, rows / 4, io.get('expected.image_embeds')!.shape[1]!] },
            token_count: { dtype: 'int64', shape: [] },
          },
        },
        inputs: { [IO.pixelValues]: padded.pixels.data, [IO.gridThw]: padded.grid.data },
        expected: { [IO.imageEmbeds]: io.get('expected.image_embeds')!.data as Float32Array, [IO.deepstackEmbeds]: deep },
        tolerance: TOLERANCE[dtype],
      };
    },
  };
}

function latencyCase(side: number, dtype: CheckDtype): CheckCaseEntry {
  const grid = side / 16;
  const rows = grid * grid;
  return {
    name: `2b ${side}² ${dtype === 'float32' ? 'fp32' : 'fp16'}`,
    kind: 'latency',
    dtype,
    imageSize: side,
    async prepare(dir) {
      const ckpt = join(dir, 'ckpt-2b');
      await readFile(join(ckpt, 'config.json')).catch(() => synthCheckpoint(ckpt, '2b', { overwrite: true }));
      const out = join(dir, `2b-${dtype}-${rows}.onnx`);
      await exportModel({ model: ckpt, out, variant: 'padded', maxPatches: [rows], maxItems: 1, dtype, externalData: 'always', overwrite: true });
      const pixels = new Float32Array(rows * 1536).map((_, i) => Math.sin(i * 0.001));
      return {
        modelPath: out,
        spec: {
          inputs: { [IO.pixelValues]: { dtype: 'float32', shape: [rows, 1536] }, [IO.gridThw]: { dtype: 'int64', shape: [1, 3] } },
          outputs: {
            [IO.imageEmbeds]: { dtype: 'float32', shape: [rows / 4, 2048] },
            [IO.deepstackEmbeds]: { dtype: 'float32', shape: [3, rows / 4, 2048] },
            token_count: { dtype: 'int64', shape: [] },
          },
        },
        inputs: { [IO.pixelValues]: pixels, [IO.gridThw]: BigInt64Array.of(1n, BigInt(grid), BigInt(grid)) },
      };
    },
  };
}

export const checkSource: CheckCaseSource = {
  name: 'qwen3-vl vision (tiny goldens; 2B shape, random weights)',
  cases({ sizes, dtypes }: CheckCaseOptions): CheckCaseEntry[] {
    return [
      ...dtypes.flatMap((d) => [goldenCase('tiny', d), goldenCase('tiny_single', d)]),
      ...dtypes.flatMap((d) => sizes.map((s) => latencyCase(s, d))),
    ];
  },
};
