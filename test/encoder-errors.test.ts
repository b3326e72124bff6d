// Bad inputs fail loudly: host-side checks of pixel_values/grid_thw (EncoderRuntime,
// checkEncoderInputs, the CLI), the dynamic graph's own guards when fed directly through
// onnxruntime-node, and export-time errors (weights, config, existing outputs, corrupt files).

import test, { type ExecutionContext } from 'ava';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { VitgraphError, type ErrorCode } from '../src/errors.js';
import { hostTensor, type HostTensor } from '../src/tensor.js';
import { readSafetensors, writeSafetensors } from '../src/weights/index.js';
import { exportModel } from '../index.js';
import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { checkEncoderInputs } from '../src/runtime/input-checks.js';
import { loadGolden, tempDir, type Golden } from './helpers/files.js';
import { runBin, runMain } from './helpers/cli.js';
import { ortSession } from './helpers/onnx.js';

let dir = '';
let onnxPath = '';
let pkg = '';
let golden: Golden;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vitgraph-errors-'));
  golden = await loadGolden('tiny');
  onnxPath = join(dir, 'dynamic.onnx');
  pkg = join(dir, 'pkg');
  await exportModel({ model: golden.dir, out: onnxPath });
  await exportModel({ model: golden.dir, out: pkg, maxPatches: [256] });
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const grid = (rows: number[][], dtype: 'int64' | 'int32' = 'int64'): HostTensor =>
  dtype === 'int64' ? hostTensor('int64', [rows.length, 3], BigInt64Array.from(rows.flat().map(BigInt))) : hostTensor('int32', [rows.length, 3], Int32Array.from(rows.flat()));
/** The golden's first `rows` pixel rows (width 1536), or zeros of another width. */
const pixels = (rows: number, width = 1536): HostTensor<'float32'> =>
  hostTensor('float32', [rows, width], width === 1536 ? golden.pixelValues.data.slice(0, rows * width) : new Float32Array(rows * width));

/** Bad calls: [label, pixel rows, grid, expected code, message fragment]. */
const BAD: [string, () => HostTensor, () => HostTensor, ErrorCode, RegExp][] = [
  [
    'grid describes fewer rows than pixel_values has',
    () => pixels(176),
    () =>
      grid([
        [1, 4, 6],
        [2, 8, 8],
      ]),
    'input_mismatch',
    /pixel_values has 176 rows but grid_thw describes 152 \(Σ t·h·w over 2 items\)/,
  ],
  [
    'odd h',
    () => pixels(176),
    () =>
      grid([
        [1, 3, 8],
        [2, 8, 8],
        [1, 6, 4],
      ]),
    'input_mismatch',
    /grid_thw row 0: expected t ≥ 1 and h, w positive multiples of 2, got \[1, 3, 8\]/,
  ],
  [
    'odd w',
    () => pixels(176),
    () =>
      grid([
        [1, 4, 6],
        [2, 8, 8],
        [1, 8, 3],
      ]),
    'input_mismatch',
    /grid_thw row 2: .*got \[1, 8, 3\]/,
  ],
  [
    't = 0',
    () => pixels(152),
    () =>
      grid([
        [0, 4, 6],
        [2, 8, 8],
        [1, 6, 4],
      ]),
    'input_mismatch',
    /grid_thw row 0: .*got \[0, 4, 6\]/,
  ],
  ['pixel_values 1535 wide', () => pixels(176, 1535), () => golden.gridThw, 'invalid_argument', /pixel_values: expected float32 \[N, 1536\], got "float32 \[176, 1535\]"/],
  [
    'grid_thw int32',
    () => pixels(176),
    () =>
      grid(
        [
          [1, 4, 6],
          [2, 8, 8],
          [1, 6, 4],
        ],
        'int32',
      ),
    'invalid_argument',
    /grid_thw: expected int64 \[I, 3\], got "int32 \[3, 3\]"/,
  ],
  ['empty grid', () => pixels(0), () => grid([]), 'invalid_argument', /grid_thw: expected at least one item/],
];

for (const [label, px, g, code, message] of BAD) {
  test(`checkEncoderInputs and EncoderRuntime (dynamic and buckets) reject: ${label}`, async (t) => {
    const direct = t.throws(() => checkEncoderInputs({ pixelValues: px(), gridThw: g() }, 1536, 2), { instanceOf: VitgraphError });
    t.is(direct?.code, code);
    t.regex(direct?.message ?? '', message);
    for (const [model, graphs] of [
      [onnxPath, 'dynamic'],
      [pkg, 'buckets'],
    ] as const) {
      const runtime = await EncoderRuntime.open(model, { graphs, threads: 1 });
      try {
        const error = await t.throwsAsync(runtime.run(px(), g()), { instanceOf: VitgraphError }, `${graphs}: ${label}`);
        t.is(error?.code, code);
        t.regex(error?.message ?? '', message);
      } finally {
        await runtime.close();
      }
    }
  });
}

test('input_mismatch errors carry structured details', (t) => {
  const rows = t.throws(() => checkEncoderInputs({ pixelValues: pixels(176), gridThw: grid([[1, 4, 6]]) }, 1536, 2), { instanceOf: VitgraphError });
  t.deepEqual(rows?.details, { rows: 176, expected: 24 });
  const odd = t.throws(
    () =>
      checkEncoderInputs(
        {
          pixelValues: pixels(24),
          gridThw: grid([
            [1, 4, 6],
            [1, 3, 2],
          ]),
        },
        1536,
        2,
      ),
    { instanceOf: VitgraphError },
  );
  t.deepEqual(odd?.details, { item: 1, row: [1, 3, 2] });
});

// ---- the CLI ------------------------------------------------------------------------------------

test.serial('vitgraph run with a grid that contradicts the pixels: exit 1, one line on stderr, no stack', async (t) => {
  const inputs = join(dir, 'bad-inputs.safetensors');
  await writeSafetensors(inputs, {
    pixel_values: golden.pixelValues,
    grid_thw: grid([
      [1, 4, 6],
      [2, 8, 8],
    ]),
  });
  const out = join(dir, 'never.safetensors');
  const inProcess = await runMain(['run', '--onnx', onnxPath, '--inputs', inputs, '--out', out]);
  t.is(inProcess.code, 1);
  t.is(inProcess.stdout, '');
  t.is(inProcess.stderr, 'vitgraph run: pixel_values has 176 rows but grid_thw describes 152 (Σ t·h·w over 2 items). Pass the grid_thw that came with these pixel_values\n');
  const spawned = await runBin(['run', '--onnx', pkg, '--graphs', 'buckets', '--inputs', inputs, '--out', out]);
  t.is(spawned.code, 1);
  t.is(spawned.stderr.trimEnd().split('\n').length, 1, spawned.stderr);
  t.regex(spawned.stderr, /^vitgraph run: pixel_values has 176 rows but grid_thw describes 152/);
  t.notRegex(spawned.stderr, /\n\s+at /);
  await t.throwsAsync(readFile(out), undefined, 'no output written');
});

test.serial('vitgraph run with an odd grid and with too-narrow pixels: exit 1 with the check message', async (t) => {
  const odd = join(dir, 'odd.safetensors');
  await writeSafetensors(odd, {
    pixel_values: golden.pixelValues,
    grid_thw: grid([
      [1, 3, 8],
      [2, 8, 8],
      [1, 6, 4],
    ]),
  });
  const narrow = join(dir, 'narrow.safetensors');
  await writeSafetensors(narrow, { pixel_values: pixels(176, 1535), grid_thw: golden.gridThw });
  const a = await runMain(['run', '--onnx', onnxPath, '--inputs', odd, '--out', join(dir, 'x.safetensors')]);
  t.is(a.code, 1);
  t.regex(a.stderr, /^vitgraph run: grid_thw row 0: expected t ≥ 1 and h, w positive multiples of 2, got \[1, 3, 8\]/);
  const b = await runMain(['run', '--onnx', onnxPath, '--inputs', narrow, '--out', join(dir, 'x.safetensors')]);
  t.is(b.code, 1);
  t.regex(b.stderr, /^vitgraph run: pixel_values: expected float32 \[N, 1536\]/);
  t.is(b.stderr.split('\n').filter(Boolean).length, 1);
});

// ---- the dynamic graph's own guards (no host checks in front) ---------------------------------

const ortFeeds = (rows: number, g: number[][]): Record<string, ort.Tensor> => ({
  pixel_values: new ort.Tensor('float32', golden.pixelValues.data.slice(0, rows * 1536), [rows, 1536]),
  grid_thw: new ort.Tensor('int64', BigInt64Array.from(g.flat().map(BigInt)), [g.length, 3]),
});
const GUARDED: [string, number, number[][]][] = [
  [
    'Σ t·h·w (152) ≠ pixel rows (176)',
    176,
    [
      [1, 4, 6],
      [2, 8, 8],
    ],
  ],
  [
    't = 0',
    152,
    [
      [0, 4, 6],
      [2, 8, 8],
      [1, 6, 4],
    ],
  ],
  [
    'h = 0',
    152,
    [
      [1, 0, 6],
      [2, 8, 8],
      [1, 6, 4],
    ],
  ],
  [
    'odd h and w',
    176 - 24 + 9,
    [
      [1, 3, 3],
      [2, 8, 8],
      [1, 6, 4],
    ],
  ],
];

test('the dynamic .onnx, fed directly, computes on a good grid (control for the guard tests)', async (t) => {
  const session = await ortSession(onnxPath);
  t.teardown(() => session.release());
  const out = await session.run(
    ortFeeds(176, [
      [1, 4, 6],
      [2, 8, 8],
      [1, 6, 4],
    ]),
  );
  t.deepEqual(out.image_embeds?.dims, [44, 80]);
});

for (const [label, rows, g] of GUARDED) {
  // BUG (graphs/qwen3-vl/dynamic.ts, checkedInputs): the guards are Reshapes whose target size is
  // off when the grid is bad, but ORT's basic-level graph optimization (ReshapeFusion) rewrites
  // their shape inputs to the constants [-1, 1536] and [-1, 3], so at ORT's default optimization
  // level the checks vanish and the graph returns numbers for a bad grid. With optimization
  // 'disabled' they fire (see the next test). ('odd h and w' throws today only because the
  // position-table Gather gets an out-of-range index, which ORT's CPU Gather checks and its CUDA
  // Gather does not.)
  test(`the dynamic .onnx fed directly through onnxruntime-node throws on a bad grid: ${label}`, async (t) => {
    const session = await ortSession(onnxPath);
    t.teardown(() => session.release());
    await t.throwsAsync(session.run(ortFeeds(rows, g)), undefined, `${label}: the graph returned numbers`);
  });
}

test('with ORT graph optimizations disabled, the in-graph guards do fire', async (t) => {
  const session = await ort.InferenceSession.create(onnxPath, { graphOptimizationLevel: 'disabled', executionProviders: ['cpu'], logSeverityLevel: 4 });
  t.teardown(() => session.release());
  for (const [label, rows, g] of GUARDED.slice(0, 3)) {
    const error = await t.throwsAsync(session.run(ortFeeds(rows, g)), undefined, label);
    t.regex(error?.message ?? '', /checks\/(pixel_rows_must_equal_sum_of_t_h_w|grid_thw_must_be_positive_with_even_h_w)\/Reshape/, label);
  }
});

// ---- export-time errors ------------------------------------------------------------------------

/** A copy of the golden model directory with the checkpoint's tensors edited by `edit`. */
async function editedModel(root: string, edit: (tensors: Map<string, HostTensor>) => void): Promise<string> {
  const model = join(root, 'model');
  await mkdir(model, { recursive: true });
  await copyFile(join(golden.dir, 'config.json'), join(model, 'config.json'));
  const tensors = await readSafetensors(join(golden.dir, 'model.safetensors'));
  edit(tensors);
  await writeSafetensors(join(model, 'model.safetensors'), tensors);
  return model;
}

async function exportError(t: ExecutionContext, model: string, code: ErrorCode, message: RegExp): Promise<VitgraphError | undefined> {
  const out = join(await tempDir(t), 'x.onnx');
  const error = await t.throwsAsync(exportModel({ model, out }), { instanceOf: VitgraphError });
  t.is(error?.code, code);
  t.regex(error?.message ?? '', message);
  await t.throwsAsync(readFile(out), undefined, 'no partial .onnx left behind');
  return error;
}

test('export: a missing weight is weight_binding naming it and its expected shape', async (t) => {
  const model = await editedModel(await tempDir(t), (m) => m.delete('model.visual.blocks.1.attn.proj.weight'));
  const error = await exportError(t, model, 'weight_binding', /^blocks\.1\.attn\.proj\.weight: expected a tensor of shape \[64, 64\], got none in the checkpoint/);
  t.deepEqual(error?.details.expected, [64, 64]);
});

test('export: a mis-shaped weight is weight_binding naming it with both shapes', async (t) => {
  const model = await editedModel(await tempDir(t), (m) => m.set('model.visual.blocks.1.attn.proj.weight', hostTensor('float32', [64, 65], new Float32Array(64 * 65))));
  const error = await exportError(t, model, 'weight_binding', /^blocks\.1\.attn\.proj\.weight: expected shape \[64, 64\], got \[64, 65\]/);
  t.deepEqual(error?.details, { name: 'blocks.1.attn.proj.weight', expected: [64, 64], got: [64, 65] });
});

test('export: a weight that contradicts a config size is invalid_config naming the field, checked from the header first', async (t) => {
  const model = await editedModel(await tempDir(t), (m) => m.set('model.visual.merger.linear_fc2.weight', hostTensor('float32', [81, 256], new Float32Array(81 * 256))));
  await exportError(
    t,
    model,
    'invalid_config',
    /^config field "out_hidden_size": does not fit the checkpoint: expected merger\.linear_fc2\.weight of shape \[80, 256\] \(from the config\), got \[81, 256\]/,
  );
});

test('export: an extra vision weight is weight_binding listing it', async (t) => {
  const model = await editedModel(await tempDir(t), (m) => m.set('model.visual.blocks.3.norm1.weight', hostTensor('float32', [64], new Float32Array(64))));
  const error = await exportError(t, model, 'weight_binding', /unexpected tensors in checkpoint: .*got 1 unused \(blocks\.3\.norm1\.weight\)/);
  t.deepEqual(error?.details.names, ['blocks.3.norm1.weight']);
});

test('export: heads that do not divide hidden_size is invalid_config naming the field', async (t) => {
  const root = await tempDir(t);
  const model = await editedModel(root, () => undefined);
  const config = JSON.parse(await readFile(join(model, 'config.json'), 'utf8')) as { vision_config: Record<string, unknown> };
  config.vision_config.num_heads = 5;
  await writeFile(join(model, 'config.json'), JSON.stringify(config));
  const error = await exportError(t, model, 'invalid_config', /^config field "vision_config\.num_heads": 5 heads do not divide hidden_size 64/);
  t.is(error?.details.field, 'vision_config.num_heads');
});

test('export: a corrupt or truncated safetensors file is invalid_file', async (t) => {
  const root = await tempDir(t);
  const model = await editedModel(root, () => undefined);
  const weights = join(model, 'model.safetensors');
  const bytes = await readFile(weights);
  await writeFile(weights, bytes.subarray(0, bytes.length - 1000)); // data section cut short
  await exportError(t, model, 'invalid_file', /model\.safetensors/);
  await writeFile(weights, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), bytes.subarray(8)])); // lying header length
  await exportError(t, model, 'invalid_file', /model\.safetensors/);
});

test('export: an existing output is refused without overwrite and replaced with it (if vitgraph wrote it)', async (t) => {
  const root = await tempDir(t);
  const out = join(root, 'encoder.onnx');
  await writeFile(out, 'not a model');
  const error = await t.throwsAsync(exportModel({ model: golden.dir, out, overwrite: true }), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.regex(error?.message ?? '', /^out: expected a new file or one vitgraph wrote, got ".*encoder\.onnx \(an existing file vitgraph did not write\)"/);
  t.is(await readFile(out, 'utf8'), 'not a model', 'left untouched, overwrite or not');
  await rm(out);
  await exportModel({ model: golden.dir, out });
  const existing = await t.throwsAsync(exportModel({ model: golden.dir, out }), { instanceOf: VitgraphError });
  t.regex(existing?.message ?? '', /^out: expected a file that does not exist yet, got ".*encoder\.onnx"\. Pass overwrite: true to replace it, or choose another path$/);
  await t.notThrowsAsync(exportModel({ model: golden.dir, out, overwrite: true }));
  // A package directory: refused when non-empty, accepted when empty or with overwrite.
  const dirOut = join(root, 'pkg');
  await mkdir(dirOut);
  await exportModel({ model: golden.dir, out: dirOut, maxPatches: [64] });
  const again = await t.throwsAsync(exportModel({ model: golden.dir, out: dirOut, maxPatches: [64] }), { instanceOf: VitgraphError });
  t.regex(again?.message ?? '', /a new or empty directory/);
  await t.notThrowsAsync(exportModel({ model: golden.dir, out: dirOut, maxPatches: [64], overwrite: true }));
});
