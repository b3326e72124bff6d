// Strict weight binding: the graph asks for each tensor by name and shape exactly once, and
// whatever the checkpoint's vision tower holds beyond that is an error at `finish()`.

import { VitgraphError, formatShape } from '../errors.js';
import type { Checkpoint } from './checkpoint.js';
import type { FloatTarget } from '../dtype.js';

export interface BoundWeight {
  name: string;
  shape: number[];
  /** The tensor's bytes in the binder's dtype (little-endian). */
  load(): Promise<Uint8Array>;
}

/** How many leftover names `finish()` lists in its message (all are in `details.names`). */
const LISTED_LEFTOVERS = 10;

export class WeightBinder {
  private readonly taken = new Set<string>();

  constructor(
    private readonly checkpoint: Checkpoint,
    readonly dtype: FloatTarget,
  ) {}

  /** Claims tensor `name`, which must exist with exactly `shape` and not have been taken before; read as `dtype` (default the binder's). */
  take(name: string, shape: readonly number[], dtype: FloatTarget = this.dtype): BoundWeight {
    const tensor = this.checkpoint.tensors.get(name);
    if (!tensor) {
      const near = nearNames(name, [...this.checkpoint.tensors.keys()]);
      const hint = near.length > 0 ? `. Similar names in the checkpoint: ${near.join(', ')}` : '';
      throw new VitgraphError('weight_binding', `${name}: expected a tensor of shape ${formatShape(shape)}, got none in the checkpoint (vision prefix "${this.checkpoint.prefix}")${hint}`, {
        name,
        expected: [...shape],
        near,
      });
    }
    if (this.taken.has(name)) {
      throw new VitgraphError('weight_binding', `${name}: taken twice; each checkpoint tensor binds to one initializer`, { name });
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new VitgraphError('weight_binding', `${name}: expected shape ${formatShape(shape)}, got ${formatShape(tensor.shape)}. Check that config.json matches the checkpoint`, {
        name,
        expected: [...shape],
        got: tensor.shape,
      });
    }
    this.taken.add(name);
    const { checkpoint } = this;
    return { name, shape: [...tensor.shape], load: () => checkpoint.read(name, dtype) };
  }

  /** Throws if any vision tensor of the checkpoint was never taken. */
  finish(): void {
    const leftover = [...this.checkpoint.tensors.keys()].filter((name) => !this.taken.has(name));
    if (leftover.length === 0) return;
    const listed = leftover.slice(0, LISTED_LEFTOVERS).join(', ') + (leftover.length > LISTED_LEFTOVERS ? ', …' : '');
    throw new VitgraphError(
      'weight_binding',
      `unexpected tensors in checkpoint: expected every vision tensor to be used, got ${leftover.length} unused (${listed}). ` +
        'Check that config.json (depth and its block-index lists, e.g. deepstack or full-attention blocks) matches the checkpoint',
      { names: leftover },
    );
  }
}

/** Up to 3 checkpoint names that differ from `name` by a prefix or by a couple of characters. */
function nearNames(name: string, names: readonly string[]): string[] {
  const byPrefix = names.filter((k) => k.endsWith(`.${name}`) || name.endsWith(`.${k}`));
  const byEdit = names.filter((k) => !byPrefix.includes(k) && Math.abs(k.length - name.length) <= 2 && editDistance(k, name) <= 2);
  return [...byPrefix, ...byEdit].slice(0, 3);
}

/** Levenshtein distance, one rolling row. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, substitution));
    }
    row = next;
  }
  return row[b.length]!;
}
