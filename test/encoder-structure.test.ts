// Graph structure without weights (STYLE.md point 13): the dynamic and padded graphs of small
// towers built from zero (or patterned) parameters, pinning the I/O contract, the op histogram
// (derived from depth and the deepstack count K), initializer names = checkpoint keys, byte-for-byte
// determinism, external-data layout and the metadata an export records.

import test from 'ava';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { modelToBytes, saveModel, EXTERNAL_ALIGNMENT, type GraphBuilder, type ParameterSource } from '../src/onnx/index.js';
import { inspectModel } from '../src/onnx/inspect.js';
import { BYTES_PER_ELEMENT } from '../src/tensor.js';
import { VITGRAPH_VERSION } from '../src/version.js';
import { buildDynamicGraph, buildPaddedGraph, configToJson, parseConfig } from '../graphs/qwen3-vl/index.js';
import { exportModel } from '../index.js';
import { bucket } from '../src/runtime/buckets.js';
import { zeroParameters } from '../src/export/model-directory.js';
import { loadGolden, tempDir } from './helpers/files.js';
import { configJson, visionTensorShapes, type VisionSpec } from './helpers/random.js';

const { onnx } = onnxProto;

const spec = (depth: number, deepstack: number[]): VisionSpec => ({
  depth,
  hidden_size: 64,
  intermediate_size: 96,
  num_heads: 4,
  out_hidden_size: 80,
  num_position_embeddings: 2304,
  deepstack_visual_indexes: deepstack,
  hidden_act: 'gelu_pytorch_tanh',
});
const TINY = spec(3, [0, 1]); // the golden tower's shape
const configOf = (v: VisionSpec) => parseConfig(configJson(v));

type Histogram = Record<string, number>;

/** Σ kᵢ·hᵢ, dropping zero counts. */
function combine(...terms: [Histogram, number][]): Histogram {
  const out: Histogram = {};
  for (const [h, k] of terms) for (const [op, n] of Object.entries(h)) out[op] = (out[op] ?? 0) + k * n;
  for (const op of Object.keys(out)) if (out[op] === 0) delete out[op];
  return out;
}

/** Op counts of a built graph, control-flow bodies included. */
function histogram(g: GraphBuilder): Histogram {
  const out: Histogram = {};
  const walk = (nodes: GraphBuilder['nodes']): void => {
    for (const n of nodes) {
      const key = n.domain ? `${n.domain}::${n.opType}` : n.opType;
      out[key] = (out[key] ?? 0) + 1;
      for (const a of n.attributes.values()) if (typeof a === 'object' && a !== null && 'nodes' in a) walk(a.nodes);
    }
  };
  walk(g.nodes);
  return out;
}

// ---- expected op histograms -----------------------------------------------------------------

/** One block of vision.ts: norm1, qkv Gemm, Split into q/k/v, rotary on q and k, proj Gemm, residual Add, norm2, fc1, Gelu, fc2, residual Add. */
const BLOCK: Histogram = {
  LayerNormalization: 2,
  Gemm: 4, // qkv, proj, fc1, fc2
  Reshape: 2, // qkv [N, 3H] → [1, N, 3H] for the fused ops, attention output back to [N, H]
  Split: 1, // qkv → q, k, v
  Gelu: 1,
  Add: 2, // the two residual Adds
};
/** Rotary on q and on k: com.microsoft::RotaryEmbedding on [1, N, H] (float32: no casts). */
const ROTARY: Histogram = { 'com.microsoft::RotaryEmbedding': 2 };
/** One merger (final or deepstack): norm, the 2×2 grouping Reshape, fc1, erf Gelu, fc2. */
const MERGER: Histogram = { LayerNormalization: 1, Reshape: 1, Gemm: 2, Gelu: 1 };
/** Output stage: K unsqueezed deepstack blocks concatenated (or an empty [0, N/4, O] for K = 0), 2 renaming Identities. */
const OUTPUTS = (k: number): Histogram => (k > 0 ? { Unsqueeze: k, Concat: 1, Identity: 2 } : { Shape: 1, Concat: 1, ConstantOfShape: 1, Identity: 2 });
/** Attention per block, by formulation. */
const ATTENTION: Record<'looped' | 'dense' | 'padded', Histogram> = {
  // Loop over segments; body: 3 × (2 Gather + 2 Unsqueeze for the bounds, Slice of [1, L, H]), MHA, Concat, 2 output Identities.
  looped: { Loop: 1, Gather: 6, Unsqueeze: 6, Slice: 3, 'com.microsoft::MultiHeadAttention': 1, Concat: 1, Identity: 2 },
  // q·kᵀ·scale + mask → Softmax → ·v with head split/merge Reshapes and Transposes.
  dense: { Reshape: 4, Transpose: 4, MatMul: 2, Mul: 1, Add: 1, Softmax: 1 },
  // MHA with the block-diagonal bias on [1, Nmax, H]; K and V made finite first
  // (Where(IsNaN ∨ IsInf, 0, x): item isolation).
  padded: { 'com.microsoft::MultiHeadAttention': 1, IsNaN: 2, IsInf: 2, Or: 2, Where: 2 },
};
/**
 * Everything independent of depth and K: patch embed (weight Reshape + Gemm), the position-embedding
 * sum, layout.ts (grid → coordinates, taps, rotary tables) and, per variant, the input checks and
 * patch-index Range (dynamic), the segment starts (looped: NonZero), the mask/bias, and token_count
 * (padded). Pinned as measured for this code: a change here should be deliberate.
 */
const FIXED: Record<'looped' | 'dense' | 'padded', Histogram> = {
  looped: {
    Add: 18,
    And: 1,
    Cast: 17,
    Concat: 5,
    Cos: 1,
    CumSum: 3,
    Div: 6,
    Equal: 2,
    Floor: 2,
    Gather: 8,
    Gemm: 1,
    GreaterOrEqual: 1,
    Less: 5,
    Max: 4,
    Min: 3,
    Mod: 5,
    Mul: 26,
    NonZero: 1,
    Not: 1,
    Range: 1,
    ReduceSum: 8,
    Reshape: 4,
    Shape: 6,
    Sin: 1,
    Slice: 4,
    Split: 3,
    Squeeze: 7,
    Sub: 11,
    Unsqueeze: 10,
    Where: 5,
  },
  dense: {
    Add: 18,
    And: 1,
    Cast: 17,
    Concat: 4,
    Cos: 1,
    CumSum: 3,
    Div: 6,
    Equal: 3,
    Floor: 2,
    Gather: 8,
    Gemm: 1,
    GreaterOrEqual: 1,
    Less: 5,
    Max: 4,
    Min: 3,
    Mod: 5,
    Mul: 26,
    Not: 1,
    Range: 1,
    ReduceSum: 8,
    Reshape: 4,
    Shape: 4,
    Sin: 1,
    Slice: 3,
    Split: 3,
    Squeeze: 5,
    Sub: 11,
    Unsqueeze: 12,
    Where: 6,
  },
  padded: {
    Add: 12,
    And: 1,
    Cast: 13,
    Concat: 1,
    Cos: 1,
    CumSum: 3,
    Div: 7,
    Equal: 2,
    Floor: 2,
    Gather: 8,
    Gemm: 1,
    GreaterOrEqual: 1,
    Identity: 1,
    Less: 1,
    Max: 4,
    Min: 3,
    Mod: 4,
    Mul: 22,
    ReduceSum: 3,
    Reshape: 1,
    Shape: 1,
    Sin: 1,
    Split: 1,
    Squeeze: 4,
    Sub: 10,
    Unsqueeze: 12,
    Where: 6,
  },
};

const expected = (variant: 'looped' | 'dense' | 'padded', depth: number, k: number): Histogram =>
  combine([FIXED[variant], 1], [BLOCK, depth], [ROTARY, depth], [ATTENTION[variant], depth], [MERGER, k + 1], [OUTPUTS(k), 1]);

const build = (variant: 'looped' | 'dense' | 'padded', v: VisionSpec, params: ParameterSource = zeroParameters): GraphBuilder =>
  variant === 'padded' ? buildPaddedGraph(configOf(v), params, bucket(256)) : buildDynamicGraph(configOf(v), params, { attention: variant });

for (const [depth, deepstack] of [
  [3, [0, 1]],
  [1, []],
  [2, [1]],
  [5, [4, 0, 2]],
] as [number, number[]][]) {
  test(`op histogram, depth ${depth}, deepstack [${deepstack.join(', ')}]: fixed + depth·(block + rotary + attention) + (K+1)·merger + outputs`, (t) => {
    for (const variant of ['looped', 'dense', 'padded'] as const) {
      t.deepEqual(histogram(build(variant, spec(depth, deepstack))), expected(variant, depth, deepstack.length), variant);
    }
    // The headline counts, spelled out: 1 patch-embed Gemm + 4 per block + 2 per merger.
    t.is(histogram(build('looped', spec(depth, deepstack))).Gemm, 1 + 4 * depth + 2 * (deepstack.length + 1));
  });
}

test('the serialized histogram (inspectModel, bodies included) equals the builder histogram', async (t) => {
  const dir = await tempDir(t);
  for (const variant of ['looped', 'padded'] as const) {
    const path = join(dir, `${variant}.onnx`);
    await saveModel(build(variant, TINY), path, { opset: 21 });
    const summary = await inspectModel(path);
    t.deepEqual(summary.ops, expected(variant, 3, 2), variant);
    t.is(
      summary.nodes,
      Object.values(expected(variant, 3, 2)).reduce((a, b) => a + b, 0),
    );
  }
});

// ---- I/O contract -----------------------------------------------------------------------------

test('graph inputs and outputs: names, dtypes and shapes', (t) => {
  const io = (g: GraphBuilder) => ({ inputs: g.inputs.map((i) => [i.name, i.dtype, [...i.shape]]), outputs: g.outputs.map((o) => [o.name, o.dtype, [...o.shape]]) });
  t.deepEqual(io(build('looped', TINY)), {
    inputs: [
      ['pixel_values', 'float32', ['N', 1536]],
      ['grid_thw', 'int64', ['I', 3]],
    ],
    outputs: [
      ['image_embeds', 'float32', ['N/4', 80]],
      ['deepstack_embeds', 'float32', [2, 'N/4', 80]],
    ],
  });
  t.deepEqual(io(build('dense', spec(1, []))).outputs, [
    ['image_embeds', 'float32', ['N/4', 80]],
    ['deepstack_embeds', 'float32', [0, 'N/4', 80]],
  ]);
  t.deepEqual(io(buildPaddedGraph(configOf(TINY), zeroParameters, bucket(1024, 5))), {
    inputs: [
      ['pixel_values', 'float32', [1024, 1536]],
      ['grid_thw', 'int64', [5, 3]],
    ],
    outputs: [
      ['image_embeds', 'float32', [256, 80]],
      ['deepstack_embeds', 'float32', [2, 256, 80]],
      ['token_count', 'int64', []],
    ],
  });
  // float16 weights: the I/O stays float32 (casts inside). The layers that write the residual
  // stream store their weights scaled by 2⁻⁸ (`….weight.scaled`), every other one as it is.
  const half = buildDynamicGraph(configOf(TINY), zeroParameters, { dtype: 'float16' });
  t.deepEqual(
    io(half).outputs.map(([, dtype]) => dtype),
    ['float32', 'float32'],
  );
  const params = half.initializers.filter((i) => i.kind === 'param');
  t.true(params.every((i) => i.dtype === 'float16'));
  const scaled = params.filter((i) => i.name.endsWith('.scaled')).map((i) => i.name.replace(/^blocks\.\d+\./, 'blocks.*.'));
  t.deepEqual([...new Set(scaled)].sort(), [
    'blocks.*.attn.proj.bias.scaled',
    'blocks.*.attn.proj.weight.scaled',
    'blocks.*.mlp.linear_fc2.bias.scaled',
    'blocks.*.mlp.linear_fc2.weight.scaled',
    'patch_embed.proj.bias.scaled',
    'patch_embed.proj.weight.scaled',
  ]);
});

test('initializer names are the checkpoint keys of spec §2.1, with their shapes', (t) => {
  for (const v of [TINY, spec(2, []), { ...spec(1, [0]), hidden_size: 144, num_heads: 2, num_position_embeddings: 256 }]) {
    for (const variant of ['looped', 'padded'] as const) {
      const params = build(variant, v).initializers.filter((i) => i.kind === 'param');
      const got = Object.fromEntries(params.map((i) => [i.name, [...i.shape]]));
      t.deepEqual(got, Object.fromEntries(visionTensorShapes(v)), `${variant} depth ${v.depth}`);
      t.is(params.length, 3 + 12 * v.depth + 6 + 6 * v.deepstack_visual_indexes.length);
    }
  }
  // Constants the graph makes itself never collide with checkpoint names.
  const constants = build('looped', TINY).initializers.filter((i) => i.kind === 'constant');
  t.true(constants.length > 0);
  t.false(constants.some((c) => /^(blocks|merger|deepstack_merger_list|patch_embed|pos_embed)\./.test(c.name)));
});

// ---- determinism and external data ----------------------------------------------------------------

/** Deterministic, name-dependent, non-zero parameter bytes (so offsets can be checked by content). */
const patterned: ParameterSource = {
  take: (name, shape, dtype) => {
    const bytes = new Uint8Array(shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype]);
    let h = 2166136261;
    for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (h >>> ((i % 4) * 8)) ^ i;
    return bytes;
  },
};

test('building and serializing twice gives byte-identical models', async (t) => {
  for (const variant of ['looped', 'dense', 'padded'] as const) {
    const a = await modelToBytes(build(variant, TINY, patterned), { opset: 21 });
    const b = await modelToBytes(build(variant, TINY, patterned), { opset: 21 });
    t.true(Buffer.from(a).equals(Buffer.from(b)), `${variant}: ${a.length} vs ${b.length} bytes`);
  }
  const dir = await tempDir(t);
  const saved = [];
  // Same file name in two directories: the `location` key inside the .onnx names the data file.
  for (const sub of ['a', 'b']) {
    await mkdir(join(dir, sub));
    saved.push(await saveModel(build('looped', TINY, patterned), join(dir, sub, 'encoder.onnx'), { opset: 21, externalData: 'always' }));
  }
  const [a, b] = saved as [(typeof saved)[number], (typeof saved)[number]];
  t.truthy(a.externalDataPath);
  t.true((await readFile(a.path)).equals(await readFile(b.path)), '.onnx files differ');
  t.true((await readFile(a.externalDataPath!)).equals(await readFile(b.externalDataPath!)), '.onnx.data files differ');
});

test('external data: weights over 1 KiB at 4096-aligned offsets holding their own bytes; the rest inline', async (t) => {
  const dir = await tempDir(t);
  const g = build('looped', TINY, patterned);
  const saved = await saveModel(g, join(dir, 'encoder.onnx'), { opset: 21, externalData: 'always' });
  const model = onnx.ModelProto.decode(await readFile(saved.path));
  const data = await readFile(saved.externalDataPath!);
  const specs = new Map(g.initializers.map((i) => [i.name, i]));
  let external = 0;
  for (const tensor of model.graph?.initializer ?? []) {
    const name = tensor.name ?? '';
    const init = specs.get(name);
    if (!init) {
      t.fail(`initializer ${name} is not in the builder`);
      continue;
    }
    const bytes = init.shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[init.dtype];
    const isExternal = tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
    t.is(isExternal, init.kind === 'param' && bytes > 1024, `${name} (${init.kind}, ${bytes} bytes)`);
    if (!isExternal) continue;
    external++;
    const entry = Object.fromEntries((tensor.externalData ?? []).map((e) => [e.key, e.value]));
    t.is(entry.location, 'encoder.onnx.data');
    const offset = Number(entry.offset);
    t.is(offset % EXTERNAL_ALIGNMENT, 0, `${name} offset ${offset}`);
    t.is(Number(entry.length), bytes);
    const want = patterned.take(name, init.shape, init.dtype) as Uint8Array;
    t.true(Buffer.from(data.subarray(offset, offset + bytes)).equals(Buffer.from(want)), `${name}: bytes at its offset`);
  }
  t.is(EXTERNAL_ALIGNMENT, 4096);
  t.true(external >= 1 + 4 * 3 + 2 * 3, `${external} external tensors`);
  t.deepEqual((await inspectModel(saved.path)).externalFiles, ['encoder.onnx.data']);
});

test('an export records vitgraph.version, vitgraph.variant, vitgraph.vision_config and the opsets', async (t) => {
  const golden = await loadGolden('tiny');
  const dir = await tempDir(t);
  const expectedConfig = configToJson(parseConfig(golden.config));
  for (const variant of ['dynamic', 'padded'] as const) {
    const out = join(dir, `${variant}.onnx`);
    await exportModel({ model: golden.dir, out, variant, ...(variant === 'padded' ? { maxPatches: [256] } : {}) });
    const { metadata, opsets, producer } = await inspectModel(out);
    t.is(metadata['vitgraph.version'], VITGRAPH_VERSION);
    t.is(metadata['vitgraph.variant'], variant);
    t.is(metadata['vitgraph.dtype'], 'float32');
    t.deepEqual(JSON.parse(metadata['vitgraph.vision_config'] ?? 'null'), expectedConfig);
    t.deepEqual(JSON.parse(metadata['vitgraph.source_config'] ?? 'null'), golden.config);
    t.deepEqual(opsets, { '': 21, 'com.microsoft': 1 });
    t.is(producer, 'vitgraph');
  }
  t.deepEqual(expectedConfig.deepstack_visual_indexes, [0, 1]);
});
