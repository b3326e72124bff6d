// vitgraph/web: the browser entry. Exported packages run on onnxruntime-web (WebGPU, else WASM) with
// the Node path's Pillow-exact preprocessing; no Node built-ins and no sharp.

export { WebEncoder } from './encoder.js';
export type { EncodedImage, EncodeOptions, EncodeResult, LoadOptions, StageTimes } from './encoder.js';
export { decodeRgb } from './decode.js';
export type { WebImageSource } from './decode.js';
export { MAX_FILE_BYTES, readPackage } from './package.js';
export type { LoadProgress, PackageSource, ReadOptions, WebPackage } from './package.js';
export { patchImages, preprocessPixels, resizeImages } from './preprocess.js';
export type { PixelBudget, PreprocessedImage, PreprocessedImages } from './preprocess.js';
export { openSession } from './session.js';
export type { BackendInfo, BackendPreference, SessionOptions } from './session.js';
export { VitgraphError } from '../errors.js';
export type { Pixels } from '../image/pixels.js';
export type { ProcessorParams } from '../image/processor.js';
export type { HostTensor } from '../tensor.js';
