// vitgraph's ONNX graph builder: typed values, scoped names, streamed serialization.

export * from './dims.js';
export { Graph, GraphBuilder, Value, encodeValues } from './graph.js';
export type { AttributeValue, DataType, GraphIO, InitializerData, InitializerSpec, NodeSpec, ParameterSource } from './graph.js';
export { onnxTypeCode, dataTypeOfCode } from '../dtype.js';
export { ExternalDataFile, modelToBytes, saveModel, EXTERNAL_ALIGNMENT, IR_VERSION } from './serialize.js';
export type { ModelOptions, SaveOptions, SavedModel } from './serialize.js';
export * as op from './ops/index.js';
export { FLOAT_LINEAR, LINEAR_SCHEME_KEY, describeLinearScheme, linear, parseLinearScheme } from './linear.js';
export type { LayerScheme, LinearRole, LinearScheme } from './linear.js';
