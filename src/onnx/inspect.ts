// Reads an .onnx file's structure without loading its weights: the top-level ModelProto and
// GraphProto fields are walked on disk and tensor payloads (raw_data, typed data) are skipped
// by seeking, so inspecting a multi-GB model reads a few MB.

import type { FileHandle } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { invalidFile } from '../errors.js';
import { openRegularFile } from '../fs/confined.js';
import type { DataType } from '../tensor.js';
import type { Dim } from './dims.js';
import { dataTypeOfCode } from '../dtype.js';

const { onnx } = onnxProto;

export interface TensorSignature {
  name: string;
  dtype: DataType | `onnx:${number}`;
  shape: Dim[];
}

export interface ModelSummary {
  irVersion: number;
  producer: string;
  opsets: Record<string, number>; // domain ('' = ai.onnx) → version
  metadata: Record<string, string>;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** "domain::OpType" (or "OpType" for ai.onnx) → count, including control-flow bodies. */
  ops: Record<string, number>;
  nodes: number;
  initializers: number;
  /** Elements in all initializers. */
  parameters: number;
  /** External data files referenced by initializers (relative to the model). */
  externalFiles: string[];
}

// Field numbers from onnx.proto.
const MODEL = { graph: 7, opsetImport: 8, irVersion: 1, producerName: 2, metadataProps: 14 };
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12 };
const TENSOR_PAYLOAD = new Set([4, 5, 6, 7, 9, 10, 11]); // float/int32/string/int64/raw/double/uint64 data

export async function inspectModel(path: string): Promise<ModelSummary> {
  const file: FileHandle = await openRegularFile(path, 'ONNX model'); // a FIFO is refused, not waited on
  try {
    const size = (await file.stat()).size;
    const reader = new FieldReader(file, path, size);
    const summary: ModelSummary = { irVersion: 0, producer: '', opsets: {}, metadata: {}, inputs: [], outputs: [], ops: {}, nodes: 0, initializers: 0, parameters: 0, externalFiles: [] };
    let sawGraph = false;
    for await (const field of reader.fields(0, size)) {
      if (field.number === MODEL.irVersion) summary.irVersion = field.varint;
      else if (field.number === MODEL.producerName) summary.producer = Buffer.from(await reader.bytes(field)).toString();
      else if (field.number === MODEL.opsetImport) {
        const o = onnx.OperatorSetIdProto.decode(await reader.bytes(field));
        summary.opsets[o.domain] = Number(o.version);
      } else if (field.number === MODEL.metadataProps) {
        const e = onnx.StringStringEntryProto.decode(await reader.bytes(field));
        summary.metadata[e.key] = e.value;
      } else if (field.number === MODEL.graph) {
        sawGraph = true;
        await readGraph(reader, field.start, field.start + field.length, summary);
      }
    }
    if (!sawGraph) throw invalidFile(path, 'not an ONNX model (no graph found)');
    return summary;
  } finally {
    await file.close();
  }
}

async function readGraph(reader: FieldReader, start: number, end: number, summary: ModelSummary): Promise<void> {
  const external = new Set<string>();
  for await (const field of reader.fields(start, end)) {
    if (field.number === GRAPH.node) {
      countNodes(onnx.NodeProto.decode(await reader.bytes(field)), summary);
    } else if (field.number === GRAPH.initializer) {
      // Keep every field of the TensorProto but its payload, then decode that.
      const kept: Uint8Array[] = [];
      for await (const f of reader.fields(field.start, field.start + field.length)) {
        if (!TENSOR_PAYLOAD.has(f.number)) kept.push(await reader.raw(f));
      }
      const t = onnx.TensorProto.decode(Buffer.concat(kept));
      summary.initializers += 1;
      summary.parameters += t.dims.reduce<number>((a, d) => a * Number(d), 1);
      const location = t.externalData.find((e) => e.key === 'location');
      if (location?.value) external.add(location.value);
    } else if (field.number === GRAPH.input || field.number === GRAPH.output) {
      const v = onnx.ValueInfoProto.decode(await reader.bytes(field));
      (field.number === GRAPH.input ? summary.inputs : summary.outputs).push(signature(v));
    }
  }
  summary.externalFiles = [...external];
}

function countNodes(node: onnxProto.onnx.NodeProto, summary: ModelSummary): void {
  const key = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}::${node.opType}` : node.opType;
  summary.ops[key] = (summary.ops[key] ?? 0) + 1;
  summary.nodes += 1;
  for (const attr of node.attribute) {
    for (const g of [attr.g, ...(attr.graphs ?? [])]) for (const n of g?.node ?? []) countNodes(onnx.NodeProto.create(n), summary);
  }
}

function signature(v: onnxProto.onnx.ValueInfoProto): TensorSignature {
  const tensor = v.type?.tensorType;
  const code = tensor?.elemType ?? 0;
  return {
    name: v.name,
    dtype: dataTypeOfCode(code) ?? `onnx:${code}`,
    shape: (tensor?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0))),
  };
}

interface Field {
  number: number;
  wire: number;
  /** Start of the field's tag, of its value, and the value's length (length-delimited). */
  tagStart: number;
  start: number;
  length: number;
  varint: number;
}

/** Walks protobuf fields of a message stored in a file, reading lazily through a small window. */
class FieldReader {
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly path: string,
    private readonly size: number,
  ) {}

  async *fields(start: number, end: number): AsyncGenerator<Field> {
    let pos = start;
    while (pos < end) {
      const tagStart = pos;
      const [tag, afterTag] = await this.varintAt(pos);
      const number = Math.floor(tag / 8);
      const wire = tag % 8;
      let field: Field;
      if (wire === 0) {
        const [value, next] = await this.varintAt(afterTag);
        field = { number, wire, tagStart, start: afterTag, length: next - afterTag, varint: value };
      } else if (wire === 2) {
        const [length, valueStart] = await this.varintAt(afterTag);
        field = { number, wire, tagStart, start: valueStart, length, varint: 0 };
      } else if (wire === 5 || wire === 1) {
        field = { number, wire, tagStart, start: afterTag, length: wire === 5 ? 4 : 8, varint: 0 };
      } else {
        throw invalidFile(this.path, `not an ONNX model (bad protobuf wire type ${wire} at byte ${pos})`);
      }
      pos = field.start + field.length;
      if (pos > end) throw invalidFile(this.path, `truncated ONNX model (field ${number} runs past byte ${end})`);
      yield field;
    }
  }

  /** The field's value bytes. */
  bytes(field: Field): Promise<Uint8Array> {
    return this.read(field.start, field.length);
  }

  /** The field's full encoding (tag + length + value). */
  raw(field: Field): Promise<Uint8Array> {
    return this.read(field.tagStart, field.start + field.length - field.tagStart);
  }

  private async varintAt(pos: number): Promise<[number, number]> {
    const bytes = await this.read(pos, Math.min(10, this.size - pos));
    let value = 0;
    let scale = 1;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) return [value, pos + i + 1];
    }
    throw invalidFile(this.path, `not an ONNX model (bad varint at byte ${pos})`);
  }

  private async read(pos: number, length: number): Promise<Uint8Array> {
    if (pos < 0 || pos + length > this.size) throw invalidFile(this.path, `truncated ONNX model (needs bytes ${pos}..${pos + length}, file has ${this.size})`);
    if (pos >= this.windowStart && pos + length <= this.windowStart + this.window.length) {
      return this.window.subarray(pos - this.windowStart, pos - this.windowStart + length);
    }
    if (length > 1 << 20) {
      const out = Buffer.alloc(length);
      await this.file.read(out, 0, length, pos);
      return out;
    }
    this.windowStart = pos;
    this.window = Buffer.alloc(Math.min(Math.max(length, 1 << 16), this.size - pos));
    await this.file.read(this.window, 0, this.window.length, pos);
    return this.window.subarray(0, length);
  }
}
