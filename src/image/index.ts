// Image and video preprocessing for the Qwen3-VL vision encoder (spec §4): decode with sharp,
// smart_resize, Pillow-exact bicubic resize, normalize, patchify.

export { decodeFrames, decodeImage, decodePixels, readImageHeader, DEFAULT_MAX_INPUT_PIXELS } from './decode.js';
export type { DecodeOptions, DecodedFrames, ImageHeader, ImageSource, Pixels } from './decode.js';
export { preprocess } from './preprocess.js';
export type { PreprocessOptions, Preprocessed, PreprocessedItem, VideoFrames, VisualItem } from './preprocess.js';
export { NORMALIZED_LEVELS, PATCH_DIM, patchify } from './patchify.js';
export { bicubicAxisFilter, resizeBicubic } from './resample.js';
export type { AxisFilter } from './resample.js';
export { roundHalfEven, smartResize, smartResizeVideo } from './smart-resize.js';
export type { Size, SmartResizeOptions } from './smart-resize.js';
export { sampleFrameIndices } from './video.js';
