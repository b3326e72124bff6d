// Dimensions known at build time: a number, or a symbolic size written as a small
// rational multiple of one symbol ("N", "N/4", "3*N", "N/4*3" is not produced).
// The algebra is just rich enough for a ViT: reshapes that split or merge a symbolic
// axis by a constant, broadcasting, and concatenation along a numeric axis.

export type Dim = number | string;
export type Shape = readonly Dim[];

interface Symbolic {
  readonly symbol: string;
  readonly num: number; // dim = symbol * num / den
  readonly den: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? Math.abs(a) : gcd(b, a % b));

function parseSymbolic(dim: string): Symbolic {
  const match = /^(?:(\d+)\*)?([A-Za-z_][\w.]*)(?:\/(\d+))?$/.exec(dim);
  if (!match) return { symbol: dim, num: 1, den: 1 }; // opaque label (e.g. "nonzero_3")
  return { symbol: match[2]!, num: match[1] ? Number(match[1]) : 1, den: match[3] ? Number(match[3]) : 1 };
}

function formatSymbolic({ symbol, num, den }: Symbolic): string {
  const g = gcd(num, den);
  const [n, d] = [num / g, den / g];
  return `${n === 1 ? '' : `${n}*`}${symbol}${d === 1 ? '' : `/${d}`}`;
}

/** dim × k / d for a constant k, d (exact; symbolic stays symbolic). */
export function scaleDim(dim: Dim, k: number, d = 1): Dim {
  if (typeof dim === 'number') return (dim * k) / d;
  const s = parseSymbolic(dim);
  return formatSymbolic({ symbol: s.symbol, num: s.num * k, den: s.den * d });
}

/** The number of elements as a product: a numeric factor times at most one symbolic dim. */
export function numelOf(shape: Shape): { factor: number; symbolic: Dim[] } {
  let factor = 1;
  const symbolic: Dim[] = [];
  for (const d of shape) {
    if (typeof d === 'number') factor *= d;
    else symbolic.push(d);
  }
  return { factor, symbolic };
}

export const sameDim = (a: Dim, b: Dim): boolean => a === b;

export const isStatic = (shape: Shape): shape is readonly number[] => shape.every((d) => typeof d === 'number');

export const formatDims = (shape: Shape): string => `[${shape.join(', ')}]`;

/**
 * Infers the -1 entry of a Reshape target given the input shape, or returns undefined when
 * the algebra cannot express it (the caller then names a fresh symbol).
 */
export function inferReshapeDim(input: Shape, target: readonly number[]): Dim | undefined {
  const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const { factor, symbolic } = numelOf(input);
  if (symbolic.length === 0) return factor % known === 0 ? factor / known : undefined;
  if (symbolic.length > 1) return undefined;
  return scaleDim(symbolic[0]!, factor, known);
}

/** Numpy-style broadcast of two shapes; undefined when incompatible. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else return undefined;
  }
  return out;
}

/** Adds two dims (concatenation): numeric sum, or an opaque symbolic label. */
export function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  const sa = typeof a === 'string' ? parseSymbolic(a) : undefined;
  const sb = typeof b === 'string' ? parseSymbolic(b) : undefined;
  if (sa && sb && sa.symbol === sb.symbol) {
    return formatSymbolic({ symbol: sa.symbol, num: sa.num * sb.den + sb.num * sa.den, den: sa.den * sb.den });
  }
  return `(${a}+${b})`;
}
