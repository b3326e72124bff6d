// Host tensors: the plain typed-array currency passed between weights, image, runtime and CLI.

/** Element types vitgraph moves around, named as onnxruntime-node names them. */
export type DataType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export interface TypedArrayOf {
  float32: Float32Array;
  float16: Uint16Array; // raw IEEE half bits
  bfloat16: Uint16Array; // raw bfloat16 bits
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** A dense, row-major tensor in host memory. */
export interface HostTensor<T extends DataType = DataType> {
  readonly dtype: T;
  readonly shape: readonly number[];
  readonly data: TypedArrayOf[T];
}

export const BYTES_PER_ELEMENT: Readonly<Record<DataType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function hostTensor<T extends DataType>(dtype: T, shape: readonly number[], data: TypedArrayOf[T]): HostTensor<T> {
  if (data.length !== numel(shape)) {
    throw new RangeError(`tensor data: expected ${numel(shape)} elements for shape [${shape.join(', ')}], got ${data.length}`);
  }
  return { dtype, shape: [...shape], data };
}

/** Views a tensor's elements as little-endian bytes (no copy). */
export const tensorBytes = (t: HostTensor): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
