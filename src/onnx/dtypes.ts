// DataType ↔ ONNX TensorProto.DataType codes (onnx.proto, TensorProto.DataType).

import type { DataType } from '../tensor.js';

const CODES: Readonly<Record<DataType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

export const onnxTypeCode = (dtype: DataType): number => CODES[dtype];

export function dataTypeOfCode(code: number): DataType | undefined {
  for (const [dtype, c] of Object.entries(CODES)) if (c === code) return dtype as DataType;
  return undefined;
}
