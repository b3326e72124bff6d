// Encoded items → response bodies. JSON: per item its grid, tokens and each named output as
// { dtype, shape, data: base64 of little-endian float32 }. Safetensors: the items' outputs
// concatenated along each output's token axis plus grid_thw [I, 3], the names `vitgraph encode` writes.

import { endianness } from 'node:os';
import { concatAxis } from '../runtime/buckets.js';
import { hostTensor, type HostTensor } from '../tensor.js';
import { encodeSafetensorsHeader, toSafetensorsDType } from '../weights/safetensors.js';
import type { EncodedItem, OutputSpec } from './types.js';

export interface Timings {
  readonly preprocess_ms: number;
  readonly queue_ms: number;
  readonly encode_ms: number;
  readonly total_ms: number;
  /** The runtime call this request rode in. */
  readonly batch: { readonly requests: number; readonly items: number; readonly patches: number };
}

export interface JsonTensor {
  readonly dtype: 'float32';
  readonly shape: readonly number[];
  /** Base64 of the little-endian float32 bytes, row-major. */
  readonly data: string;
}

export interface EncodeResponse {
  readonly items: { readonly kind: string; readonly grid_thw: readonly number[]; readonly tokens: number; readonly outputs: Record<string, JsonTensor> }[];
  readonly timings: Timings;
}

if (endianness() !== 'LE') throw new Error('vitgraph serve writes float32 bytes as stored in memory, which must be little-endian');

export function jsonResponse(items: readonly EncodedItem[], timings: Timings): EncodeResponse {
  return {
    items: items.map((item) => ({
      kind: item.kind,
      grid_thw: [...item.gridThw],
      tokens: item.tokens,
      outputs: Object.fromEntries(Object.entries(item.outputs).map(([name, t]) => [name, { dtype: 'float32', shape: [...t.shape], data: bytesOf(t).toString('base64') }])),
    })),
    timings,
  };
}

/** A safetensors file in memory: each output concatenated over items, plus grid_thw int64 [I, 3]. */
export function safetensorsResponse(items: readonly EncodedItem[], specs: readonly OutputSpec[], metadata: Record<string, string>): Buffer {
  const tensors = new Map<string, HostTensor>(
    specs.map((spec) => [
      spec.name,
      concatAxis(
        items.map((i) => i.outputs[spec.name]!),
        spec.tokenAxis,
      ),
    ]),
  );
  tensors.set('grid_thw', hostTensor('int64', [items.length, 3], BigInt64Array.from(items.flatMap((i) => i.gridThw.map(BigInt)))));
  const specsOut = [...tensors].map(([name, t]) => ({ name, dtype: toSafetensorsDType(t.dtype), shape: t.shape }));
  const { header, ordered } = encodeSafetensorsHeader(specsOut, metadata);
  return Buffer.concat([header, ...ordered.map((spec) => bytesOf(tensors.get(spec.name)!))]);
}

function bytesOf(t: HostTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
