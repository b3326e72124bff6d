// vitgraph's model-agnostic API: the graph builder, weights, image preprocessing, runtime,
// packages, cache and VisionEncoder. It names no model: towers reach it as descriptors (src/model.ts),
// and the package entry (index.ts at the root) joins it with the registry of graphs/.

export { VisionEncoder, EMBEDDED_MODEL } from './encoder.js';
export type { EncodeInput, EncodeResult, EncodedItem, RawPixels, VisionEncoderOptions } from './encoder.js';
export { encodeToFile, preprocessToFile } from './encoder-to-file.js';
export type { EncodeFileSummary, EncodeToFileOptions, PixelBudget, PreprocessFileSummary, PreprocessToFileOptions } from './encoder-to-file.js';
export { ModelRegistry } from './model.js';
export type { Bucket, FloatDType, GraphOptions, ModelDescriptor, OutputSpec, TowerConfig } from './model.js';
export { exportModel, DEFAULT_BUCKETS, DEFAULT_OPSET } from './export/export.js';
export type { ExportOptions, ExportResult } from './export/export.js';
export { inspectPackage, inspectPath, openPackage, MANIFEST } from './runtime/package.js';
export type { Manifest, ModelPackage, OpenPackageOptions, PackageSummary } from './runtime/package.js';
export { cachedExport, cacheRoot, clearCache, listCache } from './export/cache.js';
export type { CacheEntry, CacheOptions } from './export/cache.js';
export { synthCheckpoint, synthPresets } from './export/synth.js';
export type { SynthOptions } from './export/synth.js';
export { EncoderRuntime } from './runtime/encoder-runtime.js';
export type { EncoderOutputs, EncoderRuntimeOptions } from './runtime/encoder-runtime.js';
export { benchModelFile, benchSubject, runModelFile } from './runtime/encoder-files.js';
export { profileMarkdown, readProfiles, summarizeProfile, type ProfileSummary } from './runtime/profile.js';
export type { BenchSubject, EncoderFileOptions } from './runtime/encoder-files.js';
export type { BenchResult } from './runtime/files.js';
export { INPUTS, PRECISIONS, TOKEN_COUNT } from './contract.js';
export { modelProcessor } from './export/model-processor.js';
export type { EncoderIO, ExportDType, Precision } from './contract.js';
export { preprocess, smartResize, smartResizeVideo, resizeBicubic, processorFromConfig, loadProcessor, readProcessorConfig } from './image/index.js';
export type { ProcessorParams } from './image/index.js';
export type { PreprocessOptions, Preprocessed, VisualItem } from './image/index.js';
export { Session } from './runtime/session.js';
export { nativeAvailable } from './runtime/native/index.js';
export { resolveBackend, useBuckets } from './runtime/backend.js';
export type { Backend, BackendOptions, Device } from './runtime/backend.js';
export { inspectModel } from './onnx/inspect.js';
export type { ModelSummary } from './onnx/inspect.js';
export { GraphBuilder, op } from './onnx/index.js';
export { readSafetensors, writeSafetensors } from './weights/index.js';
export { VitgraphError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { HostTensor, DataType } from './tensor.js';
export { VITGRAPH_VERSION } from './version.js';
