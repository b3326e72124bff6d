// The contract between the serving layer (batcher, HTTP server) and a model. Everything in
// src/serve talks to a model only through `BatchEncoder`; adapter.ts is the one file that maps a
// concrete encoder onto it, so the scheduler and server never learn a model's name or layout.

import type { HostTensor } from '../tensor.js';

/** [t, h, w]: temporal groups, patch rows, patch columns of one item. */
export type GridThw = readonly [t: number, h: number, w: number];

/** A resize budget in pixels (images: one frame; videos: frames × height × width). */
export interface PixelBudget {
  readonly minPixels?: number;
  readonly maxPixels?: number;
}

/**
 * One visual input as it arrives over the wire: encoded image bytes, a video's encoded frames, or
 * already-patched pixel rows. Never a path or a URL: the server reads nothing it was not sent.
 */
export type ServeInput =
  | { readonly kind: 'image'; readonly bytes: Uint8Array; readonly budget?: PixelBudget }
  | { readonly kind: 'video'; readonly frames: readonly Uint8Array[]; readonly fps?: number; readonly budget?: PixelBudget }
  | { readonly kind: 'pixels'; readonly pixelValues: Float32Array; readonly gridThw: GridThw };

export type ItemKind = ServeInput['kind'];

/** An item ready to be batched: its own pixel rows, laid out as the encoder's input wants them. */
export interface PreparedItem {
  readonly kind: ItemKind;
  readonly gridThw: GridThw;
  /** Patches (pixel rows) this item contributes to a batch: t·h·w. */
  readonly patches: number;
  /** [patches, patchDim] row-major. */
  readonly pixels: Float32Array;
}

import type { OutputSpec } from '../model.js';

export type { OutputSpec };

/** One item's result: every named output holds only this item's tokens. */
export interface EncodedItem {
  readonly kind: ItemKind;
  readonly gridThw: GridThw;
  readonly tokens: number;
  readonly outputs: Readonly<Record<string, HostTensor<'float32'>>>;
}

/** What the server logs at startup and reports; plain words, one line each. */
export interface EncoderInfo {
  readonly model: string;
  /** e.g. "dynamic" or "buckets 256, 1024, 4096". */
  readonly graphs: string;
  /** e.g. "ort-node on cpu". */
  readonly backend: string;
  /** e.g. "2 intra-op" or "default (all cores)". */
  readonly threads: string;
  readonly outputs: readonly OutputSpec[];
  /** The patch count one graph run holds at most (the largest bucket); absent for a dynamic graph. */
  readonly largestRun?: number;
  /** true when runs go through fixed-shape buckets (where batching pays: launch-bound runs). */
  readonly buckets: boolean;
}

export interface PrepareLimits {
  /** Most pixels a decoded image or video frame may have (decompression-bomb guard). */
  readonly maxInputPixels: number;
}

/** A model as the serving layer sees it. */
export interface BatchEncoder {
  readonly info: EncoderInfo;
  /** Decodes and preprocesses one request's inputs, in order; throws a VitgraphError on bad input. */
  prepare(inputs: readonly ServeInput[], limits: PrepareLimits): Promise<PreparedItem[]>;
  /** Encodes `items` in one runtime call; one result per item, in order. */
  encodeBatch(items: readonly PreparedItem[]): Promise<EncodedItem[]>;
  /** Runs the model once on a small synthetic input, so the first request is not the slow one. */
  warmup(): Promise<void>;
  close(): Promise<void>;
}
