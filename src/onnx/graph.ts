// The typed graph builder: values that carry dtype and shape, nodes named by scope,
// initializers named by the module tree. Knows ONNX, never any particular model.

import { FLOAT_LINEAR, type LinearScheme } from './linear-scheme.js';
import { graphBuild } from '../errors.js';
import { BYTES_PER_ELEMENT, type DataType } from '../tensor.js';
import { convertFloatBytes, DTYPES, f32ToBf16, f32ToF16 } from '../dtype.js';
import { formatDims, type Dim, type Shape } from './dims.js';

export type { Dim, Shape } from './dims.js';
export type { DataType } from '../tensor.js';

/** Attribute values an ONNX node can carry (typed by the op wrappers that set them). */
export type AttributeValue =
  | number // INT
  | { float: number } // FLOAT
  | string // STRING
  | number[] // INTS
  | { floats: number[] } // FLOATS
  | string[] // STRINGS
  | { tensor: { dtype: DataType; dims: number[]; bytes: Uint8Array } } // TENSOR
  | Graph; // GRAPH

export interface NodeSpec {
  readonly opType: string;
  readonly domain: string; // '' for ai.onnx, 'com.microsoft' for contrib ops
  readonly name: string;
  readonly inputs: readonly string[]; // '' marks an omitted optional input
  readonly outputs: readonly string[];
  readonly attributes: ReadonlyMap<string, AttributeValue>;
}

/** Where an initializer's bytes come from: in memory now, or loaded when the model is written. */
export type InitializerData = Uint8Array | (() => Promise<Uint8Array>);

export interface InitializerSpec {
  /** 'param': a learned weight (checkpoint tensor); 'constant': built by the graph itself. */
  readonly kind: 'param' | 'constant';
  readonly name: string;
  readonly dtype: DataType;
  readonly shape: readonly number[];
  readonly data: InitializerData;
}

/** A parameter provider: answers `param()` calls with checkpoint tensors (or zeros, or random). */
export interface ParameterSource {
  take(name: string, shape: readonly number[], dtype: DataType): InitializerData;
}

/** A tensor-valued edge of the graph. Immutable; ops create new values. */
export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DataType,
    readonly shape: Shape,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  /** Dim `i` (negative counts from the end). */
  dim(i: number): Dim {
    const d = this.shape[i < 0 ? this.shape.length + i : i];
    if (d === undefined) throw graphBuild(this.name, `axis ${i} out of range for shape ${formatDims(this.shape)}`);
    return d;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatDims(this.shape)}`;
  }
}

export interface GraphIO {
  readonly name: string;
  readonly dtype: DataType;
  readonly shape: Shape;
}

/**
 * One ONNX graph (the main graph or a control-flow body). Bodies share the root's name
 * space, scope stack, parameter source and initializer list, so names stay unique model-wide.
 */
export class Graph {
  readonly nodes: NodeSpec[] = [];
  readonly inputs: GraphIO[] = [];
  readonly outputs: GraphIO[] = [];
  private readonly root: RootState;

  protected constructor(
    root: RootState | undefined,
    readonly name: string,
  ) {
    this.root = root ?? new RootState();
  }

  // ---- scopes and names -------------------------------------------------------------

  /** Runs `build` inside a named scope: params get `name.` prefixed, nodes `name/`. */
  scope<T>(name: string | number, build: () => T): T {
    this.root.scopes.push(String(name));
    try {
      return build();
    } finally {
      this.root.scopes.pop();
    }
  }

  /** The current scope as a parameter-name prefix, e.g. "blocks.3.attn". */
  get paramPath(): string {
    return this.root.scopes.join('.');
  }

  /** Claims a unique node name now, for ops that name their body graphs before the node exists. */
  reserveNodeName(opType: string): string {
    return this.uniqueNodeName(opType);
  }

  private uniqueNodeName(opType: string): string {
    const base = [...this.root.scopes, opType].join('/');
    const n = this.root.nodeNames.get(base) ?? 0;
    this.root.nodeNames.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }

  private claimName(name: string): string {
    if (this.root.valueNames.has(name)) throw graphBuild(name, 'a value with this name already exists in the model');
    this.root.valueNames.add(name);
    return name;
  }

  // ---- graph interface --------------------------------------------------------------

  input(name: string, dtype: DataType, shape: Shape): Value {
    this.inputs.push({ name: this.claimName(name), dtype, shape });
    return new Value(this, name, dtype, shape);
  }

  /** Declares `value` as a graph output named `name` (an Identity when renaming is needed). */
  output(value: Value, name: string = value.name): void {
    const v = value.name === name ? value : this.node('Identity', [value], { outputs: [{ dtype: value.dtype, shape: value.shape, name }] })[0]!;
    this.outputs.push({ name: v.name, dtype: v.dtype, shape: v.shape });
  }

  // ---- initializers -------------------------------------------------------------------

  /** A learned parameter named by the current scope + `name`: its name is the checkpoint key. */
  /** How Linear layers store their weights in this model (float, or quantized at export). */
  get linearScheme(): LinearScheme {
    return this.root.linearScheme;
  }

  param(name: string, shape: readonly number[], dtype: DataType = this.root.paramDType): Value {
    const full = this.paramPath ? `${this.paramPath}.${name}` : name;
    const source = this.root.params;
    if (!source) throw graphBuild(full, 'graph has no parameter source; pass one to GraphBuilder');
    return this.initializer(full, dtype, shape, source.take(full, shape, dtype), 'param');
  }

  /**
   * Initializers computed from one learned parameter, e.g. its quantized codes and scales. The
   * parameter `name` [shape] is claimed from the source now (strict binding as for `param`);
   * when the model is written it is loaded once, converted to float32 and handed to `derive`,
   * whose i-th output becomes `parts[i]`, named `<param>.<suffix>`. Nothing is loaded while the
   * graph is built; the derived bytes are dropped once every part has been written.
   */
  derivedParams(
    name: string,
    shape: readonly number[],
    parts: readonly { suffix: string; dtype: DataType; shape: readonly number[] }[],
    derive: (weight: Float32Array) => readonly Uint8Array[],
  ): Value[] {
    const full = this.paramPath ? `${this.paramPath}.${name}` : name;
    const source = this.root.params;
    if (!source) throw graphBuild(full, 'graph has no parameter source; pass one to GraphBuilder');
    const sourceDType = this.root.paramDType;
    if (sourceDType !== 'float32' && sourceDType !== 'float16' && sourceDType !== 'bfloat16') throw graphBuild(full, `derived parameters need float weights, the source gives ${sourceDType}`);
    const data = source.take(full, shape, sourceDType);
    let pending: Promise<readonly Uint8Array[]> | undefined;
    let unread = parts.length;
    const compute = async (): Promise<readonly Uint8Array[]> => {
      const bytes = typeof data === 'function' ? await data() : data;
      const f32 = convertFloatBytes(bytes, sourceDType, 'float32');
      const outputs = derive(new Float32Array(f32.buffer, f32.byteOffset, f32.byteLength / 4));
      if (outputs.length !== parts.length) throw graphBuild(full, `derive returned ${outputs.length} tensors for ${parts.length} parts`);
      return outputs;
    };
    return parts.map((part, i) =>
      this.initializer(
        `${full}.${part.suffix}`,
        part.dtype,
        part.shape,
        async () => {
          pending ??= compute();
          const outputs = await pending;
          if (--unread === 0) {
            pending = undefined; // every part written: release (a later write recomputes)
            unread = parts.length;
          }
          return outputs[i]!;
        },
        'param',
      ),
    );
  }

  /** A constant tensor stored as an initializer of the root graph. */
  constant(dtype: DataType, shape: readonly number[], values: ArrayLike<number> | ArrayLike<bigint>, name?: string): Value {
    const bytes = encodeValues(dtype, values, shape);
    const key = `${dtype}|${shape.join(',')}|${Buffer.from(bytes).toString('base64')}`;
    const cached = name === undefined && bytes.byteLength <= 64 ? this.root.smallConstants.get(key) : undefined;
    if (cached) return new Value(this, cached.name, dtype, shape);
    const v = this.initializer(name ?? this.uniqueNodeName('const'), dtype, shape, bytes);
    if (name === undefined && bytes.byteLength <= 64) this.root.smallConstants.set(key, v);
    return v;
  }

  /** Scalar and 1-D int64 constants, the usual shape/axes operands. */
  int64s(values: readonly number[]): Value {
    return this.constant('int64', [values.length], values.map(BigInt));
  }
  scalar(dtype: DataType, value: number): Value {
    return this.constant(dtype, [], dtype === 'int64' ? [BigInt(value)] : [value]);
  }

  initializer(name: string, dtype: DataType, shape: readonly number[], data: InitializerData, kind: 'param' | 'constant' = 'constant'): Value {
    if (data instanceof Uint8Array) {
      const expected = shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype];
      if (data.byteLength !== expected) throw graphBuild(name, `initializer has ${data.byteLength} bytes, shape ${formatDims(shape)} of ${dtype} needs ${expected}`);
    }
    this.root.initializers.push({ kind, name: this.claimName(name), dtype, shape: [...shape], data });
    return new Value(this, name, dtype, shape);
  }

  get initializers(): readonly InitializerSpec[] {
    return this.root.initializers;
  }

  // ---- nodes -------------------------------------------------------------------------

  /**
   * Appends a node. Op wrappers compute each output's dtype and shape before calling this;
   * `inputs` may contain `undefined` for omitted optional inputs.
   */
  node(
    opType: string,
    inputs: readonly (Value | undefined)[],
    spec: {
      outputs: readonly { dtype: DataType; shape: Shape; name?: string }[];
      attributes?: Record<string, AttributeValue | undefined>;
      domain?: string;
      /** A name from `reserveNodeName` (default: a fresh one from the scope). */
      name?: string;
    },
  ): Value[] {
    const name = spec.name ?? this.uniqueNodeName(opType);
    const outputs = spec.outputs.map((o, i) => new Value(this, this.claimName(o.name ?? (spec.outputs.length === 1 ? name : `${name}:${i}`)), o.dtype, o.shape));
    const attributes = new Map<string, AttributeValue>();
    for (const [k, v] of Object.entries(spec.attributes ?? {})) if (v !== undefined) attributes.set(k, v);
    // Nodes go to the innermost body under construction (a Loop body reads outer values).
    const target = this.root.building.at(-1) ?? this;
    target.nodes.push({
      opType,
      domain: spec.domain ?? '',
      name,
      inputs: inputs.map((v) => v?.name ?? ''),
      outputs: outputs.map((v) => v.name),
      attributes,
    });
    if (spec.domain) this.root.domains.add(spec.domain);
    return outputs;
  }

  /** Name of the node being built, for error messages raised before `node()` is called. */
  pendingNodeName(opType: string): string {
    return [...this.root.scopes, opType].join('/');
  }

  /** A body graph for Loop/If/Scan sharing this model's names, scopes and initializers. */
  subgraph(name: string): Graph {
    return new Graph(this.root, name);
  }

  /** Runs `build` with every new node going into `body` (an op's body graph). */
  buildInto<T>(body: Graph, build: () => T): T {
    this.root.building.push(body);
    try {
      return build();
    } finally {
      this.root.building.pop();
    }
  }

  get domains(): ReadonlySet<string> {
    return this.root.domains;
  }
}

/** State shared by a model's root graph and all its bodies. */
class RootState {
  readonly scopes: string[] = [];
  readonly nodeNames = new Map<string, number>();
  readonly valueNames = new Set<string>();
  readonly initializers: InitializerSpec[] = [];
  readonly smallConstants = new Map<string, Value>();
  readonly domains = new Set<string>();
  readonly building: Graph[] = [];
  params: ParameterSource | undefined;
  paramDType: DataType = 'float32';
  linearScheme: LinearScheme = FLOAT_LINEAR;
}

/** The root graph of a model under construction. */
export class GraphBuilder extends Graph {
  constructor(options: { name?: string; params?: ParameterSource; paramDType?: DataType; linearScheme?: LinearScheme | undefined } = {}) {
    super(undefined, options.name ?? 'main');
    const root = (this as unknown as { root: RootState }).root;
    root.params = options.params;
    root.paramDType = options.paramDType ?? 'float32';
    root.linearScheme = options.linearScheme ?? FLOAT_LINEAR;
  }
}

/** Little-endian bytes for a constant's values in `dtype`. */
export function encodeValues(dtype: DataType, values: ArrayLike<number> | ArrayLike<bigint>, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw graphBuild('constant', `expected ${count} values for shape ${formatDims(shape)}, got ${values.length}`);
  const asNumbers = (): number[] => Array.from(values as ArrayLike<number | bigint>, Number);
  let array: ArrayBufferView;
  if (dtype === 'int64') array = BigInt64Array.from(Array.from(values as ArrayLike<number | bigint>, (v) => BigInt(v)));
  else if (dtype === 'float16' || dtype === 'bfloat16') array = (dtype === 'float16' ? f32ToF16 : f32ToBf16)(Float32Array.from(asNumbers()));
  else {
    const typed = new DTYPES[dtype].array(count); // float32, float64, int32, int8, uint8, bool
    typed.set(asNumbers());
    array = typed;
  }
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}
