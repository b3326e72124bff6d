// What a vision tower tells the model-agnostic core about itself. Each folder under graphs/
// exports one `ModelDescriptor`; graphs/index.ts lists them. Nothing in src/ names a model: the
// core reads configs, builds graphs and slices outputs only through these fields.

import { invalidArgument, invalidConfig } from './errors.js';
import { patchDim, type ProcessorParams } from './image/processor.js';
import type { GraphBuilder, ParameterSource } from './onnx/index.js';
import type { LinearScheme } from './onnx/linear-scheme.js';

/** The facts of a parsed tower config that the core needs, whatever the tower. */
export interface TowerConfig {
  /** Columns of pixel_values: C·Tp·P². */
  readonly patchDim: number;
  /** Patches merged into one output token: m². */
  readonly mergeUnit: number;
  /** m: grid_thw's h and w are multiples of it. */
  readonly spatialMergeSize: number;
  /** P: grid_thw counts patches of P×P pixels. */
  readonly patchSize: number;
  /** Tp: frames per temporal patch. */
  readonly temporalPatchSize: number;
  /** Width of every output row (the language model's hidden size). */
  readonly outHiddenSize: number;
}

/** A graph output: float32, tokens of all items concatenated along `tokenAxis`. */
export interface OutputSpec {
  readonly name: string;
  readonly tokenAxis: number;
}

/** One padded graph's fixed shape. */
export interface Bucket {
  /** Pre-merge patch rows (Nmax), a multiple of the merge unit. */
  readonly maxPatches: number;
  /** grid_thw rows (Imax); unused rows are zero. */
  readonly maxItems: number;
}

/** Float precision of a graph's weights and matmuls (statistics, softmax and rotary stay float32). */
export type FloatDType = 'float32' | 'float16' | 'bfloat16';

export interface GraphOptions {
  /** Float precision of weights and matmuls. */
  readonly dtype: FloatDType;
  /** Padded graphs: the device the bucket is for (default 'cpu'; see contract.ts `slotPatches`). */
  readonly device?: 'cpu' | 'cuda' | undefined;
  /** How Linear layers store weights (default: float in `dtype`). */
  readonly linear?: LinearScheme | undefined;
  /** Dynamic graphs: 'looped' (default) fused attention per segment, or 'dense' with an [N, N] mask. */
  readonly attention?: 'looped' | 'dense' | undefined;
}

export interface ModelDescriptor<C extends TowerConfig = TowerConfig> {
  /** Recorded in vitgraph.json and metadata_props, e.g. 'qwen3-vl'. */
  readonly id: string;
  /** For messages and doc strings: 'Qwen3-VL vision tower (Qwen3VLVisionModel)'. */
  readonly title: string;
  /** config.json `model_type`s this tower is read from (top level or vision_config). */
  readonly modelTypes: readonly string[];
  /** The full config.json (or a bare vision config) → a typed config; throws invalid_config naming the field. */
  parseConfig(json: unknown): C;
  /** The tower's config as upstream names it (metadata, manifests; parseConfig reads it back). */
  configToJson(config: C): Record<string, unknown>;
  /** The graph outputs besides `token_count`, in order. */
  outputs(config: C): readonly OutputSpec[];
  /** The family's processor as its checkpoints ship it (for a graph that recorded none). */
  readonly processor: ProcessorParams;
  /** Processor defaults for this tower: the family's with its sizes (a checkpoint's preprocessor_config.json overrides them). */
  processorDefaults(config: C): ProcessorParams;
  /** pixel_values [N, patchDim] + grid_thw [I, 3] → outputs, every shape but the feature width dynamic. */
  buildDynamic(config: C, params: ParameterSource, options: GraphOptions): GraphBuilder;
  /** The fixed-shape variant for one bucket, with `token_count`; no control flow. */
  buildPadded(config: C, params: ParameterSource, bucket: Bucket, options: GraphOptions): GraphBuilder;
  /**
   * Checks the config against the checkpoint's tensor shapes (from its header) before anything is
   * sized from it, throwing invalid_config naming the field; binding checks every tensor later.
   */
  checkWeights?(config: C, shapeOf: (name: string) => readonly number[] | undefined): void;
  /** `vitgraph synth` presets: full config.json objects with the released towers' shapes. */
  readonly presets: Readonly<Record<string, Record<string, unknown>>>;
}

/** The towers vitgraph knows, looked up by id or detected from a config.json. */
export class ModelRegistry {
  constructor(readonly models: readonly ModelDescriptor[]) {}

  byId(id: unknown): ModelDescriptor {
    const model = this.models.find((m) => m.id === id);
    if (!model) throw invalidArgument('model id', `one of ${this.ids()}`, typeof id === 'string' ? id : String(id), 'Upgrade vitgraph, or re-export with this version');
    return model;
  }

  /** The tower a config.json describes, from its (or its vision_config's) model_type. */
  detect(config: unknown): ModelDescriptor {
    const types = modelTypes(config);
    const model = this.models.find((m) => types.some((t) => m.modelTypes.includes(t)));
    if (!model) {
      throw invalidConfig('model_type', `expected one of ${this.models.flatMap((m) => m.modelTypes).join(', ')}, got ${types.length ? types.join(' / ') : 'none'}`, `vitgraph supports ${this.ids()}`);
    }
    return model;
  }

  /**
   * For a graph that recorded no processor: the first family whose shipped processor makes pixel
   * rows `columns` wide (Qwen3-VL's 1536, Qwen2-VL's 1176), or undefined.
   */
  processorFor(columns: number): ProcessorParams | undefined {
    return this.models.find((m) => patchDim(m.processor) === columns)?.processor;
  }

  /** The pixel-row widths of the registered families' processors, e.g. "1536 or 1176". */
  rowWidths(): string {
    return [...new Set(this.models.map((m) => patchDim(m.processor)))].join(' or ');
  }

  private ids(): string {
    return this.models.map((m) => m.id).join(', ');
  }
}

function modelTypes(config: unknown): string[] {
  if (typeof config !== 'object' || config === null) return [];
  const record = config as Record<string, unknown>;
  const vision = record.vision_config;
  const nested = typeof vision === 'object' && vision !== null ? (vision as Record<string, unknown>).model_type : undefined;
  return [record.model_type, nested].filter((t): t is string => typeof t === 'string');
}
