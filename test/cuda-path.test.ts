// The CUDA path's parts that CPUs can check (issue 15): one-item buckets carry no attention bias and
// give the goldens; videos reach them one frame per run; a graph exported for CUDA records it and is
// refused on CPU; TF32 is off unless asked for; bfloat16 exports for CUDA only; ORT profiles are
// summarized; and scripts/gpu-check.sh runs from the bare set of files it documents (dist/, the
// addon and four protobuf packages: no onnxruntime-node, no sharp).

import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { exportModel, VitgraphError } from '../index.js';
import { buildPaddedGraph, parseConfig } from '../graphs/qwen3-vl/index.js';
import { bucket, planRuns } from '../src/runtime/buckets.js';
import { EncoderRuntime, type EncoderRuntimeOptions } from '../src/runtime/encoder-runtime.js';
import { Session } from '../src/runtime/session.js';
import { zeroParameters } from '../src/export/model-directory.js';
import { inspectModel } from '../src/onnx/inspect.js';
import { inspectPackage } from '../src/runtime/package.js';
import { nativeAddonFile, NativeSession } from '../src/runtime/native/index.js';
import { summarizeProfile } from '../src/runtime/profile.js';
import { deepstackBlocks, loadGolden, ROOT, tempDir, type Golden } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';
import { configJson } from './helpers/random.js';

const ATOL = 1e-4;

test('a one-item bucket attends without any [Nmax, Nmax] bias: MultiHeadAttention with a key length', (t) => {
  const config = parseConfig(
    configJson({ depth: 2, hidden_size: 64, intermediate_size: 96, num_heads: 4, out_hidden_size: 80, num_position_embeddings: 2304, deepstack_visual_indexes: [1], hidden_act: 'gelu_pytorch_tanh' }),
  );
  const attention = (maxItems: number) => {
    const g = buildPaddedGraph(config, zeroParameters, bucket(256, maxItems));
    const mha = g.nodes.filter((n) => n.opType === 'MultiHeadAttention');
    // The bias is Where(Equal(segment ⊗ segment)) [1, 1, Nmax, Nmax], built under the `segments` scope.
    const bias = g.nodes.some((n) => /^segments\/(Equal|Where)/.test(n.name));
    return { mha, bias };
  };
  const one = attention(1);
  t.is(one.mha.length, 2);
  t.false(one.bias, 'no [256, 256] bias in a one-item bucket');
  for (const n of one.mha) {
    t.is(n.inputs[5] ?? '', '', 'no attention_bias input');
    t.truthy(n.inputs[4], 'a key length (key_padding_mask)');
  }
  const four = attention(4);
  t.true(four.bias, 'a multi-item CPU bucket keeps its block-diagonal bias');
  t.true(four.mha.every((n) => (n.inputs[5] ?? '') !== ''));
});

/** Runs `golden` through the graph at `out` and checks every output against the float64 reference. */
async function assertGolden(t: ExecutionContext, golden: Golden, out: string, options: EncoderRuntimeOptions): Promise<void> {
  const runtime = await EncoderRuntime.open(out, options);
  try {
    const got = await runtime.run(golden.pixelValues, golden.gridThw);
    assertClose(t, 'image_embeds', got.image_embeds!.data, golden.expected.imageEmbeds, ATOL);
    deepstackBlocks(got.deepstack_embeds!.data, golden.expected.deepstack.length).forEach((block, j) => assertClose(t, `deepstack_embeds[${j}]`, block, golden.expected.deepstack[j]!, ATOL));
  } finally {
    await runtime.close();
  }
}

for (const name of ['tiny', 'tiny_single'] as const) {
  test(`${name}: one-item buckets give the goldens (≤ ${ATOL}); a video runs one frame per bucket`, async (t) => {
    const golden = await loadGolden(name);
    const out = join(await tempDir(t), 'one-item.onnx');
    await exportModel({ model: golden.dir, out, variant: 'padded', maxPatches: [golden.pixelValues.shape[0]!], maxItems: 1 });
    await assertGolden(t, golden, out, { threads: 1 });
  });
}

test('a multi-item bucket for CUDA is slotted: no [Nmax, Nmax] bias, one sequence per item with its key length', (t) => {
  const config = parseConfig(
    configJson({ depth: 2, hidden_size: 64, intermediate_size: 96, num_heads: 4, out_hidden_size: 80, num_position_embeddings: 2304, deepstack_visual_indexes: [1], hidden_act: 'gelu_pytorch_tanh' }),
  );
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    const g = buildPaddedGraph(config, zeroParameters, bucket(256, 4), { device: 'cuda', dtype });
    t.false(
      g.nodes.some((n) => /^segments\/(Equal|Where)/.test(n.name)),
      `${dtype}: no block-diagonal bias`,
    );
    const mha = g.nodes.filter((n) => n.opType === 'MultiHeadAttention');
    t.is(mha.length, 2);
    for (const n of mha) t.true((n.inputs[5] ?? '') === '' && Boolean(n.inputs[4]), `${dtype}: a key length per item, no attention_bias`);
  }
});

test('a CUDA bucket that cannot be cut into whole slots is refused, saying what fits', async (t) => {
  const golden = await loadGolden('tiny');
  const out = join(await tempDir(t), 'x.onnx');
  const error = await t.throwsAsync(exportModel({ model: golden.dir, out, variant: 'padded', maxPatches: [100], maxItems: 3, device: 'cuda' }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.regex(error?.message ?? '', /multiple of 3 × 4/);
});

for (const name of ['tiny', 'tiny_single'] as const) {
  test(`${name}: a slotted CUDA bucket gives the goldens on CPU's ORT (≤ ${ATOL}), items at their slots`, async (t) => {
    const golden = await loadGolden(name);
    const out = join(await tempDir(t), 'slotted.onnx');
    const frames = golden.gridThw.data.length / 3 + (name === 'tiny' ? 1 : 0); // tiny's video has 2 frames
    await exportModel({ model: golden.dir, out, variant: 'padded', maxPatches: [frames * 192], maxItems: frames, device: 'cuda' });
    // The CUDA form runs here through onnxruntime-node: MultiHeadAttention with key lengths has a CPU kernel.
    await assertGolden(t, golden, out, { device: 'cuda', createRunner: (path) => Session.load(path, { threads: 1 }) });
  });
}

test('planRuns splits a video into frames for one-item buckets; each run is one frame group', (t) => {
  const plans = planRuns(
    [
      [3, 4, 4],
      [1, 2, 2],
    ],
    [bucket(16, 1)],
    { slotOf: (b) => b.maxPatches },
  );
  t.deepEqual(
    plans.map((p) => p.units.map((u) => u.grid)),
    [[[1, 4, 4]], [[1, 4, 4]], [[1, 4, 4]], [[1, 2, 2]]],
  );
  t.deepEqual(
    plans.map((p) => p.units[0]!.firstRow),
    [0, 16, 32, 48],
  );
});

test('a package exported for CUDA records it and refuses to load on CPU, naming the fix', async (t) => {
  const golden = await loadGolden('tiny');
  const pkg = join(await tempDir(t), 'pkg');
  await exportModel({ model: golden.dir, out: pkg, maxPatches: [256], device: 'cuda' });
  const manifest = JSON.parse(await readFile(join(pkg, 'vitgraph.json'), 'utf8')) as { io: { device?: string } };
  t.is(manifest.io.device, 'cuda');
  t.is((await inspectModel(join(pkg, 'padded-256.onnx'))).metadata['vitgraph.device'], 'cuda');
  t.is((await inspectPackage(pkg)).device, 'cuda', 'inspect says which device the package is for');
  const error = await t.throwsAsync(EncoderRuntime.open(pkg, { threads: 1 }), { instanceOf: VitgraphError });
  t.is(error?.code, 'unsupported');
  t.regex(error?.message ?? '', /exported for CUDA.*device.*cuda.*re-export without --device cuda/s);
});

test('bfloat16: exported for CUDA with bf16 weights; refused for CPU, naming --device cuda; quantized dtypes refused for CUDA', async (t) => {
  const golden = await loadGolden('tiny');
  const dir = await tempDir(t);
  const out = join(dir, 'bf16.onnx');
  await exportModel({ model: golden.dir, out, variant: 'padded', maxPatches: [256], dtype: 'bfloat16', device: 'cuda' });
  const summary = await inspectModel(out);
  t.is(summary.metadata['vitgraph.dtype'], 'bfloat16');
  t.deepEqual(
    summary.inputs.map((i) => i.dtype),
    ['float32', 'int64'],
  );
  const cpu = await t.throwsAsync(exportModel({ model: golden.dir, out: join(dir, 'cpu.onnx'), dtype: 'bfloat16' }), { instanceOf: VitgraphError });
  t.regex(cpu?.message ?? '', /bfloat16 for device cpu.*device.*cuda/s);
  const int8 = await t.throwsAsync(exportModel({ model: golden.dir, out: join(dir, 'int8.onnx'), dtype: 'int8', device: 'cuda' }), { instanceOf: VitgraphError });
  t.regex(int8?.message ?? '', /int8 for device cuda/);
});

test('TF32 is off on CUDA unless asked for, and asking for it on CPU is an error', async (t) => {
  const golden = await loadGolden('tiny');
  const out = join(await tempDir(t), 'fp32.onnx');
  await exportModel({ model: golden.dir, out, variant: 'padded', maxPatches: [256] });
  const error = await t.throwsAsync(NativeSession.create(out, { device: 'cpu', tf32: true }), { instanceOf: VitgraphError });
  t.regex(error?.message ?? '', /tf32: expected false with device "cpu"/);
  const owned = await t.throwsAsync(NativeSession.create(out, { device: 'cuda', cudaOptions: { use_tf32: '1' } }), { instanceOf: VitgraphError });
  t.regex(owned?.message ?? '', /cudaOptions\.use_tf32: expected absent \(set the tf32 option instead\)/);
});

test('ORT profiles: time per op type and the slowest nodes, warm-up runs left out', (t) => {
  const run = (ts: number, dur: number) => ({ cat: 'Session', name: 'model_run', ts, dur });
  const node = (name: string, op: string, ts: number, dur: number) => ({ cat: 'Node', name: `${name}_kernel_time`, ts, dur, args: { op_name: op, provider: 'CUDAExecutionProvider' } });
  const trace = [
    run(0, 100),
    node('a/Gemm', 'Gemm', 10, 90),
    run(1000, 50),
    node('a/Gemm', 'Gemm', 1010, 30),
    node('b/Add', 'Add', 1040, 10),
    run(2000, 50),
    node('a/Gemm', 'Gemm', 2010, 30),
    node('b/Add', 'Add', 2040, 10),
  ];
  const p = summarizeProfile(trace, { skipRuns: 1 });
  t.is(p.runs, 2);
  t.is(p.runMs, 0.05);
  t.deepEqual(
    p.byOp.map((o) => [o.op, o.provider, o.calls, o.ms]),
    [
      ['Gemm', 'CUDA', 1, 0.03],
      ['Add', 'CUDA', 1, 0.01],
    ],
  );
  t.deepEqual(
    p.topNodes.map((n) => n.node),
    ['a/Gemm', 'b/Add'],
  );
  t.throws(() => summarizeProfile({}), { instanceOf: VitgraphError });
});

const addon = nativeAddonFile();
const withAddon = addon.built ? test : test.skip;

withAddon('scripts/gpu-check.sh --device cpu passes from the bare carry set: dist/, the addon, four protobuf packages', async (t) => {
  const bare = await tempDir(t);
  for (const path of ['dist', 'scripts/gpu-check.sh', 'scripts/gpu-check-torch.py', 'scripts/gpu-check-python-ort.py', 'fixtures/encoder', 'package.json'])
    await cp(join(ROOT, path), join(bare, path), { recursive: true });
  await mkdir(join(bare, 'src/runtime/native'), { recursive: true });
  await cp(join(ROOT, 'src/runtime/native/build'), join(bare, 'src/runtime/native/build'), { recursive: true });
  await mkdir(join(bare, 'node_modules'));
  for (const pkg of ['onnx-proto', 'protobufjs', '@protobufjs', 'long']) await symlink(join(ROOT, 'node_modules', pkg), join(bare, 'node_modules', pkg));
  const ortLib = join(ROOT, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1');
  const r = spawnSync('bash', ['scripts/gpu-check.sh', '--device', 'cpu', '--only', '^golden tiny fp32', '--dtypes', 'float32'], {
    cwd: bare,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, OUT: join(bare, 'out'), VITGRAPH_ORT_LIB: ortLib },
  });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /golden tiny fp32 cpu-form: ok/);
  t.false(/onnxruntime-node|sharp/.test(r.stderr), r.stderr);
});
