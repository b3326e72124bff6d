// Numeric comparisons with stated tolerances, and small array utilities for the tests.

import type { ExecutionContext } from 'ava';

type Numbers = ArrayLike<number>;

/** max |a[i] − b[i]|; throws on a length mismatch (a shape bug, not a tolerance question). */
export function maxAbsDiff(a: Numbers, b: Numbers): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= max)) max = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d; // NaN anywhere fails any tolerance
  }
  return max;
}

/** max |a[i]| (the scale a |Δ| should be read against). */
export function maxAbs(a: Numbers): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]!));
  return max;
}

export function allFinite(a: Numbers): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

/**
 * Asserts max |got − want| ≤ atol, logs the measured figure, and returns it.
 * `label` names the tensor in the log and in the failure message.
 */
export function assertClose(t: ExecutionContext, label: string, got: Numbers, want: Numbers, atol: number): number {
  t.is(got.length, want.length, `${label}: element count`);
  if (got.length !== want.length) return Number.POSITIVE_INFINITY;
  const diff = maxAbsDiff(got, want);
  t.log(`${label}: max |Δ| = ${diff.toExponential(2)} (tolerance ${atol.toExponential(0)}, max |value| ${maxAbs(want).toFixed(2)})`);
  t.true(diff <= atol, `${label}: max |Δ| = ${diff} exceeds ${atol}`);
  return diff;
}
