// vitgraph's public API. This facade is the one place in src/ that reaches into graphs/: it
// composes the Qwen3-VL model with the model-agnostic machinery (builder, weights, image,
// runtime), none of which knows the model.

export { VisionEncoder, EMBEDDED_MODEL } from '../graphs/qwen3-vl/encoder.js';
export type { EncodeInput, EncodeResult, EncodedItem, RawPixels, VisionEncoderOptions } from '../graphs/qwen3-vl/encoder.js';
export { exportModel, openPackage, parseConfig, synthCheckpoint, IO, PADDED_IO } from '../graphs/qwen3-vl/index.js';
export type { ExportOptions, ExportResult, Manifest, ModelPackage, VisionConfig } from '../graphs/qwen3-vl/index.js';
export { EncoderRuntime } from '../graphs/qwen3-vl/runtime.js';
export { preprocess, smartResize, smartResizeVideo, resizeBicubic } from './image/index.js';
export type { PreprocessOptions, Preprocessed, VisualItem } from './image/index.js';
export { Session } from './runtime/session.js';
export { nativeAvailable } from './runtime/native.js';
export type { BackendOptions } from './runtime/backend.js';
export { inspectModel } from './onnx/inspect.js';
export { readSafetensors, writeSafetensors } from './weights/index.js';
export { VitgraphError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { HostTensor, DataType } from './tensor.js';
export { VITGRAPH_VERSION } from './version.js';
