// The encoder's cases for scripts/gpu-check.ts (the one-burst GPU check):
// - goldens: the tiny towers through exact-size buckets (multi-item: block-diagonal bias;
//   one-item: key length), exported for CPU and for CUDA, fp32/fp16/bf16, plus fp32 with TF32 on
//   (informational: its error is what the README quotes);
// - latency: the 2B-shape Qwen3-VL tower (random weights) per image side, one image per bucket,
//   in each dtype and form, TF32 and attention-kernel variants, and 16 × 448² in one bucket.
// No onnxruntime-node or sharp here: on the GPU machine only the native addon and protobuf
// packages are carried. Exports are skipped when the file is already in the work directory, so
// a second pass (the serialized profile) reuses the first one's.

import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IO } from '../graphs/qwen3-vl/io.js';
import { exportModel, synthCheckpoint } from '../index.js';
import type { Bucket, OutputSpec } from '../src/model.js';
import { gatherSlots, padInputs, unitsOf, type GridRow, type Unit } from '../src/runtime/buckets.js';
import { hostTensor, type HostTensor } from '../src/tensor.js';
import { readSafetensors, writeSafetensors } from '../src/weights/index.js';
import { qwen2ReferenceConfig, qwen2ReferenceForward } from '../test/reference/qwen2vl.js';
import type { NativeTensorData } from '../src/runtime/native/index.js';
import type { CheckCase, CheckCaseEntry, CheckCaseOptions, CheckCaseSource, CheckDtype, CheckSessionVariant } from './gpu-check.models.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/encoder/', import.meta.url));
const PATCH_DIM = 1536; // the 2B tower: 3 · 2 · 16²
const OUT_WIDTH = 2048;
const DEEPSTACK = 3;

/** fp32 must match the float64 reference like the CPU path; half precision within its own. */
const TOLERANCE: Readonly<Record<CheckDtype, { atol: number; rtol: number }>> = {
  float32: { atol: 1e-4, rtol: 0 },
  float16: { atol: 1e-2, rtol: 1e-2 },
  bfloat16: { atol: 5e-2, rtol: 5e-2 },
};

/** The device a case's graph is exported for (export --device). */
type Form = 'cuda' | 'cpu';

const short = (d: CheckDtype): string => ({ float32: 'fp32', float16: 'fp16', bfloat16: 'bf16' })[d];
const rowsOf = (flat: readonly number[]): GridRow[] => Array.from({ length: flat.length / 3 }, (_, i) => [flat[3 * i]!, flat[3 * i + 1]!, flat[3 * i + 2]!]);
const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** Every frame group as its own unit: exact in every tower, and what CUDA-form buckets take. */
const frameUnits = (grid: readonly GridRow[]): Unit[] =>
  unitsOf(grid).flatMap((u) =>
    Array.from({ length: u.grid[0] }, (_, f) => ({ grid: [1, u.grid[1], u.grid[2]] as GridRow, firstRow: u.firstRow + f * u.grid[1] * u.grid[2], rows: u.grid[1] * u.grid[2] })),
  );

async function exportOnce(model: string, out: string, bucket: Bucket, dtype: CheckDtype, form: Form): Promise<void> {
  if (await exists(out)) return;
  await exportModel({ model, out, variant: 'padded', maxPatches: [bucket.maxPatches], maxItems: bucket.maxItems, dtype, device: form, externalData: 'always', overwrite: true });
}

/** An output the golden cases compare: its token axis and how many [tokens, width] blocks it holds. */
interface ComparedOutput extends OutputSpec {
  readonly blocks: number;
}

/**
 * A bucket for `units` in `form`: exact size when packed; for CUDA with several units, slotted
 * (src/contract.ts): one slot per unit of the largest unit's rows, and a gather (the runtime's own
 * `gatherSlots`) that puts the real output rows back in item order.
 */
function bucketFor(units: readonly Unit[], form: Form, compared: readonly ComparedOutput[], mergeUnit = 4): { bucket: Bucket; slot?: number; gather?: CheckCase['gather'] } {
  const rows = units.reduce((n, u) => n + u.rows, 0);
  if (form !== 'cuda' || units.length === 1) return { bucket: { maxPatches: rows, maxItems: units.length } };
  const slot = Math.max(...units.map((u) => u.rows));
  const slotTokens = slot / mergeUnit;
  const tokens = units.length * slotTokens;
  const gather = (outputs: Record<string, NativeTensorData>): Record<string, NativeTensorData> => {
    const tensors = Object.fromEntries(
      compared.map(({ name, tokenAxis, blocks }) => {
        const data = outputs[name] as Float32Array;
        const width = data.length / blocks / tokens;
        return [name, hostTensor('float32', tokenAxis === 0 ? [tokens, width] : [blocks, tokens, width], data)];
      }),
    );
    const gathered = gatherSlots(
      tensors,
      compared,
      slotTokens,
      units.map((u) => u.rows / mergeUnit),
    );
    return { ...outputs, ...Object.fromEntries(Object.entries(gathered).map(([name, t]) => [name, t.data])) };
  };
  return { bucket: { maxPatches: slot * units.length, maxItems: units.length }, slot, gather };
}

function goldenCase(name: 'tiny' | 'tiny_single', dtype: CheckDtype, form: Form, session?: CheckSessionVariant): CheckCaseEntry {
  const tf32 = session?.tf32 ? ' tf32' : '';
  return {
    name: `golden ${name} ${short(dtype)} ${form}-form${tf32}`,
    kind: 'golden',
    dtype,
    ...(session ? { session } : {}),
    ...(session?.tf32 ? { informational: true } : {}),
    async prepare(dir) {
      const io = await readSafetensors(join(FIXTURES, name, 'io.safetensors'));
      const pixels = io.get(IO.pixelValues) as HostTensor<'float32'>;
      const grid = rowsOf(Array.from(io.get(IO.gridThw)!.data as BigInt64Array, Number));
      const rows = pixels.shape[0]!;
      // A one-item or CUDA bucket takes one frame group per item; multi-item CPU buckets take items as they are.
      const units = form === 'cuda' || grid.length === 1 ? frameUnits(grid) : unitsOf(grid);
      const k = [...io.keys()].filter((key) => key.startsWith('expected.deepstack_embeds.')).length;
      const { bucket, slot, gather } = bucketFor(units, form, [
        { name: IO.imageEmbeds, tokenAxis: 0, blocks: 1 },
        { name: IO.deepstackEmbeds, tokenAxis: 1, blocks: k },
      ]);
      const out = join(dir, `${name}-${dtype}-${form}-${bucket.maxPatches}x${units.length}.onnx`);
      await exportOnce(join(FIXTURES, name), out, bucket, dtype, form);
      const padded = padInputs(pixels.data, pixels.shape[1]!, units, bucket, slot);
      const width = io.get('expected.image_embeds')!.shape[1]!;
      const deep = new Float32Array(k * (rows / 4) * width);
      for (let j = 0; j < k; j++) deep.set(io.get(`expected.deepstack_embeds.${j}`)!.data as Float32Array, (j * deep.length) / k);
      return {
        modelPath: out,
        spec: {
          inputs: { [IO.pixelValues]: { dtype: 'float32', shape: padded.pixels.shape }, [IO.gridThw]: { dtype: 'int64', shape: padded.grid.shape } },
          outputs: {
            [IO.imageEmbeds]: { dtype: 'float32', shape: [bucket.maxPatches / 4, width] },
            [IO.deepstackEmbeds]: { dtype: 'float32', shape: [k, bucket.maxPatches / 4, width] },
            token_count: { dtype: 'int64', shape: [] },
          },
        },
        inputs: { [IO.pixelValues]: padded.pixels.data, [IO.gridThw]: padded.grid.data },
        expected: { [IO.imageEmbeds]: io.get('expected.image_embeds')!.data as Float32Array, [IO.deepstackEmbeds]: deep },
        ...(gather ? { gather } : {}),
        tolerance: session?.tf32 ? { atol: 1e-2, rtol: 0 } : TOLERANCE[dtype],
      };
    },
  };
}

/**
 * The Qwen2.5-VL golden tower with its last down-projection ×4·10⁴: its residual stream passes
 * float16's 65504 (test/half-overflow.test.ts), which a plain half-precision stream turns into
 * ±inf. Expected: the float64 reference of the same weights; half precision within its tolerance.
 */
function overflowCase(dtype: CheckDtype, form: Form): CheckCaseEntry {
  return {
    name: `overflow qwen2.5-vl ${short(dtype)} ${form}-form`,
    kind: 'golden',
    dtype,
    async prepare(dir) {
      const source = join(FIXTURES, 'qwen2_5vl_tiny');
      const ckpt = join(dir, 'ckpt-overflow');
      const config = JSON.parse(await readFile(join(source, 'config.json'), 'utf8')) as Record<string, unknown>;
      const tensors = await readSafetensors(join(source, 'model.safetensors'));
      const reference = qwen2ReferenceConfig(config);
      const last = `model.visual.blocks.${reference.depth - 1}.mlp.down_proj`;
      for (const name of [`${last}.weight`, `${last}.bias`]) {
        const t = tensors.get(name)!;
        tensors.set(name, { ...t, data: (t.data as Float32Array).map((v) => v * 4e4) });
      }
      if (!(await exists(ckpt))) {
        await mkdir(ckpt, { recursive: true });
        await writeSafetensors(join(ckpt, 'model.safetensors'), tensors, { format: 'pt' });
        await writeFile(join(ckpt, 'config.json'), JSON.stringify(config));
      }
      const io = await readSafetensors(join(source, 'io.safetensors'));
      const pixels = io.get(IO.pixelValues) as HostTensor<'float32'>;
      const grid = rowsOf(Array.from(io.get(IO.gridThw)!.data as BigInt64Array, Number));
      const weights = new Map([...tensors].map(([k, t]) => [k.replace(/^model\.visual\./, ''), Float64Array.from(t.data as Float32Array)]));
      const expected = Float32Array.from(qwen2ReferenceForward(reference, weights, pixels.data, grid).imageEmbeds);
      const units = form === 'cuda' ? frameUnits(grid) : unitsOf(grid);
      const { bucket, slot, gather } = bucketFor(units, form, [{ name: IO.imageEmbeds, tokenAxis: 0, blocks: 1 }]);
      const out = join(dir, `overflow-${dtype}-${form}.onnx`);
      await exportOnce(ckpt, out, bucket, dtype, form);
      const padded = padInputs(pixels.data, pixels.shape[1]!, units, bucket, slot);
      const width = io.get('expected.image_embeds')!.shape[1]!;
      return {
        modelPath: out,
        spec: {
          inputs: { [IO.pixelValues]: { dtype: 'float32', shape: padded.pixels.shape }, [IO.gridThw]: { dtype: 'int64', shape: padded.grid.shape } },
          outputs: { [IO.imageEmbeds]: { dtype: 'float32', shape: [bucket.maxPatches / 4, width] }, token_count: { dtype: 'int64', shape: [] } },
        },
        inputs: { [IO.pixelValues]: padded.pixels.data, [IO.gridThw]: padded.grid.data },
        ...(gather ? { gather } : {}),
        expected: { [IO.imageEmbeds]: expected },
        tolerance: TOLERANCE[dtype],
      };
    },
  };
}

interface LatencyVariant {
  side: number;
  dtype: CheckDtype;
  form: Form;
  /** Images of `side`² in one bucket (default 1). */
  images?: number;
  session?: CheckSessionVariant;
  label?: string;
}

function latencyCase({ side, dtype, form, images = 1, session, label }: LatencyVariant): CheckCaseEntry {
  const grid = side / 16;
  const perImage = grid * grid;
  const rows = perImage * images;
  const tag = [images > 1 ? `${images}×` : '', `${side}²`].join('');
  return {
    name: `2b ${tag} ${short(dtype)} ${form}-form${label ? ` ${label}` : ''}`,
    kind: 'latency',
    dtype,
    imageSize: side,
    images,
    ...(session ? { session } : {}),
    async prepare(dir): Promise<CheckCase> {
      const ckpt = join(dir, 'ckpt-2b');
      await readFile(join(ckpt, 'config.json')).catch(() => synthCheckpoint(ckpt, '2b', { overwrite: true }));
      const out = join(dir, `2b-${dtype}-${form}-${rows}x${images}.onnx`);
      await exportOnce(ckpt, out, { maxPatches: rows, maxItems: images }, dtype, form);
      const pixels = new Float32Array(rows * PATCH_DIM).map((_, i) => Math.sin(i * 0.001));
      const gridThw = new BigInt64Array(3 * images);
      for (let i = 0; i < images; i++) gridThw.set([1n, BigInt(grid), BigInt(grid)], 3 * i);
      return {
        modelPath: out,
        spec: {
          inputs: { [IO.pixelValues]: { dtype: 'float32', shape: [rows, PATCH_DIM] }, [IO.gridThw]: { dtype: 'int64', shape: [images, 3] } },
          outputs: {
            [IO.imageEmbeds]: { dtype: 'float32', shape: [rows / 4, OUT_WIDTH] },
            [IO.deepstackEmbeds]: { dtype: 'float32', shape: [DEEPSTACK, rows / 4, OUT_WIDTH] },
            token_count: { dtype: 'int64', shape: [] },
          },
        },
        inputs: { [IO.pixelValues]: pixels, [IO.gridThw]: gridThw },
      };
    },
  };
}

/** ORT's attention backends (provider option sdpa_kernel, a bit mask): which one MultiHeadAttention may use. */
const SDPA = { flash: '1', efficient: '2', cudnn: '8' } as const;

export const checkSource: CheckCaseSource = {
  name: 'qwen3-vl vision (tiny goldens; 2B shape, random weights)',
  cases({ device, sizes, dtypes }: CheckCaseOptions): CheckCaseEntry[] {
    const goldens: CheckCaseEntry[] = [];
    for (const dtype of dtypes) {
      // bf16 graphs are CUDA-only; the CPU form is what CPUs (and the CPU check) run.
      const forms: Form[] = device === 'cuda' ? (dtype === 'bfloat16' ? ['cuda'] : ['cpu', 'cuda']) : dtype === 'bfloat16' ? [] : ['cpu'];
      for (const form of forms) goldens.push(goldenCase('tiny', dtype, form), goldenCase('tiny_single', dtype, form));
    }
    if (device === 'cuda' && dtypes.includes('float32')) goldens.push(goldenCase('tiny', 'float32', 'cpu', { tf32: true }));
    for (const dtype of dtypes) if (device === 'cuda' || dtype !== 'bfloat16') goldens.push(overflowCase(dtype, device === 'cuda' ? 'cuda' : 'cpu'));

    const latency: CheckCaseEntry[] = [];
    const form: Form = device === 'cuda' ? 'cuda' : 'cpu';
    for (const dtype of dtypes) {
      if (dtype === 'bfloat16' && device !== 'cuda') continue;
      for (const side of sizes) latency.push(latencyCase({ side, dtype, form }));
    }
    if (device === 'cuda') {
      const big = sizes.filter((s) => s >= 1024);
      if (dtypes.includes('float16') && sizes.includes(448)) latency.push(latencyCase({ side: 448, dtype: 'float16', form, images: 16 }));
      if (dtypes.includes('float32')) for (const side of big) latency.push(latencyCase({ side, dtype: 'float32', form, session: { tf32: true }, label: 'tf32' }));
      if (dtypes.includes('float16')) {
        // One-item buckets attend with MultiHeadAttention and a key length: each backend ORT has for it.
        const largest = Math.max(...sizes);
        for (const [name, mask] of Object.entries(SDPA)) latency.push(latencyCase({ side: largest, dtype: 'float16', form, session: { cudaOptions: { sdpa_kernel: mask } }, label: `sdpa=${name}` }));
      }
    }
    return [...goldens, ...latency];
  },
};
