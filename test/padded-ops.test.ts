// The padded bucket graphs exist to be captured as CUDA graphs, so every node must have an ORT
// CUDA kernel for the dtypes it runs in, and nothing may make shapes data-dependent. This walks the
// op histogram of the padded graph (float32 and float16 weights) and fails on any op outside the
// allowlist below, and on any control-flow or data-dependent-shape op.
//
// Sources for the kernel column: the registrations in `core/providers/cuda/cuda_execution_provider.cc`
// as read in stored ORT snapshots (opsets ≤ 19: Where-16, GreaterOrEqual-16, Equal-13, Less-13,
// Max/Min-13, Mod-13, CumSum-14, ReduceSum-13 incl. int64, Floor-13, Cos/Sin-7, Cast-19,
// LayerNormalization-17, Split-18, Gather-13, Concat-13, Squeeze/Unsqueeze-13, Reshape-19,
// Shape-19, Identity-19, ConstantOfShape-9) and notes/ort-runtime.md §3 (Gelu-20,
// LayerNormalization, MultiHeadAttention, RotaryEmbedding).
// CAVEAT for all rows: the graphs declare ai.onnx opset 21, and the snapshots read end at opset 19,
// so whether the pinned ORT registers opset-21 CUDA kernels for Squeeze/Unsqueeze/Reshape/Shape/
// Cast/Identity was NOT verified from source (a node without one silently runs on the CPU EP). A GPU
// check should load a bucket with the session config `session.disable_cpu_ep_fallback = 1`, which
// fails loudly when any node lands on the CPU.

import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelToBytes } from '../src/onnx/index.js';
import { inspectModel } from '../src/onnx/inspect.js';
import { buildPaddedGraph, buildDynamicGraph, parseConfig } from '../graphs/qwen3-vl/index.js';
import { bucket } from '../src/runtime/buckets.js';
import { zeroParameters } from '../src/export/model-directory.js';
import * as qwen2 from '../graphs/qwen2-vl/index.js';
import * as qwen25 from '../graphs/qwen2.5-vl/index.js';
import { tempDir } from './helpers/files.js';
import { configJson } from './helpers/random.js';

interface CudaKernel {
  /** The ORT CUDA kernel (op-version, the type constraint it needs here). */
  readonly kernel: string;
  readonly note?: string;
}

/** Every op a padded graph may contain, with the CUDA kernel it relies on. */
const PADDED_OP_ALLOWLIST: Readonly<Record<string, CudaKernel>> = {
  Gemm: { kernel: 'Gemm-13 float, MLFloat16 (cuBLAS)', note: 'every linear layer, transB = 1' },
  Add: { kernel: 'Add-14 float, MLFloat16, int64' },
  Sub: { kernel: 'Sub-14 float, MLFloat16, int64' },
  Mul: { kernel: 'Mul-14 float, MLFloat16, int64' },
  Div: { kernel: 'Div-14 float, int64', note: 'int64 division of patch indexes (layout), float for sampling coordinates' },
  Mod: { kernel: 'Mod-13 int64 (fmod = 0)', note: 'patch → frame/window arithmetic' },
  Max: { kernel: 'Max-13 float, int64', note: 'divisor clamps ≥ 1' },
  Min: { kernel: 'Min-13 float, int64' },
  Cast: { kernel: 'Cast-19 (bool, int64, float, MLFloat16)', note: 'opset-21 registration not verified (see header)' },
  Equal: { kernel: 'Equal-13 int64', note: 'segment ids → block-diagonal bias' },
  Less: { kernel: 'Less-13 int64' },
  GreaterOrEqual: { kernel: 'GreaterOrEqual-16 int64' },
  And: { kernel: 'And-7 bool' },
  Or: { kernel: 'Or-7 bool', note: 'NaN ∨ Inf of K and V (item isolation)' },
  IsNaN: { kernel: 'IsNaN-20 float, MLFloat16 (onnxruntime#19807, ORT ≥ 1.18)', note: 'item isolation: non-finite K, V → 0 before the fused attention' },
  IsInf: { kernel: 'IsInf-20 float, MLFloat16 (onnxruntime#19772, ORT ≥ 1.18)', note: 'item isolation, as IsNaN' },
  Where: { kernel: 'Where-16 float, MLFloat16, int64', note: 'not bool-valued: the graph selects numbers only' },
  Gather: { kernel: 'Gather-13 (any T, int64 indices)', note: 'position table rows, rotate-half permutation, per-item grid values' },
  Split: { kernel: 'Split-18 (sizes as an initializer input)' },
  Squeeze: { kernel: 'Squeeze-13 (axes input)', note: 'opset-21 registration not verified (see header)' },
  Unsqueeze: { kernel: 'Unsqueeze-13 (axes input)', note: 'opset-21 registration not verified (see header)' },
  Reshape: { kernel: 'Reshape-19 (shape input in CPU memory; always an initializer here)', note: 'opset-21 registration not verified' },
  Concat: { kernel: 'Concat-13' },
  CumSum: { kernel: 'CumSum-14 int64', note: 'item starts/ends and segment ids' },
  ReduceSum: { kernel: 'ReduceSum-13 float, int64 (axes input)', note: 'grid totals and token_count; Σx² of RMSNorm (float32)' },
  Floor: { kernel: 'Floor-13 float', note: 'sampling coordinates stay float32 in the float16 graph' },
  Sqrt: { kernel: 'Sqrt-13 float', note: 'RMSNorm (Qwen2.5-VL), statistics in float32' },
  Sigmoid: { kernel: 'Sigmoid-13 float, MLFloat16', note: 'QuickGELU (Qwen2-VL), SiLU (Qwen2.5-VL)' },
  Cos: { kernel: 'Cos-7 float' },
  Sin: { kernel: 'Sin-7 float' },
  LayerNormalization: { kernel: 'LayerNormalization-17 float, MLFloat16 (U = float)', note: 'stash_type 1: float32 statistics' },
  Gelu: { kernel: 'Gelu-20 float, MLFloat16 (tanh → FastGelu kernel)', note: 'no bf16 kernel (ort-runtime.md §3)' },
  'com.microsoft::MultiHeadAttention': {
    kernel: 'contrib MultiHeadAttention float, MLFloat16 with attention_bias [1, 1, S, S]',
    note: 'memory-efficient kernel needs S % (4·sizeof(T)) == 0 for the bias (fp32: S % 16, fp16: S % 8) and head_dim % 8 == 0; otherwise the unfused kernel (ort-runtime.md §3)',
  },
  'com.microsoft::RotaryEmbedding': {
    kernel: 'contrib RotaryEmbedding float, MLFloat16, BFloat16 (ort-runtime.md §3, read)',
    note: 'interleaved = 0 with per-patch caches [Nmax, head_dim/2] and position_ids = 0..Nmax−1; runs in float32 here (cast around it in the float16 graph)',
  },
  Identity: { kernel: 'Identity-19', note: 'output renames' },
  ConstantOfShape: {
    kernel: 'ConstantOfShape-9',
    note: 'towers without deepstack (K = 0) only: the empty [0, Nmax/4, O] output, its shape from Shape of a static tensor (constant-folded)',
  },
  Shape: {
    kernel: 'Shape-19 (output in CPU memory)',
    note: 'only Shape(grid_thw), whose input shape is static: ORT constant-folds it away before placement',
  },
};

/** Ops that make a graph un-capturable or its shapes data-dependent. */
const FORBIDDEN = ['Loop', 'If', 'Scan', 'NonZero', 'Range', 'Expand', 'Tile'] as const;

const spec = (deepstack: number[]) => ({
  depth: 2,
  hidden_size: 64,
  intermediate_size: 96,
  num_heads: 4,
  out_hidden_size: 48,
  num_position_embeddings: 2304,
  deepstack_visual_indexes: deepstack,
  hidden_act: 'gelu_pytorch_tanh' as const,
});
const TINY = configJson(spec([0]));
const NO_DEEPSTACK = configJson(spec([]));

for (const [dtype, config] of [
  ['float32', TINY],
  ['float16', TINY],
  ['float32', NO_DEEPSTACK],
] as const) {
  test(`padded graph (${dtype}, ${config === TINY ? 'one deepstack merger' : 'no deepstack'}) uses only ops with a documented CUDA kernel, and no control flow`, async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'padded.onnx');
    const g = buildPaddedGraph(parseConfig(config), zeroParameters, bucket(256), { dtype });
    await writeFile(path, await modelToBytes(g, { opset: 21 }));
    const { ops, opsets } = await inspectModel(path);
    t.log(
      `ops: ${Object.entries(ops)
        .map(([op, n]) => `${op}×${n}`)
        .join(' ')}`,
    );
    const outside = Object.keys(ops).filter((op) => !(op in PADDED_OP_ALLOWLIST));
    t.deepEqual(outside, [], `ops without a documented CUDA kernel: ${outside.join(', ')}`);
    for (const op of FORBIDDEN) t.is(ops[op], undefined, `${op} in a padded graph`);
    t.deepEqual(opsets, { '': 21, 'com.microsoft': 1 });
    // The attention that makes the padded variant worth having is the fused one, once per block.
    t.is(ops['com.microsoft::MultiHeadAttention'], 2);
    t.is(ops.ConstantOfShape, config === NO_DEEPSTACK ? 1 : undefined);
    t.is(ops.Softmax, undefined, 'no decomposed attention');
  });
}

// Qwen2-VL (one frame bias) and Qwen2.5-VL (window and frame biases): same contract, no deepstack.
const QWEN2 = { vision_config: { depth: 2, embed_dim: 64, num_heads: 4, mlp_ratio: 1.5, hidden_size: 48 } };
const QWEN25 = { vision_config: { depth: 2, hidden_size: 64, num_heads: 4, intermediate_size: 96, out_hidden_size: 48, fullatt_block_indexes: [1] } };
for (const dtype of ['float32', 'float16'] as const) {
  for (const [name, build] of [
    ['Qwen2-VL', () => qwen2.buildPaddedGraph(qwen2.parseConfig(QWEN2), zeroParameters, bucket(256), { dtype })],
    ['Qwen2.5-VL', () => qwen25.buildPaddedGraph(qwen25.parseConfig(QWEN25), zeroParameters, bucket(256), { dtype })],
  ] as const) {
    test(`${name} padded graph (${dtype}) uses only ops with a documented CUDA kernel, and no control flow`, async (t) => {
      const path = join(await tempDir(t), 'padded.onnx');
      await writeFile(path, await modelToBytes(build(), { opset: 21 }));
      const { ops } = await inspectModel(path);
      t.log(
        `ops: ${Object.entries(ops)
          .map(([op, n]) => `${op}×${n}`)
          .join(' ')}`,
      );
      t.deepEqual(
        Object.keys(ops).filter((op) => !(op in PADDED_OP_ALLOWLIST)),
        [],
      );
      for (const op of FORBIDDEN) t.is(ops[op], undefined, `${op} in a padded graph`);
      t.is(ops['com.microsoft::MultiHeadAttention'], 2, 'one fused attention per block');
      t.is(ops.IsNaN, 4, 'K and V of each of the 2 blocks made finite');
      t.is(ops.Softmax, undefined, 'no decomposed attention');
    });
  }
}

test('the allowlist check can fail: the dynamic graph holds Loop, NonZero and Range', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'dynamic.onnx');
  await writeFile(path, await modelToBytes(buildDynamicGraph(parseConfig(TINY), zeroParameters), { opset: 21 }));
  const { ops } = await inspectModel(path);
  const outside = Object.keys(ops).filter((op) => !(op in PADDED_OP_ALLOWLIST));
  for (const op of ['Loop', 'NonZero', 'Range']) t.true(outside.includes(op), `${op} flagged`);
});
