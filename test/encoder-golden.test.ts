// The dynamic graph against the upstream goldens (fixtures/encoder/, see its README.md): both
// fixture cases, both attention formulations, exported to .onnx by `exportModel` and run by
// onnxruntime-node. Then the goldens' debug tensors, to show where agreement starts: the real
// graph's intermediates (tapped by scope) and a small layout-only graph built from layout.ts.
//
// Tolerance: max |Δ| ≤ 1e-4 on every output (the goldens' README). Measured figures are logged;
// about 5e-6, most of it the sampling coordinates (closed form here, float32 linspace upstream).

import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { GraphBuilder, op, Value } from '../src/onnx/index.js';
import { Session } from '../src/runtime/session.js';
import { Checkpoint } from '../src/weights/index.js';
import { buildDynamicGraph, parseConfig } from '../graphs/qwen3-vl/index.js';
import { exportModel } from '../index.js';
import { checkpointParameters } from '../src/export/model-directory.js';
import { patchCoordinates, patchLayout } from '../graphs/qwen3-vl/layout.js';
import { deepstackBlocks, loadGolden, tempDir, type Golden, type GoldenCase } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';
import { runGraph } from './helpers/onnx.js';

const ATOL = 1e-4;
const CASES = ['tiny', 'tiny_single'] as const satisfies readonly GoldenCase[];

function checkOutputs(t: ExecutionContext, golden: Golden, imageEmbeds: Float32Array, deepstack: Float32Array, shape: readonly number[]): void {
  const tokens = golden.pixelValues.shape[0]! / 4;
  const k = golden.expected.deepstack.length;
  t.deepEqual([...shape], [k, tokens, 80], 'deepstack_embeds shape');
  assertClose(t, 'image_embeds', imageEmbeds, golden.expected.imageEmbeds, ATOL);
  deepstackBlocks(deepstack, k).forEach((block, j) => assertClose(t, `deepstack_embeds[${j}]`, block, golden.expected.deepstack[j]!, ATOL));
}

for (const name of CASES) {
  for (const attention of ['looped', 'dense'] as const) {
    test(`${name}: exported dynamic graph (${attention} attention) matches the goldens`, async (t) => {
      const golden = await loadGolden(name);
      const out = join(await tempDir(t), 'encoder.onnx');
      const result = await exportModel({ model: golden.dir, out, attention });
      t.deepEqual(result.files, [out]);
      const session = await Session.load(out);
      t.teardown(() => session.close());
      const outputs = await session.run({ pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
      t.deepEqual(Object.keys(outputs).sort(), ['deepstack_embeds', 'image_embeds']);
      const { image_embeds: embeds, deepstack_embeds: deep } = outputs;
      t.deepEqual(embeds!.shape, [golden.pixelValues.shape[0]! / 4, 80], 'image_embeds shape');
      checkOutputs(t, golden, embeds!.data as Float32Array, deep!.data as Float32Array, deep!.shape);
    });
  }
}

/** Adds the output of the last node built under `scope` (e.g. 'blocks/0/') as graph output `name`. */
function tap(g: GraphBuilder, scope: string, name: string, width: number): void {
  const node = [...g.nodes].reverse().find((n) => n.name.startsWith(scope));
  if (!node) throw new Error(`no node under scope ${scope}`);
  g.output(new Value(g, node.outputs[0]!, 'float32', ['N', width]), name);
}

for (const name of CASES) {
  test(`${name}: the graph's intermediates match debug.patch_embed, debug.pos_embed, debug.block0`, async (t) => {
    const golden = await loadGolden(name);
    const config = parseConfig(golden.config);
    const params = checkpointParameters(await Checkpoint.open(golden.dir), 'float32');
    const g = buildDynamicGraph(config, params);
    params.finish();
    tap(g, 'patch_embed/', 'tap.patch_embed', config.hiddenSize); // the Conv3d-as-Gemm
    tap(g, 'pos_embed/', 'tap.pos_embed', config.hiddenSize); // Σ of the four weighted taps
    tap(g, 'blocks/0/', 'tap.block0', config.hiddenSize); // block 0's second residual Add
    const out = await runGraph(g, { pixel_values: golden.pixelValues, grid_thw: golden.gridThw });
    assertClose(t, 'patch_embed', out['tap.patch_embed']!.data as Float32Array, golden.debug.patchEmbed, 1e-5);
    assertClose(t, 'pos_embed', out['tap.pos_embed']!.data as Float32Array, golden.debug.posEmbed, 2e-5);
    assertClose(t, 'block0', out['tap.block0']!.data as Float32Array, golden.debug.block0, ATOL);
  });

  test(`${name}: layout.ts alone reproduces debug.pos_embed and the rotary tables of debug.rotary_freqs`, async (t) => {
    const golden = await loadGolden(name);
    const config = parseConfig(golden.config);
    const n = golden.pixelValues.shape[0]!;
    // A graph holding only the layout: grid_thw → per-patch coordinates, position taps, cos/sin.
    const g = new GraphBuilder({ name: 'layout_only' });
    const grid = g.input('grid_thw', 'int64', ['I', 3]);
    const patchIndex = g.constant(
      'int64',
      [n],
      Array.from({ length: n }, (_, i) => BigInt(i)),
    );
    const coords = patchCoordinates(g, config, grid, patchIndex);
    const layout = patchLayout(g, config, coords, patchIndex);
    g.output(coords.row, 'row');
    g.output(coords.col, 'col');
    layout.positionTaps.forEach(({ index, weight }, k) => {
      g.output(index, `tap${k}.index`);
      g.output(op.reshape(weight, [n]), `tap${k}.weight`);
    });
    // The rotary tables as [N, width]: width D/2 (θ) or D ([θ, θ], rotate-half layout).
    g.output(op.reshape(layout.cos, [n, -1]), 'cos');
    g.output(op.reshape(layout.sin, [n, -1]), 'sin');
    const out = await runGraph(g, { grid_thw: golden.gridThw });

    // Coordinates: merge-window order enumerated independently (spec §3.2 step 4).
    const rows: number[] = [];
    const cols: number[] = [];
    for (const [tt, h, w] of golden.grid) {
      for (let f = 0; f < tt; f++) {
        for (let k = 0; k < h * w; k++) {
          const window = Math.floor(k / 4);
          rows.push(2 * Math.floor(window / (w / 2)) + Math.floor((k % 4) / 2));
          cols.push(2 * (window % (w / 2)) + (k % 2));
        }
      }
    }
    t.deepEqual(Array.from(out.row!.data as BigInt64Array, Number), rows);
    t.deepEqual(Array.from(out.col!.data as BigInt64Array, Number), cols);

    // Position embedding: Σₖ weightₖ · table[indexₖ] in float64 from the graph's taps.
    const table = golden.weights.get('pos_embed.weight')!;
    const H = config.hiddenSize;
    const pos = new Float64Array(n * H);
    for (let k = 0; k < 4; k++) {
      const index = out[`tap${k}.index`]!.data as BigInt64Array;
      const weight = out[`tap${k}.weight`]!.data as Float32Array;
      for (let p = 0; p < n; p++) for (let c = 0; c < H; c++) pos[p * H + c]! += weight[p]! * table[Number(index[p]) * H + c]!;
    }
    assertClose(t, 'pos_embed from the layout taps', pos, golden.debug.posEmbed, 2e-5);

    // Rotary: the graph's cos/sin tables vs cos/sin of the golden angles θ [N, D/2] (repeated to
    // [θ, θ] when the graph keeps the rotate-half layout).
    const half = config.headDim / 2;
    const width = out.cos!.shape[1]!;
    t.true(width === half || width === 2 * half, `cos table width ${width}`);
    const angles = golden.debug.rotaryFreqs;
    const tabulate = (fn: (x: number) => number): Float64Array => Float64Array.from({ length: n * width }, (_, i) => fn(angles[Math.floor(i / width) * half + ((i % width) % half)]!));
    assertClose(t, `cos(θ) [N, ${width}]`, out.cos!.data as Float32Array, tabulate(Math.cos), 1e-5);
    assertClose(t, `sin(θ) [N, ${width}]`, out.sin!.data as Float32Array, tabulate(Math.sin), 1e-5);
  });
}
