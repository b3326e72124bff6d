// An independent float64 reference of the Qwen2-VL and Qwen2.5-VL vision towers, written from
// notes/qwen2-vl-vision-spec.md §1–3 with plain loops over Float64Arrays. It shares no code with
// graphs/ or src/onnx/ (only the plain-loop kernels of test/reference/qwen3vl.ts), and it runs
// window attention the way upstream does (permute merge units with `get_window_index`, attend
// over contiguous cu_seqlens runs, un-permute the merged tokens with argsort), where the graphs
// use closed forms (dynamic) or masks in input order (padded).
//
// Mirrors transformers `Qwen2VisionTransformerPretrainedModel.forward` (modeling_qwen2_vl.py
// @ 00b676f8) and `Qwen2_5_VisionTransformerPretrainedModel.forward` (modeling_qwen2_5_vl.py
// @ 00b676f8):
//   patch embed (Conv3d without bias = one matmul per row) → [2.5: permute by window_index]
//   → blocks: x + attn(norm1(x)) with 2-D rotate-half rotary, attention per frame (Qwen2-VL, and
//     Qwen2.5-VL blocks in fullatt_block_indexes) or per window; x + mlp(norm2(x))
//     (Qwen2-VL: LayerNorm, fc2(quick_gelu(fc1)); Qwen2.5-VL: RMSNorm, down(silu(gate)·up))
//   → merger: ln_q per patch → 2×2 grouping → mlp.0 → erf GELU → mlp.2 → [2.5: un-permute].
// Everything is float64 (upstream's internal float32 casts are not reproduced: ~1e-7 here).

import { geluErf, layerNorm, linear, rotate, segmentAttention, type GridRow, type ReferenceWeights } from './qwen3vl.js';

export interface Qwen2ReferenceConfig {
  readonly family: 'qwen2_vl' | 'qwen2_5_vl';
  readonly depth: number;
  readonly hidden: number; // E
  readonly intermediate: number;
  readonly heads: number;
  readonly out: number; // O
  readonly windowSize: number; // px (Qwen2.5-VL)
  readonly fullatt: readonly number[]; // Qwen2.5-VL
}

const PATCH_DIM = 3 * 2 * 14 * 14; // C·Tp·P²
const PATCH = 14;
const MERGE = 2;
const EPS = 1e-6;
const ROPE_THETA = 10000;

/** Reads a config.json object (full or bare); the family from `model_type`. */
export function qwen2ReferenceConfig(json: Record<string, unknown>): Qwen2ReferenceConfig {
  const v = (typeof json.vision_config === 'object' && json.vision_config !== null ? json.vision_config : json) as Record<string, unknown>;
  const num = (key: string, fallback?: number): number => {
    const x = v[key] ?? fallback;
    if (typeof x !== 'number') throw new Error(`reference config: ${key} missing`);
    return x;
  };
  const family = (v.model_type ?? json.model_type) === 'qwen2_5_vl' ? 'qwen2_5_vl' : 'qwen2_vl';
  if (family === 'qwen2_vl') {
    const hidden = num('embed_dim', 1280);
    return { family, depth: num('depth', 32), hidden, intermediate: Math.trunc(hidden * num('mlp_ratio', 4)), heads: num('num_heads', 16), out: num('hidden_size'), windowSize: 0, fullatt: [] };
  }
  return {
    family,
    depth: num('depth', 32),
    hidden: num('hidden_size'),
    intermediate: num('intermediate_size', 3420),
    heads: num('num_heads', 16),
    out: num('out_hidden_size'),
    windowSize: num('window_size', 112),
    fullatt: (v.fullatt_block_indexes as number[] | undefined) ?? [7, 15, 23, 31],
  };
}

export interface Qwen2ReferenceOutputs {
  readonly imageEmbeds: Float64Array; // [N/4, O], input order
  /** Qwen2.5-VL: upstream's window_index [N/4] and cu_window_seqlens (empty for Qwen2-VL). */
  readonly windowIndex: readonly number[];
  readonly cuWindowSeqlens: readonly number[];
  readonly debug: {
    readonly patchEmbed: Float64Array; // [N, E], input order
    readonly rotaryFreqs: Float64Array; // [N, D/2], input order: row angles then column angles
    readonly block0: Float64Array; // [N, E], input order
    /** Largest |value| the residual stream holds after any block (what a half-precision stream must fit). */
    readonly streamMaxAbs: number;
  };
}

/** Runs the tower. `pixels` [N, 1176] in processor row order; `grid` one (t, h, w) per item. */
export function qwen2ReferenceForward(config: Qwen2ReferenceConfig, weights: ReferenceWeights, pixels: ArrayLike<number>, grid: readonly GridRow[]): Qwen2ReferenceOutputs {
  const w = (name: string): Float64Array => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference: weight ${name} missing`);
    return t;
  };
  const E = config.hidden;
  const D = E / config.heads;
  const N = grid.reduce((s, [t, h, ww]) => s + t * h * ww, 0);
  if (pixels.length !== N * PATCH_DIM) throw new Error(`reference: ${pixels.length / PATCH_DIM} pixel rows, grid says ${N}`);
  const patchEmbed = linear(Float64Array.from(pixels), N, PATCH_DIM, w('patch_embed.proj.weight'), new Float64Array(E), E);

  // (row, col) of each patch in processor (merge-window) order; frames as contiguous segments.
  const rows: number[] = [];
  const cols: number[] = [];
  const frames: [start: number, length: number][] = [];
  for (const [t, h, ww] of grid) {
    for (let f = 0; f < t; f++) {
      frames.push([rows.length, h * ww]);
      for (let k = 0; k < h * ww; k++) {
        const unit = Math.floor(k / 4);
        rows.push(MERGE * Math.floor(unit / (ww / MERGE)) + Math.floor((k % 4) / MERGE));
        cols.push(MERGE * (unit % (ww / MERGE)) + (k % MERGE));
      }
    }
  }
  const F = D / 4;
  const invFreq = Array.from({ length: F }, (_, j) => 1 / ROPE_THETA ** ((4 * j) / D));
  const rotaryFreqs = new Float64Array(N * 2 * F);
  for (let p = 0; p < N; p++) {
    for (let j = 0; j < F; j++) {
      rotaryFreqs[p * 2 * F + j] = rows[p]! * invFreq[j]!;
      rotaryFreqs[p * 2 * F + F + j] = cols[p]! * invFreq[j]!;
    }
  }

  // Qwen2.5-VL: rows (x and θ) move in whole merge units to window order; frames stay contiguous.
  const windows = config.family === 'qwen2_5_vl' ? windowIndex(grid, config.windowSize) : { index: [...Array(N / 4).keys()], cu: [] as number[] };
  const rowOrder = windows.index.flatMap((u) => [4 * u, 4 * u + 1, 4 * u + 2, 4 * u + 3]); // position → input row
  const permute = (x: Float64Array, width: number): Float64Array => {
    const y = new Float64Array(N * width);
    rowOrder.forEach((src, i) => y.set(x.subarray(src * width, (src + 1) * width), i * width));
    return y;
  };
  const unpermute = (y: Float64Array, width: number): Float64Array => {
    const x = new Float64Array(N * width);
    rowOrder.forEach((src, i) => x.set(y.subarray(i * width, (i + 1) * width), src * width));
    return x;
  };
  const theta = permute(rotaryFreqs, 2 * F);
  const cos = new Float64Array(N * D);
  const sin = new Float64Array(N * D);
  for (let p = 0; p < N; p++) {
    for (let i = 0; i < D; i++) {
      const angle = theta[p * 2 * F + (i % (2 * F))]!; // emb = [θ, θ]
      cos[p * D + i] = Math.cos(angle);
      sin[p * D + i] = Math.sin(angle);
    }
  }
  const windowSegments = windows.cu.slice(1).map((end, i) => [windows.cu[i]!, end - windows.cu[i]!] as [number, number]);

  const norm = (x: Float64Array, n: number, name: string): Float64Array =>
    config.family === 'qwen2_vl' ? layerNorm(x, n, E, w(`${name}.weight`), w(`${name}.bias`)) : rmsNorm(x, n, E, w(`${name}.weight`));
  let x: Float64Array = permute(patchEmbed, E);
  let block0: Float64Array = new Float64Array(0);
  let streamMaxAbs = 0;
  for (let b = 0; b < config.depth; b++) {
    const pre = `blocks.${b}.`;
    const a = norm(x, N, `${pre}norm1`);
    const qkv = linear(a, N, E, w(`${pre}attn.qkv.weight`), w(`${pre}attn.qkv.bias`), 3 * E); // [N, 3E] = [Q | K | V]
    const [q, k, v] = [0, 1, 2].map((part) => {
      const y = new Float64Array(N * E);
      for (let p = 0; p < N; p++) y.set(qkv.subarray(p * 3 * E + part * E, p * 3 * E + (part + 1) * E), p * E);
      return y;
    }) as [Float64Array, Float64Array, Float64Array];
    rotate(q, N, config.heads, D, cos, sin, (z) => z);
    rotate(k, N, config.heads, D, cos, sin, (z) => z);
    const full = config.family === 'qwen2_vl' || config.fullatt.includes(b);
    const o = segmentAttention(q, k, v, N, config.heads, D, full ? frames : windowSegments);
    const attn = linear(o, N, E, w(`${pre}attn.proj.weight`), w(`${pre}attn.proj.bias`), E);
    for (let i = 0; i < N * E; i++) attn[i]! += x[i]!;
    x = attn;
    const m = norm(x, N, `${pre}norm2`);
    const mlpOut = config.family === 'qwen2_vl' ? quickGeluMlp(m, N, E, config.intermediate, pre, w) : gatedMlp(m, N, E, config.intermediate, pre, w);
    for (let i = 0; i < N * E; i++) mlpOut[i]! += x[i]!;
    x = mlpOut;
    if (b === 0) block0 = unpermute(x, E);
    for (const value of x) streamMaxAbs = Math.max(streamMaxAbs, Math.abs(value));
  }
  // Merger: ln_q per patch, 4 consecutive rows (one merge unit) → one 4E row, mlp.0 → GELU → mlp.2.
  const grouped = norm(x, N, 'merger.ln_q');
  const hidden = linear(grouped, N / 4, 4 * E, w('merger.mlp.0.weight'), w('merger.mlp.0.bias'), 4 * E);
  for (let i = 0; i < hidden.length; i++) hidden[i] = geluErf(hidden[i]!);
  const merged = linear(hidden, N / 4, 4 * E, w('merger.mlp.2.weight'), w('merger.mlp.2.bias'), config.out);
  // Un-permute merged tokens: out[window_index[j]] = merged[j] (upstream: merged[argsort(window_index)]).
  const imageEmbeds = new Float64Array(merged.length);
  windows.index.forEach((u, j) => imageEmbeds.set(merged.subarray(j * config.out, (j + 1) * config.out), u * config.out));
  return { imageEmbeds, windowIndex: windows.index, cuWindowSeqlens: windows.cu, debug: { patchEmbed, rotaryFreqs, block0, streamMaxAbs } };
}

/**
 * Upstream `get_window_index`: per item, the merged tokens [t, h_m, w_m] padded bottom/right with
 * a sentinel to whole windows (pad = Wm − size mod Wm, a full empty band when size is a multiple),
 * visited frame → window row → window column → row-major inside; sentinels dropped. Window
 * lengths ×4 accumulate into cu_window_seqlens, consecutive duplicates (empty windows) removed.
 */
export function windowIndex(grid: readonly GridRow[], windowSize: number): { index: number[]; cu: number[] } {
  const Wm = Math.floor(Math.floor(windowSize / MERGE) / PATCH);
  const index: number[] = [];
  const cu = [0];
  let offset = 0;
  for (const [t, h, w] of grid) {
    const hm = h / MERGE;
    const wm = w / MERGE;
    const paddedH = hm + (Wm - (hm % Wm));
    const paddedW = wm + (Wm - (wm % Wm));
    for (let f = 0; f < t; f++) {
      for (let wr = 0; wr < paddedH / Wm; wr++) {
        for (let wc = 0; wc < paddedW / Wm; wc++) {
          let length = 0;
          for (let r = wr * Wm; r < (wr + 1) * Wm; r++) {
            for (let c = wc * Wm; c < (wc + 1) * Wm; c++) {
              if (r >= hm || c >= wm) continue; // sentinel
              index.push(offset + f * hm * wm + r * wm + c);
              length++;
            }
          }
          const next = cu.at(-1)! + 4 * length;
          if (next !== cu.at(-1)) cu.push(next); // unique_consecutive
        }
      }
    }
    offset += t * hm * wm;
  }
  return { index, cu };
}

/** Qwen2RMSNorm over rows: x / √(mean(x²) + 1e-6) · w (weight only). */
function rmsNorm(x: Float64Array, n: number, width: number, weight: Float64Array): Float64Array {
  const y = new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    let meanSquare = 0;
    for (let c = 0; c < width; c++) meanSquare += x[i * width + c]! ** 2;
    const inv = 1 / Math.sqrt(meanSquare / width + EPS);
    for (let c = 0; c < width; c++) y[i * width + c] = x[i * width + c]! * inv * weight[c]!;
  }
  return y;
}

type Weight = (name: string) => Float64Array;

/** Qwen2-VL `VisionMlp`: fc2(quick_gelu(fc1(x))), quick_gelu(z) = z·σ(1.702z). */
function quickGeluMlp(x: Float64Array, n: number, E: number, I: number, pre: string, w: Weight): Float64Array {
  const h = linear(x, n, E, w(`${pre}mlp.fc1.weight`), w(`${pre}mlp.fc1.bias`), I);
  for (let i = 0; i < h.length; i++) h[i] = h[i]! / (1 + Math.exp(-1.702 * h[i]!));
  return linear(h, n, I, w(`${pre}mlp.fc2.weight`), w(`${pre}mlp.fc2.bias`), E);
}

/** Qwen2.5-VL `Qwen2_5_VLMLP`: down(silu(gate(x)) · up(x)). */
function gatedMlp(x: Float64Array, n: number, E: number, I: number, pre: string, w: Weight): Float64Array {
  const gate = linear(x, n, E, w(`${pre}mlp.gate_proj.weight`), w(`${pre}mlp.gate_proj.bias`), I);
  const up = linear(x, n, E, w(`${pre}mlp.up_proj.weight`), w(`${pre}mlp.up_proj.bias`), I);
  for (let i = 0; i < gate.length; i++) gate[i] = (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!;
  return linear(gate, n, I, w(`${pre}mlp.down_proj.weight`), w(`${pre}mlp.down_proj.bias`), E);
}
