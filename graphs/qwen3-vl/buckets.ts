// Running requests on padded bucket graphs: pick the smallest bucket that holds a request,
// pack several items into one run (greedy, order-preserving), split videos by frame group
// when an item is larger than every bucket, and slice the padded outputs back to items.

import { invalidArgument, unsupported } from '../../src/errors.js';
import { hostTensor, type HostTensor } from '../../src/tensor.js';
import type { Bucket } from './padded.js';

export type GridRow = readonly [t: number, h: number, w: number];

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
 * Splits the request into runs. Items stay in order; a video larger than the largest bucket is
 * cut into its frame groups (each group is an independent attention segment, so the result is
 * identical); a single frame group larger than every bucket goes to the dynamic graph or fails.
 */
export function planRuns(grid: readonly GridRow[], buckets: readonly Bucket[], options: PlanOptions = {}): Plan[] {
  if (buckets.length === 0) throw invalidArgument('buckets', 'at least one padded bucket', undefined);
  const largest = Math.max(...buckets.map((b) => b.maxPatches));
  const units = unitsOf(grid).flatMap((item): Unit[] => {
    const [t, h, w] = item.grid;
    if (item.rows <= largest || h * w > largest) return [item];
    return Array.from({ length: t }, (_, g) => ({ grid: [1, h, w], firstRow: item.firstRow + g * h * w, rows: h * w }));
  });

  const fits = (rows: number, items: number): Bucket | undefined =>
    [...buckets].sort((a, b) => a.maxPatches - b.maxPatches || a.maxItems - b.maxItems).find((b) => b.maxPatches >= rows && b.maxItems >= items);
  const plans: Plan[] = [];
  let current: Unit[] = [];
  const close = (): void => {
    if (current.length === 0) return;
    const rows = current.reduce((s, u) => s + u.rows, 0);
    plans.push({ kind: 'bucket', bucket: fits(rows, current.length)!, units: current });
    current = [];
  };
  for (const unit of units) {
    if (!fits(unit.rows, 1)) {
      if (options.oversize !== 'dynamic') {
        throw unsupported(
          `an item of ${unit.rows} patches (grid [${unit.grid.join(', ')}]) is larger than the largest bucket (${largest} patches)`,
          { fixes: [{ option: 'maxPixels', action: 'lower' }], otherwise: 'export a package with a larger bucket' },
        );
      }
      close();
      plans.push({ kind: 'dynamic', units: [unit] });
      continue;
    }
    const rows = current.reduce((s, u) => s + u.rows, 0) + unit.rows;
    if (!fits(rows, current.length + 1)) close();
    current.push(unit);
  }
  close();
  return plans;
}

/** Pads the units' pixel rows and grid rows into one bucket's fixed-shape inputs. */
export function padInputs(pixelValues: Float32Array, patchDim: number, units: readonly Unit[], bucket: Bucket): { pixels: HostTensor<'float32'>; grid: HostTensor<'int64'> } {
  const pixels = new Float32Array(bucket.maxPatches * patchDim);
  const grid = new BigInt64Array(bucket.maxItems * 3);
  let at = 0;
  units.forEach((u, i) => {
    pixels.set(pixelValues.subarray(u.firstRow * patchDim, (u.firstRow + u.rows) * patchDim), at * patchDim);
    grid.set(u.grid.map(BigInt), 3 * i);
    at += u.rows;
  });
  return { pixels: hostTensor('float32', [bucket.maxPatches, patchDim], pixels), grid: hostTensor('int64', [bucket.maxItems, 3], grid) };
}

/** Encoder outputs for a run of items: image_embeds [T, O] and deepstack_embeds [K, T, O]. */
export interface EncoderOutputs {
  readonly imageEmbeds: HostTensor<'float32'>;
  readonly deepstackEmbeds: HostTensor<'float32'>;
}

/** Keeps the first `tokens` rows of padded outputs. */
export function sliceTokens(out: EncoderOutputs, tokens: number): EncoderOutputs {
  const [rows, width] = out.imageEmbeds.shape as [number, number];
  const [k] = out.deepstackEmbeds.shape as [number];
  if (tokens > rows) throw invalidArgument('token count', `at most ${rows}`, tokens);
  const deep = new Float32Array(k * tokens * width);
  for (let j = 0; j < k; j++) deep.set(out.deepstackEmbeds.data.subarray(j * rows * width, (j * rows + tokens) * width), j * tokens * width);
  return {
    imageEmbeds: hostTensor('float32', [tokens, width], out.imageEmbeds.data.slice(0, tokens * width)),
    deepstackEmbeds: hostTensor('float32', [k, tokens, width], deep),
  };
}

/** Concatenates runs' outputs along the token axis (in run order). */
export function concatTokens(parts: readonly EncoderOutputs[]): EncoderOutputs {
  const first = parts[0];
  if (!first) throw invalidArgument('outputs', 'at least one run', undefined);
  if (parts.length === 1) return first;
  const width = first.imageEmbeds.shape[1]!;
  const k = first.deepstackEmbeds.shape[0]!;
  const tokens = parts.reduce((s, p) => s + p.imageEmbeds.shape[0]!, 0);
  const embeds = new Float32Array(tokens * width);
  const deep = new Float32Array(k * tokens * width);
  let at = 0;
  for (const p of parts) {
    const n = p.imageEmbeds.shape[0]!;
    embeds.set(p.imageEmbeds.data, at * width);
    for (let j = 0; j < k; j++) deep.set(p.deepstackEmbeds.data.subarray(j * n * width, (j + 1) * n * width), (j * tokens + at) * width);
    at += n;
  }
  return { imageEmbeds: hostTensor('float32', [tokens, width], embeds), deepstackEmbeds: hostTensor('float32', [k, tokens, width], deep) };
}
