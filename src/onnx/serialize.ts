// ModelProto serialization through onnx-proto/protobufjs, streamed: initializers are loaded
// and written one at a time, so writing a multi-GB model holds one tensor in memory.
//
// A protobuf message may repeat a field anywhere in its encoding, so GraphProto is written as
// [graph without initializers][initializer 1][initializer 2]..., each initializer a
// length-delimited field 5; the graph's total length is computed up front from the shapes.
// The output is byte-identical for identical input.

import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import onnxProto from 'onnx-proto';
import { graphBuild } from '../errors.js';
import { asFileSystemError } from '../fs/system-errors.js';
import { temporaryPath } from '../fs/temporary.js';
import { BYTES_PER_ELEMENT } from '../tensor.js';
import { onnxTypeCode } from '../dtype.js';
import type { AttributeValue, Graph, GraphBuilder, GraphIO, InitializerSpec } from './graph.js';

const { onnx } = onnxProto;

export const IR_VERSION = 10; // ONNX 1.16+, understood by ORT ≥ 1.18
export const EXTERNAL_ALIGNMENT = 4096; // mmap-friendly offsets (onnx docs/ExternalData.md)
const PROTOBUF_LIMIT = 2 ** 31 - 1;
const INLINE_MAX_BYTES = 1024; // constants this small stay in the .onnx even with external data

export interface ModelOptions {
  /** ai.onnx opset version. */
  opset: number;
  /** Extra opset imports by domain, e.g. { 'com.microsoft': 1 } (added automatically when used). */
  domains?: Record<string, number>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export interface SaveOptions extends ModelOptions {
  /**
   * Where learned weights go: 'auto' moves them to `<file>.data` past EXTERNAL_DATA_THRESHOLD bytes
   * (ORT memory-maps aligned external data: an inline 1.6 GB model loads ~10× slower and keeps a
   * parsed copy alive); an `ExternalDataFile` shares one weights file between several graphs.
   */
  externalData?: 'auto' | 'always' | 'never' | ExternalDataFile;
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

export interface SavedModel {
  path: string;
  bytes: number;
  externalDataPath?: string;
  externalDataBytes?: number;
}

/** Serializes the whole model in memory (weights inline). For small models and tests. */
export async function modelToBytes(builder: GraphBuilder, options: ModelOptions): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await writeModel(builder, options, undefined, async (bytes) => {
    chunks.push(bytes.slice());
  });
  return Buffer.concat(chunks);
}

/**
 * One external-data file that several graphs may reference: each weight is written once, at a
 * 4096-aligned offset, and later graphs with the same initializer name reuse it unread.
 */
export class ExternalDataFile {
  private readonly placed = new Map<string, { offset: number; length: number }>();
  private size = 0;

  private constructor(
    private readonly file: FileHandle,
    readonly path: string,
    private readonly tmpPath: string,
  ) {}

  /** Opens `<path>` for writing (through a temporary file renamed by `close()`). */
  static async create(path: string): Promise<ExternalDataFile> {
    const tmp = temporaryPath(path);
    const file = await open(tmp, 'wx').catch((error: unknown) => {
      throw asFileSystemError(error, path, 'write');
    });
    return new ExternalDataFile(file, path, tmp);
  }

  get bytes(): number {
    return this.size;
  }

  has(name: string): { offset: number; length: number } | undefined {
    return this.placed.get(name);
  }

  async place(name: string, bytes: Uint8Array): Promise<{ offset: number; length: number }> {
    const offset = Math.ceil(this.size / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    await this.file.write(bytes, 0, bytes.byteLength, offset).catch((error: unknown) => {
      throw asFileSystemError(error, this.path, 'write');
    });
    this.size = offset + bytes.byteLength;
    const where = { offset, length: bytes.byteLength };
    this.placed.set(name, where);
    return where;
  }

  async close(): Promise<void> {
    await this.file.close();
    await rename(this.tmpPath, this.path);
  }

  async discard(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}

/** Weight bytes past which 'auto' writes external data: small test models stay one file. */
export const EXTERNAL_DATA_THRESHOLD = 64 * 2 ** 20;

/** Writes `<path>` (and its external data), via temporary files renamed at the end. */
export async function saveModel(builder: GraphBuilder, path: string, options: SaveOptions): Promise<SavedModel> {
  const params = builder.initializers.filter((i) => i.kind === 'param');
  const paramBytes = params.reduce((sum, init) => sum + byteLength(init), 0);
  const mode = options.externalData ?? 'auto';
  const shared = mode instanceof ExternalDataFile ? mode : undefined;
  const external = shared ?? (mode === 'always' || (mode === 'auto' && paramBytes > EXTERNAL_DATA_THRESHOLD) ? await ExternalDataFile.create(`${path}.data`) : undefined);
  const tmpModel = temporaryPath(path);
  const modelFile = await open(tmpModel, 'wx').catch(async (error: unknown) => {
    if (external && !shared) await external.discard();
    throw asFileSystemError(error, path, 'write');
  });
  let written = 0;
  let modelBytes = 0;
  const progress = (bytes: number): void => options.onProgress?.((written += bytes), paramBytes);
  try {
    await writeModel(builder, options, external && { location: relative(dirname(path), external.path), store: external, onWrite: progress }, async (bytes, isWeight) => {
      await modelFile.write(bytes);
      modelBytes += bytes.byteLength;
      if (isWeight) progress(bytes.byteLength);
    });
    await modelFile.close();
    if (external && !shared) await external.close();
    await rename(tmpModel, path);
  } catch (error) {
    await modelFile.close().catch(() => undefined);
    if (external && !shared) await external.discard();
    await rm(tmpModel, { force: true });
    throw asFileSystemError(error, path, 'write');
  }
  return external ? { path, bytes: modelBytes, externalDataPath: external.path, externalDataBytes: external.bytes } : { path, bytes: modelBytes };
}

interface ExternalSink {
  /** The data file's path relative to the model (the `location` key). */
  location: string;
  store: ExternalDataFile;
  onWrite: (bytes: number) => void;
}

type Emit = (bytes: Uint8Array, isWeight: boolean) => Promise<void>;

async function writeModel(builder: GraphBuilder, options: ModelOptions, external: ExternalSink | undefined, emit: Emit): Promise<void> {
  const domains = new Map<string, number>([['', options.opset]]);
  for (const d of builder.domains) domains.set(d, options.domains?.[d] ?? 1);
  for (const [d, v] of Object.entries(options.domains ?? {})) domains.set(d, v);

  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [...domains].map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version })),
    producerName: options.producerName ?? 'vitgraph',
    producerVersion: options.producerVersion ?? '',
    docString: options.docString ?? '',
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value })),
  });
  const head = onnx.ModelProto.encode(model).finish();

  // Initializers: the .onnx holds either the raw bytes or an external-data reference.
  // Only learned weights go external; the graph's own constants stay inline.
  const inits = builder.initializers;
  const stays = (init: InitializerSpec): boolean => !external || init.kind === 'constant' || byteLength(init) <= INLINE_MAX_BYTES;
  const graphBody = onnx.GraphProto.encode(graphProto(builder)).finish();
  // Each initializer's encoding: `prefix` (its TensorProto without payload) and its total `size`
  // (prefix + raw_data field, or -1 until an external reference is placed).
  const placed = inits.map((spec) => {
    if (!stays(spec)) return { spec, prefix: new Uint8Array(), size: -1 };
    const prefix = onnx.TensorProto.encode(tensorHeader(spec)).finish();
    const len = byteLength(spec);
    return { spec, prefix, size: prefix.byteLength + (len > 0 ? 1 + varintLength(len) + len : 0) };
  });
  // External references need the offset before the graph length is known: place them first.
  if (external) {
    for (const [i, p] of placed.entries()) {
      if (p.size !== -1) continue;
      let where = external.store.has(p.spec.name);
      if (where && where.length !== byteLength(p.spec)) {
        throw graphBuild(p.spec.name, `shared external data already holds ${where.length} bytes under this name, this graph needs ${byteLength(p.spec)}`);
      }
      if (!where) {
        const bytes = await loadChecked(p.spec);
        where = await external.store.place(p.spec.name, bytes);
      }
      external.onWrite(where.length);
      const ref = tensorHeader(p.spec);
      ref.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      ref.externalData = [
        { key: 'location', value: external.location },
        { key: 'offset', value: String(where.offset) },
        { key: 'length', value: String(where.length) },
      ];
      const prefix = onnx.TensorProto.encode(ref).finish();
      placed[i] = { spec: p.spec, prefix, size: prefix.byteLength };
    }
  }
  const graphLength = placed.reduce((sum, p) => sum + 1 + varintLength(p.size) + p.size, graphBody.byteLength);
  if (head.byteLength + graphLength > PROTOBUF_LIMIT) {
    throw graphBuild('model', `serialized model would be ${head.byteLength + graphLength} bytes, over protobuf's 2 GB limit; save it with external data`);
  }

  await emit(head, false);
  await emit(Uint8Array.of(0x3a, ...varint(graphLength)), false); // ModelProto.graph = field 7
  await emit(graphBody, false);
  for (const p of placed) {
    await emit(Uint8Array.of(0x2a, ...varint(p.size)), false); // GraphProto.initializer = field 5
    await emit(p.prefix, false);
    if (p.prefix.byteLength === p.size) continue; // external reference or empty tensor
    const bytes = await loadChecked(p.spec);
    await emit(Uint8Array.of(0x4a, ...varint(bytes.byteLength)), false); // TensorProto.raw_data = field 9
    await emit(bytes, true);
  }
}

function tensorHeader(init: InitializerSpec): onnxProto.onnx.TensorProto {
  return onnx.TensorProto.create({ name: init.name, dims: [...init.shape], dataType: onnxTypeCode(init.dtype) });
}

async function loadChecked(init: InitializerSpec): Promise<Uint8Array> {
  const bytes = typeof init.data === 'function' ? await init.data() : init.data;
  if (bytes.byteLength !== byteLength(init)) throw graphBuild(init.name, `initializer loaded ${bytes.byteLength} bytes, expected ${byteLength(init)}`);
  return bytes;
}

const byteLength = (init: InitializerSpec): number => init.shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[init.dtype];

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const varintLength = (value: number): number => varint(value).length;

// ---- graph → GraphProto ------------------------------------------------------------------

/** A graph's nodes, inputs and outputs (the root's initializers are streamed by writeModel; bodies have none). */
function graphProto(graph: Graph): onnxProto.onnx.GraphProto {
  return onnx.GraphProto.create({
    name: graph.name,
    node: graph.nodes.map((n) =>
      onnx.NodeProto.create({
        name: n.name,
        opType: n.opType,
        domain: n.domain,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: [...n.attributes].map(([name, value]) => attributeProto(name, value)),
      }),
    ),
    input: graph.inputs.map(valueInfo),
    output: graph.outputs.map(valueInfo),
  });
}

function valueInfo(io: GraphIO): onnxProto.onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name: io.name,
    type: {
      tensorType: {
        elemType: onnxTypeCode(io.dtype),
        shape: { dim: io.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attributeProto(name: string, value: AttributeValue): onnxProto.onnx.AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return onnx.AttributeProto.create({ name, type: T.INT, i: value });
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: Buffer.from(value) });
  if (Array.isArray(value)) {
    if (value.every((v): v is number => typeof v === 'number')) return onnx.AttributeProto.create({ name, type: T.INTS, ints: value });
    return onnx.AttributeProto.create({ name, type: T.STRINGS, strings: (value as string[]).map((s) => Buffer.from(s)) });
  }
  if ('float' in value) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: value.float });
  if ('floats' in value) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: value.floats });
  if ('tensor' in value) {
    const { dtype, dims, bytes } = value.tensor;
    return onnx.AttributeProto.create({ name, type: T.TENSOR, t: { dims, dataType: onnxTypeCode(dtype), rawData: bytes } });
  }
  return onnx.AttributeProto.create({ name, type: T.GRAPH, g: graphProto(value) });
}
