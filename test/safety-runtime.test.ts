// The runtime on hostile inputs (issue 9 §3, §7, §8, §9): integer-safe grid checks on the host
// and in the dynamic graph, non-finite pixels refused naming the item, closed means closed for
// EncoderRuntime / VisionEncoder / Session, and API errors stay inside the typed vocabulary.

import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportModel, VisionEncoder } from '../index.js';
import { EncoderRuntime } from '../src/runtime/encoder-runtime.js';
import { MAX_GRID_VALUE } from '../src/contract.js';
import { checkEncoderInputs } from '../src/runtime/input-checks.js';
import { openPackage } from '../src/runtime/package.js';
import { VitgraphError, type ErrorCode } from '../src/errors.js';
import type { Runner } from '../src/runtime/runner.js';
import { Session } from '../src/runtime/session.js';
import { hostTensor, type HostTensor } from '../src/tensor.js';
import { loadGolden, type Golden } from './helpers/files.js';
import { ortSession, runOrt } from './helpers/onnx.js';

let dir = '';
let onnxPath = '';
let pkg = '';
let golden: Golden;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vitgraph-safety-runtime-'));
  golden = await loadGolden('tiny');
  onnxPath = join(dir, 'dynamic.onnx');
  pkg = join(dir, 'pkg');
  await exportModel({ model: golden.dir, out: onnxPath });
  await exportModel({ model: golden.dir, out: pkg, maxPatches: [64, 256] });
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const grid = (rows: (number | bigint)[][]): HostTensor<'int64'> => hostTensor('int64', [rows.length, 3], BigInt64Array.from(rows.flat().map(BigInt)));
/** The golden's first `rows` pixel rows. */
const pixels = (rows: number): HostTensor<'float32'> => hostTensor('float32', [rows, 1536], golden.pixelValues.data.slice(0, rows * 1536));

function expectError(t: ExecutionContext, error: unknown, code: ErrorCode, message: RegExp): VitgraphError {
  t.true(error instanceof VitgraphError, String(error));
  const e = error as VitgraphError;
  t.is(e.code, code, e.message);
  t.regex(e.message, message);
  return e;
}

// ---- integer-safe contradiction checks ---------------------------------------------------------

// 2^22 · 2^22 · 2^20 = 2^64 wraps to 0 in int64, so Σ t·h·w would read 16 = N.
const WRAP: bigint[] = [2n ** 22n, 2n ** 22n, 2n ** 20n];

test('host check: values beyond 2^20, t·h·w beyond 2^31, zero and negative values are refused exactly', (t) => {
  const check = (rows: (number | bigint)[][], n: number): unknown => t.throws(() => checkEncoderInputs({ pixelValues: pixels(n), gridThw: grid(rows) }, 1536, 2));
  expectError(t, check([[1, 4, 4], WRAP], 16), 'input_mismatch', new RegExp(`grid_thw row 1: expected t, h, w ≤ ${MAX_GRID_VALUE}, got \\[4194304, 4194304, 1048576\\]`));
  expectError(t, check([[2 ** 20, 2 ** 20, 4]], 16), 'input_mismatch', /grid_thw row 0: expected t·h·w ≤ 2147483648 patch rows/);
  expectError(t, check([[-1, 4, 4]], 16), 'input_mismatch', /grid_thw row 0: expected t ≥ 1/);
  expectError(t, check([[1, -4, -4]], 16), 'input_mismatch', /grid_thw row 0: expected t ≥ 1/);
  expectError(
    t,
    check(
      [
        [1, 4, 4],
        [0, 4, 4],
      ],
      16,
    ),
    'input_mismatch',
    /grid_thw row 1/,
  );
  expectError(
    t,
    check(
      [
        [1, 4, 4],
        [1, 2, 2],
      ],
      16,
    ),
    'input_mismatch',
    /pixel_values has 16 rows but grid_thw describes 20/,
  );
  expectError(t, check([[2n ** 63n - 1n, 4, 4]], 16), 'input_mismatch', /≤ 1048576/);
});

test('dynamic graph: an int64 wrap in t·h·w cannot pass its own check', async (t) => {
  const session = await ortSession(onnxPath);
  try {
    for (const rows of [
      [[1, 4, 4], WRAP],
      [
        [1, 4, 4],
        [2n ** 4n, 2n ** 30n, 2n ** 30n],
      ],
    ]) {
      const error = await t.throwsAsync(runOrt(session, { pixel_values: pixels(16), grid_thw: grid(rows) }));
      t.regex(error?.message ?? '', /checks\/grid_thw_must_be_positive_with_even_h_w\/Reshape/, JSON.stringify(rows.map((r) => r.map(String))));
    }
    // The bound itself does not get in the way of a valid grid.
    const ok = await runOrt(session, { pixel_values: pixels(16), grid_thw: grid([[1, 4, 4]]) });
    t.deepEqual(ok.image_embeds?.shape, [4, 80]);
  } finally {
    await session.release();
  }
});

for (const graphs of ['dynamic', 'buckets'] as const) {
  test(`${graphs}: contradictory grids (Σ ≠ N, t = 0, negative, wrapping) never return numbers`, async (t) => {
    const runtime = await EncoderRuntime.open(pkg, { graphs, threads: 1 });
    try {
      for (const rows of [
        [
          [1, 4, 4],
          [1, 2, 2],
        ],
        [[0, 4, 4]],
        [[1, -4, -4]],
        [[1, 4, 4], WRAP],
      ]) {
        const error = await t.throwsAsync(runtime.run(pixels(16), grid(rows)));
        expectError(t, error, 'input_mismatch', /grid_thw|pixel_values/);
      }
    } finally {
      await runtime.close();
    }
  });
}

// ---- non-finite pixels -------------------------------------------------------------------------

for (const graphs of ['dynamic', 'buckets'] as const) {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    test(`${graphs}: a ${bad} pixel in item 1 is refused naming item 1, never encoded`, async (t) => {
      const runtime = await EncoderRuntime.open(pkg, { graphs, threads: 1 });
      try {
        const px = pixels(32); // items [1, 4, 4] and [1, 4, 4]
        px.data[16 * 1536 + 7 * 1536 + 100] = bad; // item 1, its row 7
        const error = expectError(
          t,
          await t.throwsAsync(
            runtime.run(
              px,
              grid([
                [1, 4, 4],
                [1, 4, 4],
              ]),
            ),
          ),
          'invalid_argument',
          /pixel_values item 1: expected finite values/,
        );
        t.is(error.details.item, 1);
        t.is(error.details.row, 23);
        t.is(error.details.column, 100);
        // The clean item alone still runs.
        const clean = await runtime.run(pixels(16), grid([[1, 4, 4]]));
        t.true(clean.image_embeds!.data.every(Number.isFinite));
      } finally {
        await runtime.close();
      }
    });
  }
}

// ---- closed means closed -----------------------------------------------------------------------

/** A runner factory over ort-node sessions that counts opens and closes, opening after `delayMs`. */
function countingFactory(delayMs = 0): { create: (path: string) => Promise<Runner>; opened: string[]; closed: string[] } {
  const opened: string[] = [];
  const closed: string[] = [];
  const create = async (path: string): Promise<Runner> => {
    opened.push(path);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const session = await Session.load(path, { threads: 1 });
    return {
      inputs: session.inputs,
      outputs: session.outputs,
      run: (feeds) => session.run(feeds),
      close: async () => {
        closed.push(path);
        await session.close();
      },
    };
  };
  return { create, opened, closed };
}

test('EncoderRuntime: after close, a request needing an unopened bucket rejects as closed and opens nothing', async (t) => {
  const factory = countingFactory();
  const runtime = await EncoderRuntime.open(pkg, { graphs: 'buckets', createRunner: factory.create });
  await runtime.run(pixels(16), grid([[1, 4, 4]])); // opens padded-64
  t.is(factory.opened.length, 1);
  await runtime.close();
  expectError(t, await t.throwsAsync(runtime.run(pixels(128), grid([[1, 8, 16]]))), 'closed', /expected an open encoder/); // would need padded-256
  expectError(t, await t.throwsAsync(runtime.run(pixels(16), grid([[1, 4, 4]]))), 'closed', /closed/); // padded-64 was open
  await t.throwsAsync(runtime.warmup(), { instanceOf: VitgraphError });
  t.is(factory.opened.length, 1, 'no session opened after close');
  t.deepEqual(factory.closed, factory.opened);
});

test('EncoderRuntime: a request pending while its session opens rejects as closed, and the session is closed', async (t) => {
  const factory = countingFactory(150);
  const runtime = await EncoderRuntime.open(pkg, { graphs: 'buckets', createRunner: factory.create });
  const pending = runtime.run(pixels(16), grid([[1, 4, 4]]));
  await runtime.close();
  expectError(t, await t.throwsAsync(pending), 'closed', /closed/);
  t.deepEqual(factory.closed, factory.opened, 'every opened session was closed');
});

test('VisionEncoder: encode after close rejects as closed', async (t) => {
  const encoder = await VisionEncoder.load(pkg, { threads: 1, graphs: 'buckets' });
  await encoder.close();
  expectError(t, await t.throwsAsync(encoder.encode([{ pixelValues: pixels(128), gridThw: [[1, 8, 16]] }])), 'closed', /closed/);
});

test('Session (onnxruntime-node): a run after close rejects with code closed', async (t) => {
  const session = await Session.load(onnxPath, { threads: 1 });
  const queued = session.run({ pixel_values: pixels(16), grid_thw: grid([[1, 4, 4]]) });
  await session.close();
  const late = session.run({ pixel_values: pixels(16), grid_thw: grid([[1, 4, 4]]) });
  await Promise.allSettled([queued]);
  expectError(t, await t.throwsAsync(late), 'closed', /expected an open session/);
});

// ---- the typed vocabulary at the API boundary --------------------------------------------------

test('non-string paths and inputs are invalid_argument at the API boundary', async (t) => {
  const asString = (v: unknown): string => v as string;
  expectError(t, await t.throwsAsync(VisionEncoder.load(asString(5))), 'invalid_argument', /model: expected a file path/);
  expectError(t, await t.throwsAsync(exportModel({ model: asString(5), out: join(dir, 'x.onnx') })), 'invalid_argument', /model: expected a file path/);
  expectError(t, await t.throwsAsync(exportModel({ model: golden.dir, out: asString(5) })), 'invalid_argument', /out: expected a file path/);
  expectError(t, await t.throwsAsync(exportModel(undefined as unknown as Parameters<typeof exportModel>[0])), 'invalid_argument', /export options/);
  expectError(t, await t.throwsAsync(EncoderRuntime.open(asString({}))), 'invalid_argument', /model: expected a file path/);
  expectError(t, await t.throwsAsync(openPackage(asString(null))), 'invalid_argument', /package directory/);
  expectError(t, await t.throwsAsync(Session.load(asString(5))), 'invalid_argument', /ONNX model path/);
  const encoder = await VisionEncoder.load(pkg, { threads: 1 });
  try {
    expectError(t, await t.throwsAsync(encoder.encode(5 as unknown as [])), 'invalid_argument', /inputs: expected an array/);
  } finally {
    await encoder.close();
  }
});

const validManifest = (): Record<string, unknown> => ({
  format: 'vitgraph.package',
  formatVersion: 2,
  vitgraph: '0',
  model: 'qwen3-vl',
  io: { patchDim: 1536, mergeUnit: 4, spatialMergeSize: 2, outputs: [{ name: 'image_embeds', tokenAxis: 0 }] },
  dtype: 'float32',
  opset: 21,
  config: golden.config,
  graphs: [{ file: 'dynamic.onnx', bytes: 10, sha256: 'a'.repeat(64), variant: 'dynamic' }],
});

for (const [name, edit, field] of [
  ['graphs missing', (m: Record<string, unknown>) => delete m.graphs, /graphs: expected a non-empty list of graph entries/],
  ['graphs an object', (m: Record<string, unknown>) => (m.graphs = { a: 1 }), /graphs: expected a non-empty list/],
  ['graph file a number', (m: Record<string, unknown>) => ((m.graphs as Record<string, unknown>[])[0]!.file = 3), /graphs\[0\]\.file: expected a plain file name inside the package, got 3/],
  ['graph bytes a string', (m: Record<string, unknown>) => ((m.graphs as Record<string, unknown>[])[0]!.bytes = '10'), /graphs\[0\]\.bytes: expected a byte count/],
  ['graph sha256 short', (m: Record<string, unknown>) => ((m.graphs as Record<string, unknown>[])[0]!.sha256 = 'abc'), /graphs\[0\]\.sha256: expected 64 hex digits/],
  ['graph variant unknown', (m: Record<string, unknown>) => ((m.graphs as Record<string, unknown>[])[0]!.variant = 'fast'), /graphs\[0\]: expected variant/],
  [
    'padded without maxPatches',
    (m: Record<string, unknown>) => ((m.graphs as Record<string, unknown>[])[0]!.variant = 'padded'),
    /graphs\[0\]: expected variant "dynamic", or "padded" with positive integer maxPatches/,
  ],
  ['weights not an object', (m: Record<string, unknown>) => (m.weights = 'weights.data'), /weights\.file: expected a plain file name/],
  ['config missing', (m: Record<string, unknown>) => delete m.config, /config: expected an object/],
  ['a JSON array', () => undefined, /expected a JSON object/],
] as const) {
  test(`a manifest with ${name} is invalid_file naming the field`, async (t) => {
    const pkgDir = join(dir, `manifest-${name.replace(/\W+/g, '-')}`);
    await mkdir(pkgDir, { recursive: true });
    const manifest = validManifest();
    edit(manifest);
    await writeFile(join(pkgDir, 'vitgraph.json'), JSON.stringify(name === 'a JSON array' ? [manifest] : manifest));
    expectError(t, await t.throwsAsync(openPackage(pkgDir)), 'invalid_file', field);
  });
}
