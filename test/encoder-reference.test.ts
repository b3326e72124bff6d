// The float64 reference (test/reference/qwen3vl.ts) against the upstream goldens: it is a
// trustworthy yardstick for the held-out configurations only if it reproduces transformers first.
//
// What limits the agreement (measured, see the t.log lines):
// - every golden tensor is a float64 result stored as float32: ≤ 6e-8 relative, ~2e-7 absolute;
// - upstream samples the position table at `torch.linspace` coordinates in float32 and multiplies
//   the bilinear weights in float32, and rotates q/k in float32 (`.float()` in
//   apply_rotary_pos_emb_vision) even in a float64 run. The pure-float64 reference therefore differs
//   by ~5e-6 on debug.pos_embed and ≤ 1e-5 downstream; with `hfFloat32` those spots are emulated
//   and `tiny` agrees at the storage-rounding level (≤ 3e-7);
// - `tiny_single` keeps one ~8e-6 difference even when emulated: at column 14 of its 16-wide grid
//   torch's linspace returned 43.8666687 where its scalar formula (end − step·1, which the
//   emulation uses, and which matches every other coordinate of both cases) gives 43.8666649, one
//   float32 ulp apart.

import test from 'ava';
import { erf, geluErf, geluTanh, referenceConfig, referenceForward } from './reference/qwen3vl.js';
import { loadGolden, type GoldenCase } from './helpers/files.js';
import { assertClose } from './helpers/numeric.js';

const PURE_F64_ATOL = 1e-5;
const EMULATED_ATOL: Readonly<Record<Extract<GoldenCase, 'tiny' | 'tiny_single'>, number>> = { tiny: 5e-7, tiny_single: 1e-5 };

test('erf and the two GELUs match values from an independent libm (Python math.erf)', (t) => {
  const table: [number, number][] = [
    [0, 0],
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
    [-1.5, -0.9661051464753108],
    [5, 0.9999999999984626],
    [7, 1],
  ];
  for (const [x, want] of table) t.true(Math.abs(erf(x) - want) <= 1e-15, `erf(${x}) = ${erf(x)}, want ${want}`);
  t.true(Math.abs(geluErf(1) - 0.8413447460685429) <= 1e-15);
  t.true(Math.abs(geluErf(-3) - -0.00404969409489031) <= 1e-15);
  t.true(Math.abs(geluTanh(1) - 0.8411919906082768) <= 1e-15);
});

for (const name of ['tiny', 'tiny_single'] as const satisfies readonly GoldenCase[]) {
  for (const hfFloat32 of [false, true]) {
    test(`${name}: reference (${hfFloat32 ? 'upstream float32 spots emulated' : 'pure float64'}) reproduces the goldens`, async (t) => {
      const golden = await loadGolden(name);
      const out = referenceForward(referenceConfig(golden.config), golden.weights, golden.pixelValues.data, golden.grid, { hfFloat32 });
      const atol = hfFloat32 ? EMULATED_ATOL[name] : PURE_F64_ATOL;
      // patch_embed and the rotary angles involve none of the float32 spots: storage rounding only.
      assertClose(t, 'debug.patch_embed', out.debug.patchEmbed, golden.debug.patchEmbed, 3e-7);
      assertClose(t, 'debug.rotary_freqs', out.debug.rotaryFreqs, golden.debug.rotaryFreqs, 3e-7);
      assertClose(t, 'debug.pos_embed', out.debug.posEmbed, golden.debug.posEmbed, atol);
      assertClose(t, 'debug.block0', out.debug.block0, golden.debug.block0, atol);
      assertClose(t, 'image_embeds', out.imageEmbeds, golden.expected.imageEmbeds, atol);
      t.is(out.deepstack.length, golden.expected.deepstack.length);
      out.deepstack.forEach((d, j) => assertClose(t, `deepstack_embeds.${j}`, d, golden.expected.deepstack[j]!, atol));
    });
  }
}

test('the reference is sensitive to what the goldens pin (a swapped GELU or a transposed grid moves the outputs)', async (t) => {
  // Guards against a reference that passes for the wrong reason: perturb one spec point at a time
  // and require a difference far above the tolerance.
  const golden = await loadGolden('tiny');
  const config = referenceConfig(golden.config);
  const erfBlocks = referenceForward({ ...config, act: 'erf' }, golden.weights, golden.pixelValues.data, golden.grid);
  let diff = 0;
  erfBlocks.imageEmbeds.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - golden.expected.imageEmbeds[i]!))));
  t.log(`erf GELU in the blocks instead of tanh: max |Δ| = ${diff.toExponential(2)}`);
  t.true(diff > 10 * PURE_F64_ATOL);
  // One image [1, 4, 6] vs the same rows called a [1, 6, 4] grid: positions and windows change.
  const [first] = golden.grid;
  const rows = 4 * 6 * 1536;
  const a = referenceForward(config, golden.weights, golden.pixelValues.data.subarray(0, rows), [first!]);
  const b = referenceForward(config, golden.weights, golden.pixelValues.data.subarray(0, rows), [[1, 6, 4]]);
  let layoutDiff = 0;
  a.imageEmbeds.forEach((v, i) => (layoutDiff = Math.max(layoutDiff, Math.abs(v - b.imageEmbeds[i]!))));
  t.true(layoutDiff > 1e-2, `transposed grid changed image_embeds by only ${layoutDiff}`);
});
