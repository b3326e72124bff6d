// vitgraph's serving layer: cross-request batching as a library (`createBatcher`), the HTTP
// service on top of it (`EncoderServer`), and the process runner behind `vitgraph serve`.
// Model-agnostic: a model enters only as a `BatchEncoder` (adapter.ts maps vitgraph's own).

export { Batcher, createBatcher } from './batcher.js';
export type { BatchResult, BatchStats, BatcherOptions, SubmitOptions } from './batcher.js';
export { EncoderServer, DEFAULT_LIMITS } from './server.js';
export type { EncoderServerOptions, ServeLimits } from './server.js';
export { serveProcess } from './process.js';
export type { ServeProcessOptions } from './process.js';
export { batchEncoder } from './adapter.js';
export { ServeError } from './errors.js';
export type { ErrorBody, ServeErrorCode } from './errors.js';
export type { EncodeResponse, JsonTensor, Timings } from './outputs.js';
export type { BatchEncoder, EncodedItem, EncoderInfo, GridThw, OutputSpec, PixelBudget, PrepareLimits, PreparedItem, ServeInput } from './types.js';
