// Host tensors: the plain typed-array currency passed between weights, image, runtime and CLI.

import type { DataType, TypedArrayOf } from './dtype.js';

export { BYTES_PER_ELEMENT, type DataType, type TypedArrayOf } from './dtype.js';

/** A dense, row-major tensor in host memory. */
export interface HostTensor<T extends DataType = DataType> {
  readonly dtype: T;
  readonly shape: readonly number[];
  readonly data: TypedArrayOf[T];
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function hostTensor<T extends DataType>(dtype: T, shape: readonly number[], data: TypedArrayOf[T]): HostTensor<T> {
  if (data.length !== numel(shape)) {
    throw new RangeError(`tensor data: expected ${numel(shape)} elements for shape [${shape.join(', ')}], got ${data.length}`);
  }
  return { dtype, shape: [...shape], data };
}

/** Views a tensor's elements as little-endian bytes (no copy). */
export const tensorBytes = (t: HostTensor): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
