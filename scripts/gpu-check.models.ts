// What scripts/gpu-check.ts runs, and a small synthetic stand-in for the real encoder graphs.
//
// The check is model-agnostic: a "case source" module hands it ONNX files plus one static shape set
// (bucket) each, with inputs and, for golden cases, expected outputs. The encoder's source lives
// next to its graphs (default module dist/scripts/gpu-check.cases.js, export `checkSource`);
// `syntheticSource` below needs nothing but onnx-proto, so the check's harness runs anywhere.
// The same tiny model writers serve test/native.test.ts.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

import type { NativeBindingSpec, NativeTensorData } from '../src/runtime/native/index.js';
import { uniformFloats } from '../src/random.js';
import { numel } from '../src/tensor.js';
import { f32ToF16 } from '../src/dtype.js';

const { onnx } = onnxProto;

// ---------------------------------------------------------------------------------------------
// The interface a case source implements

export type CheckDtype = 'float32' | 'float16' | 'bfloat16';

/** How a case's sessions are made beyond the device: TF32 and extra CUDA provider options. */
export interface CheckSessionVariant {
  tf32?: boolean;
  cudaOptions?: Record<string, string>;
}

/** One bucket of one model: an ONNX file, the static shapes to bind, and the data to feed. */
export interface CheckCase {
  modelPath: string;
  spec: NativeBindingSpec;
  inputs: Record<string, NativeTensorData>;
  /** Golden cases: reference outputs as float32 (compared after widening fp16 outputs). */
  expected?: Record<string, Float32Array>;
  /** Golden cases of a slotted bucket: the outputs' real rows in item order, before they are compared. */
  gather?: (outputs: Record<string, NativeTensorData>) => Record<string, NativeTensorData>;
  /** Agreement required with `expected`: |got − want| ≤ atol + rtol·|want| everywhere. */
  tolerance?: { atol: number; rtol: number };
}

/** A case the check may run; `prepare` writes its files only when the check gets to it. */
export interface CheckCaseEntry {
  /** Short unique label, e.g. "tiny fp32" or "2b 448² fp16". */
  name: string;
  kind: 'golden' | 'latency';
  dtype: CheckDtype;
  /** Image side in pixels, for latency cases (224, 448, 1024, 2048). */
  imageSize?: number;
  /** Images per run (latency cases; default 1). */
  images?: number;
  /** Session variant (default: the device's defaults, TF32 off). */
  session?: CheckSessionVariant;
  /** Golden cases only reported, never failing the check (e.g. TF32's error, measured for the README). */
  informational?: boolean;
  /** Writes the model (cases sharing a modelPath share one session) and returns the case. */
  prepare(dir: string): Promise<CheckCase>;
}

export interface CheckCaseOptions {
  device: 'cpu' | 'cuda';
  /** Image sides wanted for latency cases. */
  sizes: number[];
  dtypes: CheckDtype[];
}

/**
 * What a case source module exports as `checkSource`. It must not import onnxruntime-node or
 * sharp at module load: on the GPU machine the check runs with only the packages it carries.
 */
export interface CheckCaseSource {
  readonly name: string;
  cases(options: CheckCaseOptions): CheckCaseEntry[] | Promise<CheckCaseEntry[]>;
}

// ---------------------------------------------------------------------------------------------
// Tiny ONNX models written with onnx-proto

type Dim = number | string;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;
const INT64 = onnx.TensorProto.DataType.INT64;

function io(name: string, elemType: number, shape: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function floatInit(name: string, dims: number[], data: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function int64Init(name: string, dims: number[], data: BigInt64Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: INT64, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function node(opType: string, input: string[], output: string[], attribute: onnxProto.onnx.IAttributeProto[] = []): onnxProto.onnx.INodeProto {
  return { name: `${opType}_${output[0]}`, opType, input, output, attribute };
}

const intAttr = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });

async function writeModel(path: string, graph: onnxProto.onnx.IGraphProto): Promise<string> {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'vitgraph-tests',
    opsetImport: [{ domain: '', version: 17 }],
    graph,
  });
  await writeFile(path, onnx.ModelProto.encode(model).finish());
  return path;
}

/** Deterministic values in [-1, 1) (mulberry32), so tests and checks are reproducible. */
export function seededFloats(length: number, seed: number): Float32Array {
  return uniformFloats(length, seed);
}

export interface AffineModel {
  path: string;
  k: number;
  n: number;
  weight: Float32Array; // [k, n]
  bias: Float32Array; // [n]
}

/** y[batch, n] = x[batch, k] · W + b (MatMul + Add, opset 17); batch is the symbolic dim "batch" unless given. */
export async function writeAffineModel(dir: string, k = 8, n = 5, seed = 1, batch: Dim = 'batch'): Promise<AffineModel> {
  const weight = seededFloats(k * n, seed);
  const bias = seededFloats(n, seed + 1);
  const path = await writeModel(join(dir, `affine-${batch}x${k}x${n}-${seed}.onnx`), {
    name: 'affine',
    node: [node('MatMul', ['x', 'W'], ['xw']), node('Add', ['xw', 'b'], ['y'])],
    initializer: [floatInit('W', [k, n], weight), floatInit('b', [n], bias)],
    input: [io('x', FLOAT, [batch, k])],
    output: [io('y', FLOAT, [batch, n])],
  });
  return { path, k, n, weight, bias };
}

/** The affine model's exact function in float64, for checking runs: x [batch, k] → [batch, n]. */
export function affineReference(model: AffineModel, x: Float32Array): Float32Array {
  const batch = x.length / model.k;
  const out = new Float32Array(batch * model.n);
  for (let r = 0; r < batch; r++) {
    for (let c = 0; c < model.n; c++) {
      let sum = model.bias[c]!;
      for (let i = 0; i < model.k; i++) sum += x[r * model.k + i]! * model.weight[i * model.n + c]!;
      out[r * model.n + c] = sum;
    }
  }
  return out;
}

/**
 * Two inputs, two outputs, one of each int64:
 * scaled[batch, 4] = x[batch, 4] · 3 (float32);  shifted[batch] = ids[batch] + 7 (int64).
 */
export async function writeTwoInOutModel(dir: string): Promise<string> {
  return writeModel(join(dir, 'two-in-out.onnx'), {
    name: 'two_in_out',
    node: [node('Mul', ['x', 'three'], ['scaled']), node('Add', ['ids', 'seven'], ['shifted'])],
    initializer: [floatInit('three', [], new Float32Array([3])), int64Init('seven', [], new BigInt64Array([7n]))],
    input: [io('x', FLOAT, ['batch', 4]), io('ids', INT64, ['batch'])],
    output: [io('scaled', FLOAT, ['batch', 4]), io('shifted', INT64, ['batch'])],
  });
}

/**
 * A ViT-sized stand-in for latency: rows of `width` features → `layers` × (MatMul, Add, Relu) at
 * `hidden` → y[tokens, hidden]; "tokens" is symbolic, so one file serves every bucket. With
 * float16, input and output are float16 around a float32 body (Cast), which every EP runs.
 */
export async function writeMlpModel(dir: string, opts: { width: number; hidden: number; layers: number; dtype: CheckDtype }): Promise<string> {
  const { width, hidden, layers, dtype } = opts;
  const half = dtype === 'float16';
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const inits: onnxProto.onnx.ITensorProto[] = [];
  let h = 'x';
  if (half) {
    nodes.push(node('Cast', ['x'], ['x32'], [intAttr('to', FLOAT)]));
    h = 'x32';
  }
  for (let l = 0; l < layers; l++) {
    const inDim = l === 0 ? width : hidden;
    const scale = 1 / Math.sqrt(inDim);
    inits.push(
      floatInit(
        `W${l}`,
        [inDim, hidden],
        seededFloats(inDim * hidden, 10 + l).map((v) => v * scale),
      ),
    );
    inits.push(
      floatInit(
        `b${l}`,
        [hidden],
        seededFloats(hidden, 100 + l).map((v) => v * 0.1),
      ),
    );
    nodes.push(node('MatMul', [h, `W${l}`], [`m${l}`]), node('Add', [`m${l}`, `b${l}`], [`a${l}`]), node('Relu', [`a${l}`], [`h${l}`]));
    h = `h${l}`;
  }
  nodes.push(half ? node('Cast', [h], ['y'], [intAttr('to', FLOAT16)]) : node('Identity', [h], ['y']));
  return writeModel(join(dir, `mlp-${width}-${hidden}x${layers}-${dtype}.onnx`), {
    name: 'mlp',
    node: nodes,
    initializer: inits,
    input: [io('x', half ? FLOAT16 : FLOAT, ['tokens', width])],
    output: [io('y', half ? FLOAT16 : FLOAT, ['tokens', hidden])],
  });
}

// ---------------------------------------------------------------------------------------------
// The synthetic case source

const PATCH = 16; // pixels per patch side, as in Qwen-VL ViTs
const PATCH_FEATURES = 1536; // C·Tp·P² = 3·2·16·16

/**
 * Golden: the affine model against its float64 reference (fp32; fp16 data through the MLP is not
 * golden). Latency: the MLP stand-in with one row per 16×16 patch of a size² image.
 */
export const syntheticSource: CheckCaseSource = {
  name: 'synthetic (MatMul/Add/Relu stand-in; not the encoder)',
  cases({ sizes, dtypes }) {
    const golden: CheckCaseEntry = {
      name: 'affine fp32',
      kind: 'golden',
      dtype: 'float32',
      async prepare(dir) {
        const model = await writeAffineModel(dir, 64, 48, 7);
        const x = seededFloats(16 * model.k, 3);
        return {
          modelPath: model.path,
          spec: { inputs: { x: { dtype: 'float32', shape: [16, model.k] } }, outputs: { y: { dtype: 'float32', shape: [16, model.n] } } },
          inputs: { x },
          expected: { y: affineReference(model, x) },
          tolerance: { atol: 1e-5, rtol: 1e-5 },
        };
      },
    };
    const latency = dtypes.flatMap((dtype) =>
      sizes.map(
        (size): CheckCaseEntry => ({
          name: `mlp ${size}² ${dtype === 'float16' ? 'fp16' : 'fp32'}`,
          kind: 'latency',
          dtype,
          imageSize: size,
          async prepare(dir) {
            const modelPath = await writeMlpModel(dir, { width: PATCH_FEATURES, hidden: 256, layers: 4, dtype });
            const tokens = (Math.ceil(size / PATCH) * Math.ceil(size / PATCH)) | 0;
            const shape = [tokens, PATCH_FEATURES];
            const x32 = seededFloats(numel(shape), size);
            return {
              modelPath,
              spec: { inputs: { x: { dtype, shape } }, outputs: { y: { dtype, shape: [tokens, 256] } } },
              inputs: { x: dtype === 'float16' ? f32ToF16(x32) : x32 },
            };
          },
        }),
      ),
    );
    return [golden, ...latency];
  },
};
