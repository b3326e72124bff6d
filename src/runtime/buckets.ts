// Running requests on padded bucket graphs: pick the smallest bucket that holds a request,
// pack several items into one run (greedy, order-preserving), split videos by frame group
// when an item is larger than every bucket, and slice the padded outputs back to items.

import { inputMismatch, invalidArgument, unsupported } from '../errors.js';
import { hostTensor, type HostTensor } from '../tensor.js';
import type { Bucket, OutputSpec } from '../model.js';
import type { GridRow } from './input-checks.js';

/** Default grid rows per bucket: one per 64 patches, at least 1. */
export const defaultMaxItems = (maxPatches: number): number => Math.max(1, Math.floor(maxPatches / 64));

/** A checked bucket shape: `maxPatches` a positive multiple of the merge unit. */
export function bucket(maxPatches: number, maxItems = defaultMaxItems(maxPatches), mergeUnit = 4): Bucket {
  if (!Number.isInteger(maxPatches) || maxPatches < mergeUnit || maxPatches % mergeUnit !== 0 || maxPatches > 1 << 20) {
    throw invalidArgument('max patches', `a positive multiple of ${mergeUnit} up to ${1 << 20}`, maxPatches);
  }
  if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > maxPatches) throw invalidArgument('max items', `an integer in 1..${maxPatches}`, maxItems);
  return { maxPatches, maxItems };
}

export type { GridRow };

/** A unit of work: a run of consecutive pixel rows with its grid rows. */
export interface Unit {
  readonly grid: GridRow;
  readonly firstRow: number; // into pixel_values
  readonly rows: number; // t·h·w
}

export type Plan = { readonly kind: 'bucket'; readonly bucket: Bucket; readonly units: readonly Unit[] } | { readonly kind: 'dynamic'; readonly units: readonly Unit[] };

export interface PlanOptions {
  /** What to do with an image (or frame group) larger than the largest bucket. */
  oversize?: 'dynamic' | 'error';
  /** Patches per item slot of a slotted bucket (src/contract.ts `slotPatches`), undefined for a packed one. */
  slotOf?: (bucket: Bucket) => number | undefined;
}

/** Items as units over consecutive pixel rows, in order. */
export function unitsOf(grid: readonly GridRow[]): Unit[] {
  let row = 0;
  return grid.map(([t, h, w]) => {
    const unit: Unit = { grid: [t, h, w], firstRow: row, rows: t * h * w };
    row += unit.rows;
    return unit;
  });
}

/**
 * Splits the request into runs. Items stay in order; a video larger than the largest bucket (or
 * any video, when some bucket is slotted: one frame group per slot) is cut into its frame groups (each group is an independent
 * attention segment, so the result is identical); a single frame group larger than every bucket
 * goes to the dynamic graph or fails.
 */
export function planRuns(grid: readonly GridRow[], buckets: readonly Bucket[], options: PlanOptions = {}): Plan[] {
  if (buckets.length === 0) throw invalidArgument('buckets', 'at least one padded bucket', undefined);
  const largest = Math.max(...buckets.map((b) => b.maxPatches));
  const splitFrames = buckets.some((b) => options.slotOf?.(b) !== undefined);
  const units = unitsOf(grid).flatMap((item): Unit[] => {
    const [t, h, w] = item.grid;
    if (t === 1 || h * w > largest || (item.rows <= largest && !splitFrames)) return [item];
    return Array.from({ length: t }, (_, g) => ({ grid: [1, h, w], firstRow: item.firstRow + g * h * w, rows: h * w }));
  });

  // A packed bucket holds the units' rows in all; a slotted one each unit's rows in one slot.
  const holds = (b: Bucket, rows: number, largestUnit: number, items: number): boolean => {
    const slot = options.slotOf?.(b);
    return b.maxItems >= items && (slot === undefined ? b.maxPatches >= rows : slot >= largestUnit);
  };
  const fits = (group: readonly Unit[]): Bucket | undefined => {
    const rows = group.reduce((s, u) => s + u.rows, 0);
    const largestUnit = Math.max(...group.map((u) => u.rows));
    return [...buckets].sort((a, b) => a.maxPatches - b.maxPatches || a.maxItems - b.maxItems).find((b) => holds(b, rows, largestUnit, group.length));
  };
  const plans: Plan[] = [];
  let current: Unit[] = [];
  const close = (): void => {
    if (current.length === 0) return;
    plans.push({ kind: 'bucket', bucket: fits(current)!, units: current });
    current = [];
  };
  for (const unit of units) {
    if (!fits([unit])) {
      if (options.oversize !== 'dynamic') {
        throw unsupported(`an item of ${unit.rows} patches (grid [${unit.grid.join(', ')}]) is larger than the largest bucket (${largest} patches)`, {
          fixes: [{ option: 'maxPixels', action: 'lower' }],
          otherwise: 'export a package with a larger bucket',
        });
      }
      close();
      plans.push({ kind: 'dynamic', units: [unit] });
      continue;
    }
    if (!fits([...current, unit])) close();
    current.push(unit);
  }
  close();
  return plans;
}

/**
 * Pads the units' pixel rows and grid rows into one bucket's fixed-shape inputs: packed one after
 * another, or, with `slot`, unit i from row i·slot.
 */
export function padInputs(pixelValues: Float32Array, patchDim: number, units: readonly Unit[], bucket: Bucket, slot?: number): { pixels: HostTensor<'float32'>; grid: HostTensor<'int64'> } {
  const pixels = new Float32Array(bucket.maxPatches * patchDim);
  const grid = new BigInt64Array(bucket.maxItems * 3);
  let at = 0;
  units.forEach((u, i) => {
    const first = slot === undefined ? at : i * slot;
    pixels.set(pixelValues.subarray(u.firstRow * patchDim, (u.firstRow + u.rows) * patchDim), first * patchDim);
    grid.set(u.grid.map(BigInt), 3 * i);
    at += u.rows;
  });
  return { pixels: hostTensor('float32', [bucket.maxPatches, patchDim], pixels), grid: hostTensor('int64', [bucket.maxItems, 3], grid) };
}

/** Encoder outputs by name, each float32 with every item's tokens along its token axis. */
export type EncoderOutputs = Readonly<Record<string, HostTensor<'float32'>>>;

/** Rows [from, to) of `t` along `axis`: [..., T, ...] → [..., to − from, ...]. */
export function sliceAxis(t: HostTensor<'float32'>, axis: number, from: number, to: number): HostTensor<'float32'> {
  const shape = [...t.shape];
  const rows = shape[axis]!;
  if (from === 0 && to === rows) return t;
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(outer * (to - from) * inner);
  for (let o = 0; o < outer; o++) data.set(t.data.subarray((o * rows + from) * inner, (o * rows + to) * inner), o * (to - from) * inner);
  shape[axis] = to - from;
  return hostTensor('float32', shape, data);
}

/** Concatenates tensors along `axis` (every other dim equal). */
export function concatAxis(parts: readonly HostTensor<'float32'>[], axis: number): HostTensor<'float32'> {
  const first = parts[0];
  if (!first) throw invalidArgument('outputs', 'at least one run', undefined);
  if (parts.length === 1) return first;
  const outer = first.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = first.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const total = parts.reduce((s, p) => s + p.shape[axis]!, 0);
  const data = new Float32Array(outer * total * inner);
  let at = 0;
  for (const p of parts) {
    const n = p.shape[axis]!;
    for (let o = 0; o < outer; o++) data.set(p.data.subarray(o * n * inner, (o + 1) * n * inner), (o * total + at) * inner);
    at += n;
  }
  const shape = [...first.shape];
  shape[axis] = total;
  return hostTensor('float32', shape, data);
}

/** Keeps the first `tokens` tokens of every output. */
export function sliceTokens(out: EncoderOutputs, specs: readonly OutputSpec[], tokens: number): EncoderOutputs {
  return Object.fromEntries(
    specs.map(({ name, tokenAxis }) => {
      const t = out[name]!;
      if (tokens > t.shape[tokenAxis]!) throw invalidArgument('token count', `at most ${t.shape[tokenAxis]}`, tokens);
      return [name, sliceAxis(t, tokenAxis, 0, tokens)];
    }),
  );
}

/** Concatenates runs' outputs along each output's token axis (in run order). */
export function concatTokens(parts: readonly EncoderOutputs[], specs: readonly OutputSpec[]): EncoderOutputs {
  if (parts.length === 1) return parts[0]!;
  return Object.fromEntries(
    specs.map(({ name, tokenAxis }) => [
      name,
      concatAxis(
        parts.map((p) => p[name]!),
        tokenAxis,
      ),
    ]),
  );
}

/** Splits outputs into consecutive token ranges, one per item. */
export function splitTokens(out: EncoderOutputs, specs: readonly OutputSpec[], tokens: readonly number[]): EncoderOutputs[] {
  let at = 0;
  return tokens.map((n) => {
    const item = Object.fromEntries(specs.map(({ name, tokenAxis }) => [name, sliceAxis(out[name]!, tokenAxis, at, at + n)]));
    at += n;
    return item;
  });
}

/** The padded path's own check: the units packed into one run fit the bucket's fixed shapes. */
export function checkBucketFits(units: readonly Unit[], bucket: Bucket, slot?: number): void {
  const rows = units.reduce((sum, u) => sum + u.rows, 0);
  const exact = units.every((u) => u.rows === u.grid[0] * u.grid[1] * u.grid[2]);
  const slotted = slot === undefined || units.every((u) => u.rows <= slot && u.grid[0] === 1);
  if (units.length > bucket.maxItems || rows > bucket.maxPatches || !exact || !slotted) {
    throw inputMismatch(
      `bucket ${bucket.maxPatches}×${bucket.maxItems}: expected at most ${bucket.maxItems} items and ${bucket.maxPatches} rows with rows = t·h·w${slot === undefined ? '' : `, each one frame of at most ${slot} rows`}, got ${units.length} items and ${rows} rows`,
      undefined,
      {
        items: units.length,
        rows,
      },
    );
  }
}

/**
 * A slotted bucket's outputs back in item order: item i's `counts[i]` tokens start at token
 * i·`slotTokens` of each output's token axis; concatenated, they are what a packed bucket gives.
 */
export function gatherSlots(out: EncoderOutputs, specs: readonly OutputSpec[], slotTokens: number, counts: readonly number[]): EncoderOutputs {
  return Object.fromEntries(
    specs.map(({ name, tokenAxis }) => [
      name,
      concatAxis(
        counts.map((n, i) => sliceAxis(out[name]!, tokenAxis, i * slotTokens, i * slotTokens + n)),
        tokenAxis,
      ),
    ]),
  );
}
