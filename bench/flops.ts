// Analytic FLOP count of one encoder call (multiply-add = 2 FLOPs), for effective GFLOP/s.

import type { VisionConfig } from '../graphs/qwen3-vl/config.js';

export function encoderFlops(config: VisionConfig, grid: readonly (readonly [number, number, number])[]): number {
  const { hiddenSize: H, intermediateSize: I, outHiddenSize: O, patchDim, depth, mergeUnit } = config;
  const N = grid.reduce((s, [t, h, w]) => s + t * h * w, 0);
  const segmentSquares = grid.reduce((s, [t, h, w]) => s + t * (h * w) ** 2, 0); // Σ over segments of S²
  const patchEmbed = 2 * N * patchDim * H;
  const block = 2 * N * H * 3 * H + 2 * N * H * H + 2 * 2 * N * H * I + 2 * 2 * segmentSquares * H; // qkv, proj, mlp, QKᵀ + PV
  const merger = 2 * (N / mergeUnit) * (mergeUnit * H) ** 2 + 2 * (N / mergeUnit) * mergeUnit * H * O;
  return patchEmbed + depth * block + (config.deepstackVisualIndexes.length + 1) * merger;
}
