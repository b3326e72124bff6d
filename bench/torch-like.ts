// A baseline for the benchmark: the graph a TorchScript-based `torch.onnx.export` (opset 17)
// writes for the upstream `Qwen3VLVisionModel.forward` traced on one image, rebuilt with
// vitgraph's builder (no PyTorch here). What tracing produces, and this graph mirrors:
// - grid-derived tensors (position-table taps, rotary cos/sin) are constants for the traced grid;
// - Conv3d patch embedding; Linear as MatMul with a transposed weight constant + Add;
// - attention as MatMul → scale → Softmax → MatMul per head (the traced single segment), rotary
//   decomposed (Slice/Neg/Concat, Mul, Add);
// - GELU decomposed (opset 17 has no Gelu op): tanh form in the blocks, erf form in the mergers.
// test/bench-baseline.test.ts checks it against the float64 golden like vitgraph's own graphs.

import { GraphBuilder, op, type Value } from '../src/onnx/index.js';
import type { VisionConfig } from '../graphs/qwen3-vl/config.js';
import { rotaryInverseFrequencies } from '../graphs/qwen3-vl/layout.js';
import { WeightBinder, type Checkpoint } from '../src/weights/index.js';

/** Weights bound strictly; `<name>_t` is the checkpoint's `<name>` [out, in] transposed to [in, out]. */
function transposingParams(checkpoint: Checkpoint): { take: (name: string, shape: readonly number[]) => () => Promise<Uint8Array>; finish: () => void } {
  const binder = new WeightBinder(checkpoint, 'float32');
  return {
    take: (name, shape) => {
      if (!name.endsWith('_t')) {
        const w = binder.take(name, shape);
        return () => w.load();
      }
      const [rows, cols] = shape as [number, number]; // [in, out]
      const w = binder.take(name.slice(0, -2), [cols, rows]);
      return async () => {
        const src = new Float32Array((await w.load()).buffer.slice(0));
        const dst = new Float32Array(rows * cols);
        for (let o = 0; o < cols; o++) for (let i = 0; i < rows; i++) dst[i * cols + o] = src[o * rows + i]!;
        return new Uint8Array(dst.buffer);
      };
    },
    finish: () => binder.finish(),
  };
}

/** The traced graph for one image of `gh × gw` patches. */
export function buildTorchLikeGraph(config: VisionConfig, checkpoint: Checkpoint, gh: number, gw: number): GraphBuilder {
  const params = transposingParams(checkpoint);
  const g = new GraphBuilder({ name: 'torch_export_like', params });
  const N = gh * gw;
  const { hiddenSize: H, numHeads: heads, headDim: D, inChannels: C, temporalPatchSize: T, patchSize: P } = config;
  const pixels = g.input('pixel_values', 'float32', [N, config.patchDim]);

  const linear = (name: string, x: Value, out: number): Value => g.scope(name, () => op.add(op.matmul(x, g.param('weight_t', [x.dim(-1) as number, out])), g.param('bias', [out])));
  const layerNorm = (name: string, x: Value): Value => g.scope(name, () => op.layerNorm(x, g.param('weight', [x.dim(-1) as number]), g.param('bias', [x.dim(-1) as number]), 1e-6));
  const scalar = (v: number): Value => g.scalar('float32', v);
  const geluTanh = (x: Value): Value => {
    const inner = op.mul(scalar(Math.sqrt(2 / Math.PI)), op.add(x, op.mul(scalar(0.044715), op.pow(x, scalar(3)))));
    return op.mul(op.mul(scalar(0.5), x), op.add(scalar(1), op.tanh(inner)));
  };
  const geluErf = (x: Value): Value => op.mul(op.mul(x, op.add(op.erf(op.div(x, scalar(Math.SQRT2))), scalar(1))), scalar(0.5));

  // Patch embedding as Conv3d on [N, C, T, P, P].
  let x = g.scope('patch_embed', () =>
    g.scope('proj', () => {
      const volume = op.reshape(pixels, [N, C, T, P, P]);
      const y = op.conv(volume, g.param('weight', [H, C, T, P, P]), g.param('bias', [H]), [T, P, P]); // [N, H, 1, 1, 1]
      return op.reshape(y, [N, H]);
    }),
  );

  // Learned positions: traced tap indexes/weights in raster order, then the window permute.
  const G = config.positionGridSize;
  const taps = bilinearTaps(G, gh, gw);
  const table = g.scope('pos_embed', () => g.param('weight', [config.numPositionEmbeddings, H]));
  const gathered = op.gather(table, g.constant('int64', [4, N], taps.index.map(BigInt))); // [4, N, H]
  const weighted = op.mul(gathered, g.constant('float32', [4, N, 1], taps.weight)); // [4, N, H]
  const [a, b, c, d] = op.split(weighted, 0, [1, 1, 1, 1]).map((t) => op.squeeze(t, [0])) as [Value, Value, Value, Value];
  const raster = op.add(op.add(op.add(a, b), c), d); // [N, H]
  const windows = op.reshape(op.transpose(op.reshape(raster, [gh / 2, 2, gw / 2, 2, H]), [0, 2, 1, 3, 4]), [N, H]);
  x = op.add(x, windows);

  // Rotary cos/sin for the traced grid, [N, 1, D] (merge-window order).
  const angles = rotaryAngles(config, gh, gw);
  const cos = g.constant('float32', [N, 1, D], angles.map(Math.cos), 'rotary.cos');
  const sin = g.constant('float32', [N, 1, D], angles.map(Math.sin), 'rotary.sin');
  const rotate = (t: Value): Value => {
    const half = op.concat([op.neg(op.slice(t, 2, D / 2, D)), op.slice(t, 2, 0, D / 2)], 2);
    return op.add(op.mul(t, cos), op.mul(half, sin)); // [N, heads, D]
  };

  const deepstack: Value[] = [];
  for (let i = 0; i < config.depth; i++) {
    x = g.scope('blocks', () =>
      g.scope(i, () => {
        const normed = layerNorm('norm1', x);
        const attn = g.scope('attn', () => {
          const qkv = op.transpose(op.reshape(linear('qkv', normed, 3 * H), [N, 3, heads, D]), [1, 0, 2, 3]); // [3, N, heads, D]
          const [q, k, v] = op.split(qkv, 0, [1, 1, 1]).map((t) => op.squeeze(t, [0])) as [Value, Value, Value];
          const perHead = (t: Value): Value => op.transpose(t, [1, 0, 2]); // [heads, N, D]
          const scores = op.mul(op.matmul(perHead(rotate(q)), op.transpose(rotate(k), [1, 2, 0])), scalar(1 / Math.sqrt(D)));
          const o = op.matmul(op.softmax(scores, -1), perHead(v)); // [heads, N, D]
          return linear('proj', op.reshape(op.transpose(o, [1, 0, 2]), [N, H]), H);
        });
        const h = op.add(x, attn);
        const normed2 = layerNorm('norm2', h);
        const mlp = g.scope('mlp', () => linear('linear_fc2', geluTanh(linear('linear_fc1', normed2, config.intermediateSize)), H));
        return op.add(h, mlp);
      }),
    );
    const tap = config.deepstackVisualIndexes.indexOf(i);
    if (tap >= 0) {
      deepstack.push(
        g.scope('deepstack_merger_list', () =>
          g.scope(tap, () => {
            const u = layerNorm('norm', op.reshape(x, [N / 4, 4 * H]));
            return linear('linear_fc2', geluErf(linear('linear_fc1', u, 4 * H)), config.outHiddenSize);
          }),
        ),
      );
    }
  }
  const merged = g.scope('merger', () => {
    const u = op.reshape(layerNorm('norm', x), [N / 4, 4 * H]);
    return linear('linear_fc2', geluErf(linear('linear_fc1', u, 4 * H)), config.outHiddenSize);
  });
  g.output(merged, 'image_embeds');
  g.output(
    op.concat(
      deepstack.map((t) => op.unsqueeze(t, [0])),
      0,
    ),
    'deepstack_embeds',
  );
  params.finish();
  return g;
}

/** Traced `fast_pos_embed_interpolate` taps for one gh × gw grid, raster order: index/weight [4, N]. */
function bilinearTaps(G: number, gh: number, gw: number): { index: number[]; weight: number[] } {
  const axis = (n: number): { lo: number; hi: number; f: number }[] =>
    Array.from({ length: n }, (_, r) => {
      const pos = n === 1 ? 0 : (r * (G - 1)) / (n - 1);
      const lo = Math.floor(pos);
      return { lo, hi: Math.min(lo + 1, G - 1), f: pos - lo };
    });
  const [ys, xs] = [axis(gh), axis(gw)];
  const index: number[][] = [[], [], [], []];
  const weight: number[][] = [[], [], [], []];
  for (const y of ys) {
    for (const x of xs) {
      const corners = [
        [y.lo * G + x.lo, (1 - y.f) * (1 - x.f)],
        [y.lo * G + x.hi, (1 - y.f) * x.f],
        [y.hi * G + x.lo, y.f * (1 - x.f)],
        [y.hi * G + x.hi, y.f * x.f],
      ] as const;
      corners.forEach(([i, w], k) => {
        index[k]!.push(i);
        weight[k]!.push(w);
      });
    }
  }
  return { index: index.flat(), weight: weight.flat() };
}

/** Traced `rot_pos_emb` for one grid: [θ, θ] per patch in merge-window order, [N · D]. */
function rotaryAngles(config: VisionConfig, gh: number, gw: number): number[] {
  const invFreq = rotaryInverseFrequencies(config).map(Math.fround);
  const out: number[] = [];
  for (let br = 0; br < gh / 2; br++) {
    for (let bc = 0; bc < gw / 2; bc++) {
      for (let q = 0; q < 4; q++) {
        const [row, col] = [2 * br + (q >> 1), 2 * bc + (q & 1)];
        const theta = [...invFreq.map((f) => row * f), ...invFreq.map((f) => col * f)];
        out.push(...theta, ...theta);
      }
    }
  }
  return out;
}
