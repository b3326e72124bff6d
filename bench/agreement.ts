// How close one float32 output is to a reference: relative L2, max |Δ|, smallest per-token cosine.

import type { HostTensor } from '../src/tensor.js';

/** rel L2, max |Δ| and the smallest cosine over rows of `width` (tokens), of `got` against `want`. */
export function agreement(got: ArrayLike<number>, want: ArrayLike<number>, width: number): { rel_l2: number; max_abs: number; min_cosine: number } {
  let diff = 0;
  let norm = 0;
  let maxAbs = 0;
  let minCosine = 1;
  for (let row = 0; row < want.length / width; row++) {
    let dot = 0;
    let a2 = 0;
    let b2 = 0;
    for (let j = row * width; j < (row + 1) * width; j++) {
      const d = got[j]! - want[j]!;
      diff += d * d;
      norm += want[j]! * want[j]!;
      maxAbs = Math.max(maxAbs, Math.abs(d));
      dot += got[j]! * want[j]!;
      a2 += got[j]! * got[j]!;
      b2 += want[j]! * want[j]!;
    }
    minCosine = Math.min(minCosine, dot / Math.sqrt(a2 * b2));
  }
  return { rel_l2: Math.sqrt(diff / norm), max_abs: maxAbs, min_cosine: minCosine };
}

/**
 * `agreement` of every output in `got` with the same-named one in `want` (float32 [T, W], or
 * [K, T, W] reported per part as `name[k]`), as read from two safetensors files.
 */
export function outputAgreement(got: ReadonlyMap<string, HostTensor>, want: ReadonlyMap<string, HostTensor>): { output: string; rel_l2: number; max_abs: number; min_cosine: number }[] {
  const rows: { output: string; rel_l2: number; max_abs: number; min_cosine: number }[] = [];
  for (const [name, reference] of want) {
    const width = reference.shape.at(-1)!;
    const parts = reference.shape.length === 3 ? reference.shape[0]! : 1;
    const block = reference.data.length / parts;
    for (let k = 0; k < parts; k++) {
      const a = (got.get(name)!.data as Float32Array).subarray(k * block, (k + 1) * block);
      const b = (reference.data as Float32Array).subarray(k * block, (k + 1) * block);
      rows.push({ output: parts === 1 ? name : `${name}[${k}]`, ...agreement(a, b, width) });
    }
  }
  return rows;
}
