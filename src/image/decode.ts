// Encoded image → uint8 pixels, the way the upstream PIL path sees them: EXIF orientation applied,
// 8 bits per channel, alpha composited onto white, no colour management (transformers
// `image_utils.load_image` + `ImageOps.exif_transpose`, then `image_transforms.convert_to_rgb`).
// sharp (libvips) decodes; the compositing is done here, in Pillow's integer arithmetic.

import { stat } from 'node:fs/promises';
import type { Metadata, OutputInfo, Sharp, SharpOptions } from 'sharp';
import { VitgraphError, invalidArgument, notFound, unsupported } from '../errors.js';
import { readRegularFile, readRegularHead } from '../fs/confined.js';
import { fileSystemError } from '../fs/system-errors.js';
import { flattenOnWhite, toRgb, type Pixels } from './pixels.js';

export { flattenOnWhite, toRgb, type Pixels } from './pixels.js';

/** A file path, encoded bytes (a Buffer is a Uint8Array), or a sharp pipeline to read pixels from. */
export type ImageSource = string | Uint8Array | Sharp;

export interface DecodeOptions {
  /**
   * Refuse inputs with more pixels than this (all frames together), before decoding: the guard
   * against decompression bombs. Default 268 402 689 (0x3FFF², sharp's own default). `Infinity`
   * lifts the limit.
   */
  maxInputPixels?: number;
  /** Names the input in error messages when it is not a path (default "image bytes" / "sharp input"). */
  label?: string;
  /**
   * Render SVG (refused by default: SVG can reference files and URLs). When true, a path's bytes
   * are read by vitgraph and handed to librsvg as a buffer, which has no base URL and so loads
   * no external resource; and any reference that is not in-document (`#id`) or a `data:` URL is
   * refused before rendering. SVG given as a sharp instance is refused either way.
   */
  allowSvg?: boolean;
}

/** An image's frames (one for a still image) and, when the file records them, each frame's duration. */
export interface DecodedFrames {
  frames: Pixels[];
  /** Milliseconds each frame is shown (GIF / WebP animation delays), if known. */
  delaysMs?: number[];
}

/** What can be learned from the header alone, without decoding pixels. */
export interface ImageHeader {
  /** Size of one frame after EXIF orientation. */
  width: number;
  height: number;
  /** Frames in the file: > 1 only for animated GIF / WebP. */
  frames: number;
  delaysMs?: number[];
}

export const DEFAULT_MAX_INPUT_PIXELS = 0x3fff * 0x3fff;

const FORMATS = 'PNG, JPEG, WebP, GIF, TIFF or AVIF';
/**
 * What sharp's metadata().format may report for an input that is decoded (AVIF reports 'heif').
 * Everything else sharp reads (svg unless allowed, vips, raw, ...) is refused: only self-contained
 * raster formats, none of which can point at another resource.
 */
const DECODED_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

/**
 * Decodes the first frame of `source` to RGB, `[height, width, 3]` uint8: EXIF-rotated, gray
 * replicated, 16-bit reduced to 8-bit, alpha composited on white (Pillow's rounding).
 */
export async function decodeImage(source: ImageSource, opts: DecodeOptions = {}): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, width, height } = toRgb(await decodePixels(source, opts));
  return { data, width, height };
}

/** Like `decodeImage`, but keeps a gray image as one channel (a third of the memory). */
export async function decodePixels(source: ImageSource, opts: DecodeOptions = {}): Promise<Pixels> {
  const { frames } = await decodeOpened(await openImage(source, opts, false));
  return frames[0]!;
}

/** Decodes every frame of an animated GIF / WebP (one frame for anything else). */
export async function decodeFrames(source: ImageSource, opts: DecodeOptions = {}): Promise<DecodedFrames> {
  return decodeOpened(await openImage(source, opts, true));
}

/**
 * Reads the header of `source` (size after EXIF orientation; frame count when `allFrames`) and
 * applies the pixel guard, without decoding pixels.
 */
export async function readImageHeader(source: ImageSource, opts: DecodeOptions = {}, allFrames = true): Promise<ImageHeader> {
  return (await openImage(source, opts, allFrames)).header;
}

interface OpenedImage {
  source: ImageSource;
  label: string;
  header: ImageHeader;
  metadata: Metadata;
  /** Frames stacked vertically in what `pipeline` decodes to (≥ `header.frames`). */
  decodedFrames: number;
  /** A fresh pipeline on the same input, reading all pages when the animated frames are wanted. */
  pipeline: () => Sharp;
}

type SharpFactory = typeof import('sharp')['default'];
let sharpModule: Promise<SharpFactory> | undefined;

/** sharp, imported on first decode: code paths that never decode (the CUDA check) run without it. */
function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then((m) => m.default);
  return sharpModule;
}

async function openImage(source: ImageSource, opts: DecodeOptions, allPages: boolean): Promise<OpenedImage> {
  const limit = opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  if (!(limit > 0) || (limit !== Infinity && !Number.isInteger(limit))) {
    throw invalidArgument('maxInputPixels', 'a positive integer or Infinity', limit);
  }
  const label = await checkInput(source, opts.label);
  // SVG is caught from its first bytes, before librsvg parses anything; when allowed, sharp gets
  // the bytes (no path, so no base URL to resolve references against).
  const svgBytes = await svgSource(source, label, opts.allowSvg === true);
  const options: SharpOptions = {
    failOn: 'error', // truncated or corrupt pixel data is an error, not a gray band
    limitInputPixels: limit === Infinity ? false : limit,
    ignoreIcc: true, // Pillow does not colour-manage, and neither does the upstream processor
  };
  const encoded = svgBytes ?? (typeof source === 'string' || source instanceof Uint8Array ? source : undefined);
  const sharp = await loadSharp();
  const pipelineFor = (extra: SharpOptions): (() => Sharp) => (encoded !== undefined ? () => sharp(encoded, { ...options, ...extra }) : () => (source as Sharp).clone());

  let metadata: Metadata;
  try {
    // Reading the header is safe whatever it claims; the limit is checked below, with a clear message.
    metadata = await pipelineFor({ limitInputPixels: false })().metadata();
  } catch (cause) {
    throw await decodeError(source, label, cause, limit);
  }
  checkFormat(label, metadata.format, svgBytes !== undefined);
  // A sharp instance made with `pages: -1` already stacks its frames: height = pages × pageHeight.
  const frameHeight = metadata.pageHeight ?? metadata.height;
  const stacked = Math.max(1, Math.round(metadata.height / frameHeight));
  const animatedFile = (metadata.pages ?? 1) > 1 && (metadata.format === 'gif' || metadata.format === 'webp');
  const readAllPages = allPages && encoded !== undefined && animatedFile;
  const decodedFrames = readAllPages ? metadata.pages! : stacked;
  const frames = allPages ? decodedFrames : 1;

  const pixels = metadata.width * frameHeight * frames;
  if (pixels > limit) throw pixelLimitError(label, metadata.width, frameHeight, frames, limit);
  const sideways = (metadata.orientation ?? 1) >= 5; // EXIF orientations 5–8 swap width and height
  const header: ImageHeader = {
    width: sideways ? frameHeight : metadata.width,
    height: sideways ? metadata.width : frameHeight,
    frames,
    ...(frames > 1 && metadata.delay ? { delaysMs: metadata.delay.slice(0, frames) } : {}),
  };
  const pipeline = pipelineFor(readAllPages ? { pages: -1 } : {});
  return { source, label, header, metadata, decodedFrames, pipeline };
}

async function decodeOpened(input: OpenedImage): Promise<DecodedFrames> {
  const { label, header, metadata, decodedFrames } = input;
  let pipeline = input.pipeline();
  if ((metadata.orientation ?? 1) > 1) pipeline = pipeline.autoOrient();
  // sharp outputs sRGB by default (gray replicated, exactly); an opaque gray image is kept as one
  // channel to save memory (toColourspace('b-w') would drop an alpha band). CMYK has no meaning
  // without conversion; everything else keeps its stored values.
  const gray = metadata.space === 'b-w' || metadata.space === 'grey16';
  if (gray && !metadata.hasAlpha) pipeline = pipeline.toColourspace('b-w');
  if (metadata.space === 'cmyk') pipeline = pipeline.toColourspace('srgb');
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw await decodeError(input.source, label, cause, Infinity, metadata.format);
  }
  const { data, info } = decoded;
  const pixels = flattenOnWhite(new Uint8Array(data.buffer, data.byteOffset, data.length), info.channels);
  const channels: 1 | 3 = info.channels <= 2 ? 1 : 3;
  // [decodedFrames · height, width, channels] → frames × [height, width, channels], sharing the buffer.
  const height = info.height / decodedFrames;
  const frameBytes = height * info.width * channels;
  const frames: Pixels[] = [];
  for (let f = 0; f < header.frames; f++) {
    const data = decodedFrames === 1 ? pixels : pixels.subarray(f * frameBytes, (f + 1) * frameBytes);
    frames.push({ data, width: info.width, height, channels });
  }
  return header.delaysMs ? { frames, delaysMs: header.delaysMs } : { frames };
}

/** Checks what can be checked before sharp sees the input; returns its name for messages. */
async function checkInput(source: ImageSource, label: string | undefined): Promise<string> {
  if (typeof source === 'string') {
    let size: number;
    try {
      const info = await stat(source);
      if (!info.isFile()) throw fileProblem(source, 'expected an image file, got a directory or special file', 'Pass the path of an image file');
      size = info.size;
    } catch (cause) {
      if (cause instanceof VitgraphError) throw cause;
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw fileSystemError(cause, source, 'read'); // ELOOP, EACCES
      throw notFound('image', source, 'Check the path');
    }
    if (size === 0) throw emptyInput(source);
    return source;
  }
  if (source instanceof Uint8Array) {
    const name = label ?? 'image bytes';
    if (source.length === 0) throw emptyInput(name);
    return name;
  }
  if (source === null || typeof source !== 'object' || typeof (source as { clone?: unknown }).clone !== 'function') {
    throw invalidArgument('image source', 'a file path, a Uint8Array/Buffer of encoded bytes or a sharp instance', typeof source);
  }
  return label ?? 'sharp input';
}

/** Refuses a format outside the allow-list; SVG only passes when it came through `svgSource`. */
function checkFormat(label: string, format: string | undefined, checkedSvg: boolean): void {
  if (format !== undefined && DECODED_FORMATS.has(format)) return;
  if (format === 'svg' && checkedSvg) return;
  if (format === 'svg') throw svgRefused(label);
  throw unsupported(`${label}: ${format ?? 'this'} images are not decoded: expected ${FORMATS}`, 'Convert the image to one of those formats');
}

const svgRefused = (label: string): VitgraphError =>
  unsupported(
    `${label}: SVG is not decoded by default (it can reference files and URLs): expected ${FORMATS}`,
    // A remedy, not a sentence: the CLI has no flag for allowSvg, so it shows CLI users only the conversion.
    {
      fixes: [{ option: 'allowSvg', action: 'pass' }],
      then: 'to render self-contained SVG (paths or bytes, not sharp instances) with no file-system or network access',
      otherwise: 'convert the image to PNG first',
    },
  );

/**
 * For an input whose first bytes are SVG markup (or gzip, as SVGZ is): refuses it unless `allow`,
 * else returns its bytes after checking they reference nothing outside the document.
 * Returns undefined for anything else (raster formats go to sharp as they came).
 */
async function svgSource(source: ImageSource, label: string, allow: boolean): Promise<Uint8Array | undefined> {
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) return undefined;
  // libvips looks for "<svg" in the first 1000 bytes; reading more cannot miss one it would see.
  const head = typeof source === 'string' ? await readRegularHead(source, SVG_SNIFF_BYTES, 'image') : source.subarray(0, SVG_SNIFF_BYTES);
  if (!looksLikeSvg(head)) return undefined;
  if (!allow) throw svgRefused(label);
  const bytes = typeof source === 'string' ? await readRegularFile(source, 'image') : source;
  checkSelfContainedSvg(label, bytes);
  return bytes;
}

const SVG_SNIFF_BYTES = 4096;

/** Gzip (SVGZ), or markup (after an optional BOM and whitespace) with an `<svg` tag near the start. */
function looksLikeSvg(head: Uint8Array): boolean {
  if (head[0] === 0x1f && head[1] === 0x8b) return true;
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x09 || head[i] === 0x0a || head[i] === 0x0d)) i++;
  return head[i] === 0x3c /* < */ && /<svg/i.test(new TextDecoder('latin1').decode(head));
}

/**
 * Refuses SVG text that could reach outside itself: external entities and DTDs, XInclude,
 * stylesheet processing instructions, CSS @import, and any href / src / url() whose value is
 * not an in-document `#id` or a `data:` URL. librsvg, given bytes, has no base URL and would not
 * load them anyway; this makes the refusal explicit and independent of librsvg's policy.
 */
function checkSelfContainedSvg(label: string, bytes: Uint8Array): void {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw unsupported(`${label}: SVG: expected uncompressed UTF-8 text, got compressed or other-encoded data`, 'Save the SVG as plain UTF-8 (.svg, not .svgz)');
  }
  const refuse = (what: string): never => {
    throw unsupported(`${label}: SVG: expected a self-contained document, got ${what}`, 'Inline the resource as a data: URL or rasterise the SVG yourself');
  };
  if (text.includes('\0')) refuse('a NUL byte');
  if (/<!ENTITY/i.test(text)) refuse('an entity declaration');
  if (/<!DOCTYPE[^>]*(SYSTEM|PUBLIC)/i.test(text)) refuse('an external DTD');
  if (/xinclude/i.test(text)) refuse('an XInclude');
  if (/<\?xml-stylesheet/i.test(text)) refuse('an external stylesheet');
  if (/@import/i.test(text)) refuse('a CSS @import');
  const external = (value: string): boolean => !/^\s*(#|data:)/i.test(value);
  for (const [, , double, single] of text.matchAll(/(?:^|[\s"'])([\w.-]+:)?(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) {
    const value = double ?? single ?? '';
    if (external(value)) refuse(`a reference to ${JSON.stringify(value.slice(0, 80))}`);
  }
  for (const [, value] of text.matchAll(/url\(\s*["']?([^)"']*)/gi)) {
    if (external(value ?? '')) refuse(`a url(${JSON.stringify((value ?? '').slice(0, 80))})`);
  }
}

function emptyInput(label: string): VitgraphError {
  return fileProblem(label, `expected an encoded image (${FORMATS}), got 0 bytes`, 'The file is empty; check that it was written completely');
}

function pixelLimitError(label: string, width: number, height: number, frames: number, limit: number): VitgraphError {
  const size = frames > 1 ? `${frames} frames of ${width}×${height}` : `${width}×${height}`;
  const pixels = width * height * frames;
  return new VitgraphError(
    'invalid_argument',
    `${label}: input size: expected at most ${limit} pixels (option maxInputPixels), got ${size} = ${pixels} pixels. ` + 'If the image is trusted, raise maxInputPixels (Infinity lifts the limit)',
    { path: label, width, height, frames, pixels, maxInputPixels: limit },
  );
}

/** Turns a sharp failure into the error vocabulary: unknown format, corrupt or truncated data. */
async function decodeError(source: ImageSource, label: string, cause: unknown, limit: number, format?: string): Promise<VitgraphError> {
  const message = cause instanceof Error ? cause.message : String(cause);
  if (/unsupported image format/i.test(message)) {
    const kind = await leadingKind(source);
    const got = kind ? `${kind} in no supported format` : 'data in an unrecognised format';
    return fileProblem(label, `not a decodable image: expected ${FORMATS}, got ${got}`, 'Check the file type', cause);
  }
  if (/buffer is empty/i.test(message)) return emptyInput(label);
  if (/exceeds pixel limit/i.test(message)) {
    return new VitgraphError(
      'invalid_argument',
      `${label}: input size: expected at most ${limit} pixels (option maxInputPixels), got more. Raise maxInputPixels if the image is trusted`,
      { path: label, maxInputPixels: limit },
      { cause },
    );
  }
  const detail = message.split('\n')[0]!.trim();
  const what = format ? `a complete ${format.toUpperCase()} image` : 'a complete image';
  return fileProblem(label, `corrupt or truncated image data: expected ${what}, got decoder error "${detail}"`, 'Re-encode or re-download the file', cause);
}

function fileProblem(label: string, problem: string, hint: string, cause?: unknown): VitgraphError {
  return new VitgraphError('invalid_file', `${label}: ${problem}. ${hint}`, { path: label }, { cause });
}

/**
 * What the first bytes of a path or buffer look like ('text' or 'binary data'), for "not an
 * image" messages: never the bytes themselves (a path linked to /etc/passwd must not print it).
 */
async function leadingKind(source: ImageSource): Promise<string | undefined> {
  let head: Uint8Array;
  if (typeof source === 'string') {
    const read = await readRegularHead(source, 8, 'image').catch(() => undefined);
    if (!read) return undefined;
    head = read;
  } else if (source instanceof Uint8Array) {
    head = source.subarray(0, 8);
  } else {
    return undefined;
  }
  return head.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d) ? 'text' : 'binary data';
}
