// Reading a Hugging Face `vision_config` with defaults and invariants: every error names the
// field (with its `vision_config.` path when the tower sits under a full config) and says what
// was expected.

import { invalidConfig } from '../../src/errors.js';
import type { TowerConfig } from '../../src/model.js';

/** Largest size any tower field may take (widths, depths, window sizes): far above every released tower. */
export const MAX_SIZE = 1 << 18;

/** A tower's fields as config.json holds them, read one by one with defaults. */
export class VisionConfigReader {
  private constructor(
    readonly raw: Readonly<Record<string, unknown>>,
    private readonly where: string,
  ) {}

  /** The tower of a full config (under `vision_config`) or a bare vision config. */
  static of(json: unknown): VisionConfigReader {
    if (!isRecord(json)) throw invalidConfig('(root)', 'expected a JSON object');
    const nested = isRecord(json.vision_config);
    return new VisionConfigReader(nested ? (json.vision_config as Record<string, unknown>) : json, nested ? 'vision_config.' : '');
  }

  /** `key` with its path: `vision_config.depth` under a full config. */
  path(key: string): string {
    return this.where + key;
  }

  /** An error about `key`, named with its path. */
  error(key: string, message: string): Error {
    return invalidConfig(this.path(key), message);
  }

  /**
   * An integer in `min`..MAX_SIZE; `fallback` undefined makes the field required (`why` says why).
   * The bound keeps a hostile config from sizing tables or graphs before the weights disagree.
   */
  int(key: string, fallback: number | undefined, min = 1, why = 'must be set per model'): number {
    return this.intIn(key, fallback, min, MAX_SIZE, why);
  }

  /** An integer in `min`..`max`, for a field with its own bound. */
  intIn(key: string, fallback: number | undefined, min: number, max: number, why = 'must be set per model'): number {
    const value = this.value(key, fallback, why);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw this.error(key, `expected an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  /** A positive number. */
  positive(key: string, fallback: number): number {
    const value = this.value(key, fallback);
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw this.error(key, `expected a positive number, got ${JSON.stringify(value)}`);
    return value;
  }

  /** An integer under one of several names (e.g. `in_channels` / `in_chans`) that must agree when both appear. */
  intAlias(keys: readonly [string, ...string[]], fallback: number): number {
    const present = keys.filter((k) => this.raw[k] !== undefined);
    const values = present.map((k) => this.int(k, fallback));
    if (new Set(values).size > 1) throw this.error(present.join('/'), `the names disagree: ${present.map((k, i) => `${k} = ${values[i]}`).join(', ')}`);
    return values[0] ?? fallback;
  }

  /** A string from `allowed`. */
  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const value = this.value(key, fallback);
    if (typeof value !== 'string' || !allowed.includes(value as T)) throw this.error(key, `unsupported value ${JSON.stringify(value)}; expected ${allowed.map((a) => JSON.stringify(a)).join(' or ')}`);
    return value as T;
  }

  /** Distinct block indexes in 0..depth−1. */
  blockIndexes(key: string, fallback: readonly number[], depth: number): number[] {
    const value = this.value(key, fallback);
    if (!Array.isArray(value) || !value.every((i) => Number.isInteger(i))) throw this.error(key, `expected a list of block indexes, got ${JSON.stringify(value)}`);
    const indexes = value as number[];
    for (const i of indexes) if (i < 0 || i >= depth) throw this.error(key, `index ${i} is outside blocks 0..${depth - 1}`);
    if (new Set(indexes).size !== indexes.length) throw this.error(key, `duplicate index in ${JSON.stringify(indexes)}`);
    return [...indexes];
  }

  private value(key: string, fallback: unknown, why = 'must be set per model'): unknown {
    const value = this.raw[key] ?? fallback;
    if (value === undefined) throw this.error(key, `missing (${why})`);
    return value;
  }
}

/** The fields every Qwen vision tower's config has, beyond what the core needs (TowerConfig). */
export interface BaseVisionConfig extends TowerConfig {
  readonly depth: number;
  readonly hiddenSize: number; // tower width E
  readonly numHeads: number;
  readonly headDim: number; // E / numHeads
  readonly inChannels: number;
  readonly ropeTheta: number; // 10000, hard-coded upstream
}

/** Where a family keeps its two widths, and their defaults (undefined: required, `why`). */
export interface TowerKeys {
  readonly width: string;
  readonly widthDefault: number | undefined;
  readonly out: string;
}

/** Class defaults shared by the Qwen2-VL and Qwen2.5-VL vision configs. */
const QWEN2_TOWER_DEFAULTS = { depth: 32, num_heads: 16, in_channels: 3, patch_size: 14, temporal_patch_size: 2, spatial_merge_size: 2 } as const;

/**
 * Reads the tower fields Qwen2-VL and Qwen2.5-VL share, with their class defaults;
 * `in_channels`/`in_chans` and `patch_size`/`spatial_patch_size` are both accepted.
 */
export function readTower(read: VisionConfigReader, keys: TowerKeys): BaseVisionConfig {
  const defaults = QWEN2_TOWER_DEFAULTS;
  const hiddenSize = read.int(keys.width, keys.widthDefault, 1, 'the tower width must be set per model');
  const numHeads = read.int('num_heads', defaults.num_heads);
  const inChannels = read.intAlias(['in_channels', 'in_chans'], defaults.in_channels);
  const patchSize = read.intAlias(['patch_size', 'spatial_patch_size'], defaults.patch_size);
  const temporalPatchSize = read.int('temporal_patch_size', defaults.temporal_patch_size);
  const spatialMergeSize = read.int('spatial_merge_size', defaults.spatial_merge_size);
  return {
    depth: read.int('depth', defaults.depth),
    hiddenSize,
    numHeads,
    headDim: headDimOf(read, hiddenSize, keys.width, numHeads),
    inChannels,
    patchSize,
    temporalPatchSize,
    spatialMergeSize,
    outHiddenSize: read.int(keys.out, undefined, 1, 'the merger output width, the language model hidden size, must be set per model'),
    ropeTheta: 10000,
    patchDim: inChannels * temporalPatchSize * patchSize * patchSize,
    mergeUnit: spatialMergeSize * spatialMergeSize,
  };
}

/** The shared tower fields as upstream names them. */
export function towerToJson(config: BaseVisionConfig, keys: TowerKeys): Record<string, unknown> {
  return {
    depth: config.depth,
    [keys.width]: config.hiddenSize,
    [keys.out]: config.outHiddenSize,
    num_heads: config.numHeads,
    in_channels: config.inChannels,
    patch_size: config.patchSize,
    temporal_patch_size: config.temporalPatchSize,
    spatial_merge_size: config.spatialMergeSize,
  };
}

/** head_dim = width / heads, a multiple of 4 (the 2-D rotary uses head_dim/4 frequencies per axis). */
export function headDimOf(reader: VisionConfigReader, width: number, widthKey: string, numHeads: number): number {
  if (width % numHeads !== 0) throw reader.error('num_heads', `${numHeads} heads do not divide ${widthKey} ${width}`);
  const headDim = width / numHeads;
  if (headDim % 4 !== 0) throw reader.error(widthKey, `head_dim ${headDim} must be a multiple of 4 (2-D rotary uses head_dim/4 frequencies per axis)`);
  return headDim;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
