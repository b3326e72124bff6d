// The top principal components of visual tokens, as colours: the view people use to see what a ViT
// separates. Covariance in float64, components by power iteration with deflation.

export interface Components {
  /** [n, k] each token's coordinate on each component. */
  projections: Float64Array;
  /** [k] the variance each component explains, largest first. */
  variances: number[];
}

/** Top `k` principal components of the rows of `x` ([n, d] row-major). */
export function principalComponents(x: Float32Array, n: number, d: number, k = 3): Components {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  const centred = new Float64Array(n * d); // [n, d]
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) centred[i * d + j] = x[i * d + j]! - mean[j]!;
  const cov = new Float64Array(d * d); // [d, d]
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      const va = centred[i * d + a]!;
      if (va === 0) continue;
      for (let b = a; b < d; b++) cov[a * d + b]! += va * centred[i * d + b]!;
    }
  }
  const scale = 1 / Math.max(1, n - 1);
  for (let a = 0; a < d; a++) for (let b = a; b < d; b++) cov[b * d + a] = cov[a * d + b]! *= scale;

  const projections = new Float64Array(n * k);
  const variances: number[] = [];
  for (let c = 0; c < Math.min(k, d); c++) {
    const { vector, value } = leadingEigenvector(cov, d);
    variances.push(value);
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a * d + b]! -= value * vector[a]! * vector[b]!; // deflate
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += centred[i * d + j]! * vector[j]!;
      projections[i * k + c] = s;
    }
  }
  return { projections, variances };
}

/** Power iteration on a symmetric [d, d] matrix (at most `iterations` steps); the sign is fixed so the largest entry is positive. */
function leadingEigenvector(m: Float64Array, d: number, iterations = 500): { vector: Float64Array; value: number } {
  let v = new Float64Array(d).map((_, i) => 1 + i / d);
  let value = 0;
  for (let it = 0; it < iterations; it++) {
    const next = new Float64Array(d);
    for (let a = 0; a < d; a++) {
      let s = 0;
      for (let b = 0; b < d; b++) s += m[a * d + b]! * v[b]!;
      next[a] = s;
    }
    const norm = Math.hypot(...next);
    if (norm === 0) break;
    value = norm;
    let change = 0;
    for (let a = 0; a < d; a++) {
      next[a]! /= norm;
      change = Math.max(change, Math.abs(next[a]! - v[a]!));
    }
    v = next;
    if (change < 1e-12) break; // converged
  }
  let largest = 0;
  for (let a = 1; a < d; a++) if (Math.abs(v[a]!) > Math.abs(v[largest]!)) largest = a;
  if (v[largest]! < 0) v = v.map((e) => -e);
  return { vector: v, value };
}

/** [n, 3] projections → RGBA bytes [n, 4], each component stretched over 0…255 on its own range. */
export function componentColours(projections: Float64Array, n: number, k = 3): Uint8ClampedArray<ArrayBuffer> {
  const rgba = new Uint8ClampedArray(n * 4).fill(255);
  for (let c = 0; c < Math.min(k, 3); c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      lo = Math.min(lo, projections[i * k + c]!);
      hi = Math.max(hi, projections[i * k + c]!);
    }
    const span = hi - lo || 1;
    for (let i = 0; i < n; i++) rgba[i * 4 + c] = Math.round((255 * (projections[i * k + c]! - lo)) / span);
  }
  return rgba;
}
