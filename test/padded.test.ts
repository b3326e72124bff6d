// The padded bucket graphs and the host side that feeds them (graphs/qwen3-vl/padded.ts,
// buckets.ts, runtime.ts): goldens through buckets far larger than the request, lone small
// items, padded vs dynamic on seeded random grids (padding rows finite), bucket planning
// (smallest bucket, greedy order-preserving packing, item limits, frame-group splitting, oversize
// items), and the fixed-shape contract of the files.
//
// One package of the `tiny` golden tower (dynamic graph + buckets 64, 256, 1024) serves the file.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VitgraphError } from '../src/errors.js';
import { inspectModel } from '../src/onnx/inspect.js';
import { Session } from '../src/runtime/session.js';
import { hostTensor, type HostTensor } from '../src/tensor.js';
import { exportModel } from '../index.js';
import { bucket, padInputs, planRuns, type GridRow, type Plan } from '../src/runtime/buckets.js';
import { EncoderRuntime, type EncoderOutputs, type EncoderRuntimeOptions } from '../src/runtime/encoder-runtime.js';
import { referenceConfig, referenceForward } from './reference/qwen3vl.js';
import { deepstackBlocks, loadGolden, type Golden } from './helpers/files.js';
import { allFinite, assertClose, maxAbsDiff } from './helpers/numeric.js';
import { randomInputs, rng } from './helpers/random.js';

const GOLDEN_ATOL = 1e-4; // vs the upstream goldens (as for the dynamic graph)
const SAME_GRAPH_ATOL = 1e-5; // padded vs dynamic: the same float32 math, different attention kernels

let dir = '';
let pkg = '';
let golden: Golden;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vitgraph-padded-'));
  pkg = join(dir, 'pkg');
  golden = await loadGolden('tiny');
  await exportModel({ model: golden.dir, out: pkg, maxPatches: [64, 256, 1024] });
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function runWith(model: string, options: EncoderRuntimeOptions, pixelValues: HostTensor, gridThw: HostTensor): Promise<EncoderOutputs> {
  const runtime = await EncoderRuntime.open(model, { threads: 1, ...options });
  try {
    return await runtime.run(pixelValues, gridThw);
  } finally {
    await runtime.close();
  }
}

const gridTensor = (grid: readonly GridRow[]): HostTensor<'int64'> => hostTensor('int64', [grid.length, 3], BigInt64Array.from(grid.flat().map(BigInt)));
const rowsOfItems = (pixels: Float32Array, from: number, to: number): HostTensor<'float32'> => hostTensor('float32', [to - from, 1536], pixels.slice(from * 1536, to * 1536));

function summary(plans: readonly Plan[]): { run: number | 'dynamic'; grids: GridRow[] }[] {
  return plans.map((p) => ({ run: p.kind === 'bucket' ? p.bucket.maxPatches : 'dynamic', grids: p.units.map((u) => u.grid) }));
}

// ---- numbers ------------------------------------------------------------------------------

test('golden tiny through the 256 bucket (picked from the package) and the 1024 bucket (file) matches the goldens', async (t) => {
  t.deepEqual(
    summary(
      planRuns(
        golden.grid,
        [64, 256, 1024].map((n) => bucket(n)),
      ),
    ),
    [{ run: 256, grids: golden.grid }],
    'smallest bucket that holds 176 patches and 3 items',
  );
  for (const [label, model, options] of [
    ['package, buckets', pkg, { graphs: 'buckets' }],
    ['padded-1024.onnx', join(pkg, 'padded-1024.onnx'), {}],
  ] as const) {
    const out = await runWith(model, options, golden.pixelValues, golden.gridThw);
    t.deepEqual(out.image_embeds!.shape, [44, 80], `${label}: sliced to the real tokens`);
    assertClose(t, `${label} image_embeds`, out.image_embeds!.data, golden.expected.imageEmbeds, GOLDEN_ATOL);
    deepstackBlocks(out.deepstack_embeds!.data, 2).forEach((d, j) => assertClose(t, `${label} deepstack_embeds[${j}]`, d, golden.expected.deepstack[j]!, GOLDEN_ATOL));
  }
});

test('a lone video [2, 8, 8] in the 1024 bucket matches its rows of the golden', async (t) => {
  // Items are independent, so the golden's rows for item 1 are the answer for item 1 alone.
  const [first, video] = golden.grid as [GridRow, GridRow];
  const from = first[0] * first[1] * first[2];
  const rows = video[0] * video[1] * video[2];
  const out = await runWith(join(pkg, 'padded-1024.onnx'), {}, rowsOfItems(golden.pixelValues.data, from, from + rows), gridTensor([video]));
  const tokens = [from / 4, (from + rows) / 4];
  assertClose(t, 'image_embeds', out.image_embeds!.data, golden.expected.imageEmbeds.subarray(tokens[0]! * 80, tokens[1]! * 80), GOLDEN_ATOL);
  deepstackBlocks(out.deepstack_embeds!.data, 2).forEach((d, j) => assertClose(t, `deepstack_embeds[${j}]`, d, golden.expected.deepstack[j]!.subarray(tokens[0]! * 80, tokens[1]! * 80), GOLDEN_ATOL));
});

test('a single 2×2 image (one token) in the 64 and 1024 buckets matches the reference and the dynamic graph', async (t) => {
  const grid: GridRow[] = [[1, 2, 2]];
  const { pixelValues, gridThw } = randomInputs(grid, 7);
  const want = referenceForward(referenceConfig(golden.config), golden.weights, pixelValues.data, grid);
  const dynamic = await runWith(join(pkg, 'dynamic.onnx'), {}, pixelValues, gridThw);
  assertClose(t, 'dynamic vs reference', dynamic.image_embeds!.data, want.imageEmbeds, GOLDEN_ATOL);
  for (const file of ['padded-64.onnx', 'padded-1024.onnx']) {
    const out = await runWith(join(pkg, file), {}, pixelValues, gridThw);
    t.deepEqual(out.image_embeds!.shape, [1, 80]);
    assertClose(t, `${file} vs reference`, out.image_embeds!.data, want.imageEmbeds, GOLDEN_ATOL);
    deepstackBlocks(out.deepstack_embeds!.data, 2).forEach((d, j) => assertClose(t, `${file} deepstack[${j}] vs reference`, d, want.deepstack[j]!, GOLDEN_ATOL));
    assertClose(t, `${file} vs dynamic`, out.image_embeds!.data, dynamic.image_embeds!.data, SAME_GRAPH_ATOL);
  }
});

test('padded vs dynamic on seeded random grids: real tokens agree, padding rows are finite', async (t) => {
  const random = rng(2024);
  const even = (max: number): number => 2 * (1 + Math.floor(random() * (max / 2)));
  const dynamic = await Session.load(join(pkg, 'dynamic.onnx'), { threads: 1 });
  const padded = await Session.load(join(pkg, 'padded-256.onnx'), { threads: 1 });
  t.teardown(async () => {
    await dynamic.close();
    await padded.close();
  });
  const target = bucket(256);
  for (let trial = 0; trial < 6; trial++) {
    // 1..4 items (the bucket's limit), t ∈ {1, 2, 3}, h, w ∈ {2, …, 12}, in total ≤ 256 patches.
    const grid: GridRow[] = [];
    let total = 0;
    const items = 1 + Math.floor(random() * target.maxItems);
    while (grid.length < items) {
      const row: GridRow = [1 + Math.floor(random() * 3), even(12), even(12)];
      if (total + row[0] * row[1] * row[2] > target.maxPatches) break;
      grid.push(row);
      total += row[0] * row[1] * row[2];
    }
    if (grid.length === 0) {
      grid.push([1, 2, 2]);
      total = 4;
    }
    const { pixelValues, gridThw } = randomInputs(grid, 3000 + trial);
    const want = await dynamic.run({ pixel_values: pixelValues, grid_thw: gridThw });
    const [plan] = planRuns(grid, [target]);
    const { pixels, grid: paddedGrid } = padInputs(pixelValues.data, 1536, plan!.units, target);
    const got = await padded.run({ pixel_values: pixels, grid_thw: paddedGrid });
    const tokens = total / 4;
    t.is(Number((got.token_count!.data as BigInt64Array)[0]), tokens, `grid ${JSON.stringify(grid)}: token_count`);
    const embeds = got.image_embeds!.data as Float32Array;
    const deep = got.deepstack_embeds!.data as Float32Array;
    t.true(allFinite(embeds) && allFinite(deep), `grid ${JSON.stringify(grid)}: every row (padding included) finite`);
    const diff = Math.max(
      maxAbsDiff(embeds.subarray(0, tokens * 80), want.image_embeds!.data as Float32Array),
      ...deepstackBlocks(deep, 2).map((d, j) => maxAbsDiff(d.subarray(0, tokens * 80), deepstackBlocks(want.deepstack_embeds!.data as Float32Array, 2)[j]!)),
    );
    t.log(`grid ${JSON.stringify(grid)} (${total} of 256 patches): max |Δ| padded vs dynamic = ${diff.toExponential(2)}`);
    t.true(diff <= SAME_GRAPH_ATOL, `grid ${JSON.stringify(grid)}: max |Δ| ${diff} > ${SAME_GRAPH_ATOL}`);
  }
});

test('a video larger than the largest bucket runs frame group by frame group and equals the dynamic graph', async (t) => {
  const grid: GridRow[] = [
    [1, 4, 4],
    [2, 24, 24],
    [1, 2, 2],
  ]; // 1152-patch video > 1024
  const plans = planRuns(
    grid,
    [64, 256, 1024].map((n) => bucket(n)),
  );
  t.deepEqual(summary(plans), [
    {
      run: 1024,
      grids: [
        [1, 4, 4],
        [1, 24, 24],
      ],
    },
    {
      run: 1024,
      grids: [
        [1, 24, 24],
        [1, 2, 2],
      ],
    },
  ]);
  const { pixelValues, gridThw } = randomInputs(grid, 11);
  const want = await runWith(join(pkg, 'dynamic.onnx'), {}, pixelValues, gridThw);
  const got = await runWith(pkg, { graphs: 'buckets' }, pixelValues, gridThw);
  t.deepEqual(got.image_embeds!.shape, want.image_embeds!.shape);
  assertClose(t, 'image_embeds buckets vs dynamic', got.image_embeds!.data, want.image_embeds!.data, SAME_GRAPH_ATOL);
  assertClose(t, 'deepstack_embeds buckets vs dynamic', got.deepstack_embeds!.data, want.deepstack_embeds!.data, SAME_GRAPH_ATOL);
});

test('an image larger than every bucket: unsupported with oversize "error", the dynamic graph with "dynamic"', async (t) => {
  const grid: GridRow[] = [
    [1, 2, 2],
    [1, 34, 32],
    [1, 4, 2],
  ]; // 1088 patches in one frame
  const buckets = [64, 256, 1024].map((n) => bucket(n));
  const error = t.throws(() => planRuns(grid, buckets, { oversize: 'error' }), { instanceOf: VitgraphError });
  t.is(error?.code, 'unsupported');
  t.regex(error?.message ?? '', /1088 patches .*\[1, 34, 32\].*largest bucket \(1024 patches\)/);
  t.throws(() => planRuns(grid, buckets), { instanceOf: VitgraphError }, 'error is the default');
  t.deepEqual(summary(planRuns(grid, buckets, { oversize: 'dynamic' })), [
    { run: 64, grids: [[1, 2, 2]] },
    { run: 'dynamic', grids: [[1, 34, 32]] },
    { run: 64, grids: [[1, 4, 2]] },
  ]);

  const { pixelValues, gridThw } = randomInputs(grid, 12);
  const runtimeError = await t.throwsAsync(runWith(pkg, { graphs: 'buckets', oversize: 'error' }, pixelValues, gridThw), { instanceOf: VitgraphError });
  t.is(runtimeError?.code, 'unsupported');
  const want = await runWith(join(pkg, 'dynamic.onnx'), {}, pixelValues, gridThw);
  const got = await runWith(pkg, { graphs: 'buckets', oversize: 'dynamic' }, pixelValues, gridThw);
  assertClose(t, 'image_embeds with the dynamic fallback', got.image_embeds!.data, want.image_embeds!.data, SAME_GRAPH_ATOL);
  // A lone padded file has no dynamic graph to fall back on.
  const alone = await t.throwsAsync(runWith(join(pkg, 'padded-1024.onnx'), {}, pixelValues, gridThw), { instanceOf: VitgraphError });
  t.is(alone?.code, 'unsupported');
});

// ---- planning (pure) ------------------------------------------------------------------------

test('planRuns picks the smallest bucket that holds the patches and the items', (t) => {
  const buckets = [bucket(1024), bucket(64), bucket(256)]; // order given does not matter
  t.deepEqual(summary(planRuns([[1, 8, 8]], buckets)), [{ run: 64, grids: [[1, 8, 8]] }]);
  t.deepEqual(summary(planRuns([[1, 8, 10]], buckets)), [{ run: 256, grids: [[1, 8, 10]] }]);
  t.deepEqual(summary(planRuns([[4, 8, 8]], buckets)), [{ run: 256, grids: [[4, 8, 8]] }], 'exactly full');
  // Two 1-row items fit 64 patches but not 64's single grid row: the next bucket takes both.
  t.deepEqual(
    summary(
      planRuns(
        [
          [1, 2, 2],
          [1, 2, 2],
        ],
        buckets,
      ),
    ),
    [
      {
        run: 256,
        grids: [
          [1, 2, 2],
          [1, 2, 2],
        ],
      },
    ],
  );
  // Equal patch counts: the bucket with fewer grid rows that still fits wins.
  t.deepEqual(
    summary(
      planRuns(
        [
          [1, 2, 2],
          [1, 2, 2],
        ],
        [bucket(64, 8), bucket(64, 2)],
      ),
    ).map((p) => p.run),
    [64],
  );
  const [plan] = planRuns(
    [
      [1, 2, 2],
      [1, 2, 2],
    ],
    [bucket(64, 8), bucket(64, 2)],
  );
  t.is(plan?.kind === 'bucket' ? plan.bucket.maxItems : -1, 2);
});

test('planRuns packs greedily in request order and respects maxItems', (t) => {
  const grid: GridRow[] = [
    [1, 8, 8],
    [1, 8, 8],
    [1, 8, 8],
    [1, 2, 2],
    [1, 12, 12],
    [1, 2, 2],
  ];
  // 256 holds up to 4 items: 64+64+64+4 = 196; +144 would pass 256 → a new run; order is kept
  // (the last 2×2 is not moved forward into the first run's spare room).
  const plans = planRuns(grid, [bucket(256)]);
  t.deepEqual(summary(plans), [
    {
      run: 256,
      grids: [
        [1, 8, 8],
        [1, 8, 8],
        [1, 8, 8],
        [1, 2, 2],
      ],
    },
    {
      run: 256,
      grids: [
        [1, 12, 12],
        [1, 2, 2],
      ],
    },
  ]);
  t.deepEqual(
    plans.flatMap((p) => p.units.map((u) => u.firstRow)),
    [0, 64, 128, 192, 196, 340],
    'units keep their pixel rows',
  );
  // maxItems 2: runs close after two items even with patches to spare.
  t.deepEqual(
    summary(
      planRuns(
        [
          [1, 2, 2],
          [1, 2, 2],
          [1, 2, 2],
          [1, 2, 2],
          [1, 2, 2],
        ],
        [bucket(1024, 2)],
      ),
    ).map((p) => p.grids.length),
    [2, 2, 1],
  );
  // A video that fits the largest bucket is not split, even when it could pack better split.
  t.deepEqual(
    summary(
      planRuns(
        [
          [1, 8, 8],
          [3, 8, 8],
        ],
        [bucket(256)],
      ),
    ),
    [
      {
        run: 256,
        grids: [
          [1, 8, 8],
          [3, 8, 8],
        ],
      },
    ],
  );
  t.throws(() => planRuns([[1, 2, 2]], []), { instanceOf: VitgraphError });
});

test('bucket() rejects sizes that are not positive multiples of the merge unit', (t) => {
  for (const bad of [0, 6, 130, -4, 2.5]) t.throws(() => bucket(bad), { instanceOf: VitgraphError }, `maxPatches ${bad}`);
  t.throws(() => bucket(64, 0), { instanceOf: VitgraphError });
  t.deepEqual(bucket(64), { maxPatches: 64, maxItems: 1 });
  t.deepEqual(bucket(1024), { maxPatches: 1024, maxItems: 16 });
});

// ---- the fixed-shape contract -------------------------------------------------------------

test('every input and output dim of a padded graph is a number; the dynamic graph keeps N and I symbolic', async (t) => {
  for (const [maxPatches, maxItems] of [
    [64, 1],
    [256, 4],
    [1024, 16],
  ] as const) {
    const summary = await inspectModel(join(pkg, `padded-${maxPatches}.onnx`));
    const dims = [...summary.inputs, ...summary.outputs].flatMap((s) => s.shape.map((d) => ({ tensor: s.name, d })));
    t.deepEqual(
      dims.filter(({ d }) => typeof d !== 'number'),
      [],
      `padded-${maxPatches}: symbolic dims`,
    );
    t.deepEqual(Object.fromEntries([...summary.inputs, ...summary.outputs].map((s) => [s.name, [s.dtype, s.shape]])), {
      pixel_values: ['float32', [maxPatches, 1536]],
      grid_thw: ['int64', [maxItems, 3]],
      image_embeds: ['float32', [maxPatches / 4, 80]],
      deepstack_embeds: ['float32', [2, maxPatches / 4, 80]],
      token_count: ['int64', []],
    });
    t.is(summary.metadata['vitgraph.variant'], 'padded');
    t.is(summary.metadata['vitgraph.max_patches'], String(maxPatches));
    t.is(summary.metadata['vitgraph.max_items'], String(maxItems));
  }
  const dynamic = await inspectModel(join(pkg, 'dynamic.onnx'));
  t.deepEqual(
    dynamic.inputs.map((s) => s.shape),
    [
      ['N', 1536],
      ['I', 3],
    ],
  );
});
