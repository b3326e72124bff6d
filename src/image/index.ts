// Image and video preprocessing for the Qwen VL vision encoders (spec §4), parameterised by a
// processor config: decode with sharp, smart_resize, Pillow-exact bicubic resize, normalize, patchify.

export { decodeFrames, decodeImage, decodePixels, readImageHeader, DEFAULT_MAX_INPUT_PIXELS } from './decode.js';
export type { DecodeOptions, DecodedFrames, ImageHeader, ImageSource, Pixels } from './decode.js';
export { preprocess } from './preprocess.js';
export type { PreprocessOptions, Preprocessed, PreprocessedItem, VideoFrames, VisualItem } from './preprocess.js';
export { checkProcessor, patchDim, processorFromConfig, sizeFactor } from './processor.js';
export { loadProcessor, MAX_PROCESSOR_CONFIG_BYTES, readProcessorConfig } from './processor-file.js';
export type { Normalization, ProcessorParams, Rgb, VideoPixelBudget } from './processor.js';
export { normalizedLevels, patchify } from './patchify.js';
export type { LevelTables } from './patchify.js';
export { bicubicAxisFilter, resizeBicubic } from './resample.js';
export type { AxisFilter } from './resample.js';
export { roundHalfEven, smartResize, smartResizeVideo } from './smart-resize.js';
export type { Size, SmartResizeOptions, SmartResizeVideoOptions } from './smart-resize.js';
export { sampleFrameIndices } from './video.js';
