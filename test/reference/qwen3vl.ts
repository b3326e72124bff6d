// An independent float64 reference of the Qwen3-VL vision tower, written from
// notes/qwen3-vl-vision-spec.md §1–3 with plain loops over Float64Arrays. It shares no code with
// graphs/ or src/onnx/ (it does not even parse the config with parseConfig), so a test comparing
// the ONNX graphs against it checks the graphs against the spec, not against themselves.
//
// Mirrors transformers `Qwen3VLVisionModel.forward` (modeling_qwen3_vl.py @ 00709b86):
//   patch embed (Conv3d = one matmul per row, §2.3) → + bilinear learned positions (§3.2)
//   → blocks: x + attn(LN1(x)) with 2-D rotate-half rotary (§3.3) and attention per frame group
//     of each item (§3.4); x + fc2(gelu(fc1(LN2(x)))) (§3.5)
//   → deepstack mergers after selected blocks (post-shuffle norm over 4H, erf GELU, §3.6), returned
//     in block order as upstream appends them
//   → the final merger (pre-shuffle norm over H, erf GELU).
//
// `hfFloat32` reproduces the two spots where upstream computes in float32 even when the model runs
// in float64 (as the goldens were made): `torch.linspace` sampling coordinates and their bilinear
// weights (float32), and `apply_rotary_pos_emb_vision`, which casts q, k, cos, sin with `.float()`.
// Off (the default), everything is float64.

/** The tower's shape, from an HF `vision_config` (defaults as in `Qwen3VLVisionConfig`). */
export interface ReferenceConfig {
  readonly depth: number;
  readonly hidden: number; // H
  readonly intermediate: number;
  readonly heads: number;
  readonly out: number; // O
  readonly positions: number; // G², a perfect square
  readonly deepstack: readonly number[];
  /** Block MLP activation: 'tanh' for gelu_pytorch_tanh, 'erf' for gelu. */
  readonly act: 'tanh' | 'erf';
}

export type GridRow = readonly [t: number, h: number, w: number];

/** Tensors by checkpoint name with the `model.visual.` prefix stripped, e.g. 'blocks.0.norm1.weight'. */
export type ReferenceWeights = ReadonlyMap<string, Float64Array>;

export interface ReferenceOutputs {
  readonly imageEmbeds: Float64Array; // [N/4, O]
  readonly deepstack: readonly Float64Array[]; // K × [N/4, O], in block order (as upstream returns them)
  readonly debug: {
    readonly patchEmbed: Float64Array; // [N, H]
    readonly posEmbed: Float64Array; // [N, H]
    readonly rotaryFreqs: Float64Array; // [N, D/2]: row angles then column angles
    readonly block0: Float64Array; // [N, H]
  };
}

const PATCH_DIM = 3 * 2 * 16 * 16; // C·Tp·P²
const MERGE = 2; // spatial_merge_size
const EPS = 1e-6;
const ROPE_THETA = 10000;

/** Reads the fields the tower needs from a config.json object (full or bare vision config). */
export function referenceConfig(json: Record<string, unknown>): ReferenceConfig {
  const v = (typeof json.vision_config === 'object' && json.vision_config !== null ? json.vision_config : json) as Record<string, unknown>;
  const num = (key: string, fallback?: number): number => {
    const x = v[key] ?? fallback;
    if (typeof x !== 'number') throw new Error(`reference config: ${key} missing`);
    return x;
  };
  const act = (v.hidden_act ?? 'gelu_pytorch_tanh') as string;
  return {
    depth: num('depth', 27),
    hidden: num('hidden_size', 1152),
    intermediate: num('intermediate_size', 4304),
    heads: num('num_heads', 16),
    out: num('out_hidden_size'),
    positions: num('num_position_embeddings', 2304),
    deepstack: (v.deepstack_visual_indexes as number[] | undefined) ?? [8, 16, 24],
    act: act === 'gelu' ? 'erf' : 'tanh',
  };
}

/**
 * Runs the tower. `pixels` [N, 1536] in processor row order; `grid` one (t, h, w) per item.
 * Returns the merged tokens, the deepstack outputs and the intermediates the goldens record.
 */
export function referenceForward(config: ReferenceConfig, weights: ReferenceWeights, pixels: ArrayLike<number>, grid: readonly GridRow[], options: { hfFloat32?: boolean } = {}): ReferenceOutputs {
  const w = (name: string): Float64Array => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference: weight ${name} missing`);
    return t;
  };
  const H = config.hidden;
  const D = H / config.heads;
  const N = grid.reduce((s, [t, h, ww]) => s + t * h * ww, 0);
  if (pixels.length !== N * PATCH_DIM) throw new Error(`reference: ${pixels.length / PATCH_DIM} pixel rows, grid says ${N}`);
  const f32 = options.hfFloat32 ? Math.fround : (x: number): number => x;

  // §2.3 / §3.1: Conv3d weight [H, 3, 2, 16, 16] flattened row-major is [H, 1536].
  const patchEmbed: Float64Array = linear(Float64Array.from(pixels), N, PATCH_DIM, w('patch_embed.proj.weight'), w('patch_embed.proj.bias'), H);

  // Per-patch (row, col) in merge-window order (§3.2 step 4), and attention segments (§3.4).
  const rows: number[] = [];
  const cols: number[] = [];
  const heights: number[] = [];
  const widths: number[] = [];
  const segments: [start: number, length: number][] = [];
  for (const [t, h, ww] of grid) {
    for (let g = 0; g < t; g++) {
      segments.push([rows.length, h * ww]);
      for (let k = 0; k < h * ww; k++) {
        const wi = Math.floor(k / 4);
        const q = k % 4;
        const br = Math.floor(wi / (ww / MERGE));
        const bc = wi % (ww / MERGE);
        rows.push(MERGE * br + Math.floor(q / MERGE));
        cols.push(MERGE * bc + (q % MERGE));
        heights.push(h);
        widths.push(ww);
      }
    }
  }

  // §3.2: bilinear sampling of the G×G table with align-corners coordinates.
  const G = Math.round(Math.sqrt(config.positions));
  const table = w('pos_embed.weight'); // [G², H]
  const posEmbed = new Float64Array(N * H);
  for (let p = 0; p < N; p++) {
    const y = coordinate(rows[p]!, heights[p]!, G, options.hfFloat32 ?? false);
    const x = coordinate(cols[p]!, widths[p]!, G, options.hfFloat32 ?? false);
    const y0 = Math.floor(y);
    const x0 = Math.floor(x);
    const y1 = Math.min(y0 + 1, G - 1);
    const x1 = Math.min(x0 + 1, G - 1);
    const fy = f32(y - y0);
    const fx = f32(x - x0);
    const taps: [number, number][] = [
      [y0 * G + x0, f32(f32(1 - fy) * f32(1 - fx))],
      [y0 * G + x1, f32(f32(1 - fy) * fx)],
      [y1 * G + x0, f32(fy * f32(1 - fx))],
      [y1 * G + x1, f32(fy * fx)],
    ];
    for (const [index, weight] of taps) {
      for (let c = 0; c < H; c++) posEmbed[p * H + c]! += weight * table[index * H + c]!;
    }
  }
  let x: Float64Array = new Float64Array(N * H);
  for (let i = 0; i < N * H; i++) x[i] = patchEmbed[i]! + posEmbed[i]!;

  // §3.3: θ = [row·inv_freq, col·inv_freq], inv_freq[j] = θ_rope^(−4j/D), j < D/4.
  const F = D / 4;
  const invFreq = Array.from({ length: F }, (_, j) => {
    if (!options.hfFloat32) return 1 / ROPE_THETA ** ((4 * j) / D);
    // Upstream: 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim)), dim = D/2, in float32.
    return Math.fround(1 / Math.fround(ROPE_THETA ** Math.fround((2 * j) / (D / 2))));
  });
  const rotaryFreqs = new Float64Array(N * 2 * F);
  for (let p = 0; p < N; p++) {
    for (let j = 0; j < F; j++) {
      rotaryFreqs[p * 2 * F + j] = rows[p]! * invFreq[j]!;
      rotaryFreqs[p * 2 * F + F + j] = cols[p]! * invFreq[j]!;
    }
  }
  const cos = new Float64Array(N * D);
  const sin = new Float64Array(N * D);
  for (let p = 0; p < N; p++) {
    for (let i = 0; i < D; i++) {
      const angle = rotaryFreqs[p * 2 * F + (i % (2 * F))]!; // emb = [θ, θ]
      cos[p * D + i] = f32(Math.cos(angle));
      sin[p * D + i] = f32(Math.sin(angle));
    }
  }

  const deepstack: Float64Array[] = [];
  let block0: Float64Array = new Float64Array(0);
  for (let b = 0; b < config.depth; b++) {
    const pre = `blocks.${b}.`;
    // Attention: LN1 → qkv → rotary on q, k → per-segment softmax(q kᵀ/√D) v → proj.
    const a = layerNorm(x, N, H, w(`${pre}norm1.weight`), w(`${pre}norm1.bias`));
    const qkv = linear(a, N, H, w(`${pre}attn.qkv.weight`), w(`${pre}attn.qkv.bias`), 3 * H); // [N, 3H] = [Q | K | V]
    const q = new Float64Array(N * H);
    const k = new Float64Array(N * H);
    const v = new Float64Array(N * H);
    for (let p = 0; p < N; p++) {
      for (let c = 0; c < H; c++) {
        q[p * H + c] = qkv[p * 3 * H + c]!;
        k[p * H + c] = qkv[p * 3 * H + H + c]!;
        v[p * H + c] = qkv[p * 3 * H + 2 * H + c]!;
      }
    }
    rotate(q, N, config.heads, D, cos, sin, f32);
    rotate(k, N, config.heads, D, cos, sin, f32);
    const o = segmentAttention(q, k, v, N, config.heads, D, segments);
    const attn = linear(o, N, H, w(`${pre}attn.proj.weight`), w(`${pre}attn.proj.bias`), H);
    for (let i = 0; i < N * H; i++) attn[i]! += x[i]!;
    x = attn;
    // MLP: LN2 → fc1 → GELU (the configured one) → fc2.
    const m = layerNorm(x, N, H, w(`${pre}norm2.weight`), w(`${pre}norm2.bias`));
    const hidden = linear(m, N, H, w(`${pre}mlp.linear_fc1.weight`), w(`${pre}mlp.linear_fc1.bias`), config.intermediate);
    for (let i = 0; i < hidden.length; i++) hidden[i] = config.act === 'tanh' ? geluTanh(hidden[i]!) : geluErf(hidden[i]!);
    const mlpOut = linear(hidden, N, config.intermediate, w(`${pre}mlp.linear_fc2.weight`), w(`${pre}mlp.linear_fc2.bias`), H);
    for (let i = 0; i < N * H; i++) mlpOut[i]! += x[i]!;
    x = mlpOut;
    if (b === 0) block0 = x.slice();
    // §3.6: block b feeds deepstack merger j = indexes.indexOf(b); upstream appends the results in
    // block order (`deepstack_feature_lists.append`), which is merger order when indexes are sorted.
    const j = config.deepstack.indexOf(b);
    if (j >= 0) deepstack.push(merger(x, N, H, config.out, weights, `deepstack_merger_list.${j}.`, 'postshuffle'));
  }
  const imageEmbeds = merger(x, N, H, config.out, weights, 'merger.', 'preshuffle');
  return {
    imageEmbeds,
    deepstack,
    debug: { patchEmbed, posEmbed, rotaryFreqs, block0 },
  };
}

/**
 * Align-corners sample position of `index` among `size` points over G table entries:
 * index·(G−1)/(size−1), or 0 for size 1. With `hfFloat32`, torch.linspace(0, G−1, size) in float32
 * (ATen's CPU kernel: start + step·i in the first half, end − step·(size−1−i) in the second).
 */
function coordinate(index: number, size: number, G: number, hfFloat32: boolean): number {
  if (size === 1) return 0;
  if (!hfFloat32) return (index * (G - 1)) / (size - 1);
  const f = Math.fround;
  const step = f((G - 1) / (size - 1));
  const halfway = Math.floor(size / 2);
  return index < halfway ? f(f(step * index)) : f(G - 1 - f(step * (size - index - 1)));
}

/** y [n, out] = x [n, in] · Wᵀ + b with W [out, in] (PyTorch Linear layout). */
export function linear(x: Float64Array, n: number, inFeatures: number, weight: Float64Array, bias: Float64Array, outFeatures: number): Float64Array {
  if (weight.length !== outFeatures * inFeatures) throw new Error(`reference: weight has ${weight.length} values, expected ${outFeatures}×${inFeatures}`);
  const y = new Float64Array(n * outFeatures);
  for (let i = 0; i < n; i++) {
    const xi = i * inFeatures;
    for (let o = 0; o < outFeatures; o++) {
      const wo = o * inFeatures;
      let s = 0;
      for (let c = 0; c < inFeatures; c++) s += x[xi + c]! * weight[wo + c]!;
      y[i * outFeatures + o] = s + bias[o]!;
    }
  }
  return y;
}

/** LayerNorm over rows of width `width`: (z − mean)/√(var + 1e-6)·γ + β, biased variance. */
export function layerNorm(x: Float64Array, n: number, width: number, gamma: Float64Array, beta: Float64Array): Float64Array {
  const y = new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let c = 0; c < width; c++) mean += x[i * width + c]!;
    mean /= width;
    let variance = 0;
    for (let c = 0; c < width; c++) variance += (x[i * width + c]! - mean) ** 2;
    variance /= width;
    const inv = 1 / Math.sqrt(variance + EPS);
    for (let c = 0; c < width; c++) y[i * width + c] = (x[i * width + c]! - mean) * inv * gamma[c]! + beta[c]!;
  }
  return y;
}

/** In place, per head: v·cos + rotate_half(v)·sin with rotate_half(v) = [−v[D/2:], v[:D/2]]. */
export function rotate(x: Float64Array, n: number, heads: number, D: number, cos: Float64Array, sin: Float64Array, f32: (v: number) => number): void {
  const half = D / 2;
  const tmp = new Float64Array(D);
  for (let p = 0; p < n; p++) {
    for (let h = 0; h < heads; h++) {
      const base = p * heads * D + h * D;
      for (let i = 0; i < D; i++) tmp[i] = f32(x[base + i]!);
      for (let i = 0; i < D; i++) {
        const rotated = i < half ? -tmp[i + half]! : tmp[i - half]!;
        x[base + i] = f32(f32(tmp[i]! * cos[p * D + i]!) + f32(rotated * sin[p * D + i]!));
      }
    }
  }
}

/** softmax(q kᵀ/√D) v per head, each query attending only to keys of its own segment. */
export function segmentAttention(q: Float64Array, k: Float64Array, v: Float64Array, n: number, heads: number, D: number, segments: readonly [number, number][]): Float64Array {
  const H = heads * D;
  const out = new Float64Array(n * H);
  const scale = 1 / Math.sqrt(D);
  for (const [start, length] of segments) {
    const scores = new Float64Array(length);
    for (let h = 0; h < heads; h++) {
      for (let i = start; i < start + length; i++) {
        let max = -Infinity;
        for (let j = 0; j < length; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[i * H + h * D + d]! * k[(start + j) * H + h * D + d]!;
          scores[j] = s * scale;
          max = Math.max(max, scores[j]!);
        }
        let total = 0;
        for (let j = 0; j < length; j++) total += scores[j] = Math.exp(scores[j]! - max);
        for (let d = 0; d < D; d++) {
          let s = 0;
          for (let j = 0; j < length; j++) s += scores[j]! * v[(start + j) * H + h * D + d]!;
          out[i * H + h * D + d] = s / total;
        }
      }
    }
  }
  return out;
}

/**
 * `Qwen3VLVisionPatchMerger`: each 2×2 window (4 consecutive rows of [N, H]) becomes one 4H row.
 * 'preshuffle' normalizes every patch over H first; 'postshuffle' normalizes the 4H row.
 * Then fc1 → exact (erf) GELU → fc2 → [N/4, O].
 */
function merger(x: Float64Array, n: number, H: number, out: number, weights: ReferenceWeights, prefix: string, norm: 'preshuffle' | 'postshuffle'): Float64Array {
  const w = (name: string): Float64Array =>
    weights.get(prefix + name) ??
    (() => {
      throw new Error(`reference: weight ${prefix}${name} missing`);
    })();
  const tokens = n / 4;
  const grouped = norm === 'preshuffle' ? layerNorm(x, n, H, w('norm.weight'), w('norm.bias')) : layerNorm(x, tokens, 4 * H, w('norm.weight'), w('norm.bias'));
  const hidden = linear(grouped, tokens, 4 * H, w('linear_fc1.weight'), w('linear_fc1.bias'), 4 * H);
  for (let i = 0; i < hidden.length; i++) hidden[i] = geluErf(hidden[i]!);
  return linear(hidden, tokens, 4 * H, w('linear_fc2.weight'), w('linear_fc2.bias'), out);
}

/** PyTorch gelu(approximate='tanh'): 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))). */
export const geluTanh = (z: number): number => 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));

/** Exact GELU: 0.5·z·(1 + erf(z/√2)). */
export const geluErf = (z: number): number => 0.5 * z * (1 + erf(z / Math.SQRT2));

/**
 * erf in float64 from the everywhere-convergent series with positive terms
 * erf(x) = 2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)); no cancellation, so the relative
 * error stays near machine precision. |x| ≥ 6 gives ±1 (1 − erf(6) ≈ 2e-17).
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  let term = a;
  let sum = a;
  for (let n = 1; n < 500; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * Math.min(1, (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum);
}
