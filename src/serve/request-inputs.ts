// Request bodies → ServeInput[]: JSON (base64 images, frame lists, raw pixel rows, per-item
// min_pixels / max_pixels), multipart file parts, or one raw image body. Pure functions over
// parsed bodies; the limits that depend on the request's content are checked here.
//
// Strings are only ever base64 data: a URL (or anything that looks like one) is refused, never
// fetched, and no string is ever taken for a file path.

import { invalidArgument } from '../errors.js';
import { tooLarge } from './errors.js';
import type { GridThw, PixelBudget, ServeInput } from './types.js';

export interface InputLimits {
  /** Items (images, videos, pixel sets) per request. */
  readonly maxItems: number;
  /** Largest min_pixels / max_pixels a client may ask for an image (also the decoded-size guard). */
  readonly maxImagePixels: number;
  /** Largest min_pixels / max_pixels a client may ask for a video (frames × height × width). */
  readonly maxVideoPixels: number;
  /** Frames per video. */
  readonly maxFrames: number;
}

const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;
const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/**
 * `{ "items": [ { "image": b64 } | { "video": [b64, …], "fps"?: n } | { "pixel_values": b64 f32 LE, "grid_thw": [t, h, w] }, … ],
 *    "min_pixels"?: n, "max_pixels"?: n }`; an item's own min_pixels / max_pixels override the request's.
 */
export function inputsFromJson(body: unknown, limits: InputLimits): ServeInput[] {
  if (!isRecord(body)) throw invalidArgument('request body', 'a JSON object with "items"', Array.isArray(body) ? 'an array' : typeof body);
  const { items } = body;
  if (!Array.isArray(items) || items.length === 0) {
    throw invalidArgument('items', 'a non-empty array of { image } / { video } / { pixel_values, grid_thw }', Array.isArray(items) ? 'an empty array' : typeof items);
  }
  checkItemCount(items.length, limits);
  const shared = readBudget(body, 'request');
  return items.map((item, index) => inputFromJson(item, index, shared, limits));
}

function inputFromJson(item: unknown, index: number, shared: PixelBudget, limits: InputLimits): ServeInput {
  const at = `items[${index}]`;
  if (!isRecord(item)) throw invalidArgument(at, 'an object with "image", "video" or "pixel_values"', typeof item);
  for (const key of ['url', 'image_url', 'video_url']) {
    if (key in item) throw urlRefused(`${at}.${key}`);
  }
  const budget = { ...shared, ...readBudget(item, at) };
  if ('image' in item) {
    checkBudget(budget, limits.maxImagePixels, at);
    return { kind: 'image', bytes: base64Bytes(item.image, `${at}.image`), budget };
  }
  if ('video' in item) {
    const frames = item.video;
    if (!Array.isArray(frames) || frames.length === 0) throw invalidArgument(`${at}.video`, 'a non-empty array of base64 frames', typeof frames);
    if (frames.length > limits.maxFrames) throw tooLarge(`${at}.video frames`, limits.maxFrames, frames.length, 'Sample the clip down before sending it');
    checkBudget(budget, limits.maxVideoPixels, at);
    const fps = item.fps;
    if (fps !== undefined && (typeof fps !== 'number' || !(fps > 0) || !Number.isFinite(fps))) throw invalidArgument(`${at}.fps`, 'a positive number', String(fps));
    return { kind: 'video', frames: frames.map((f, i) => base64Bytes(f, `${at}.video[${i}]`)), budget, ...(fps !== undefined ? { fps } : {}) };
  }
  if ('pixel_values' in item) {
    const bytes = base64Bytes(item.pixel_values, `${at}.pixel_values`);
    if (bytes.byteLength % 4 !== 0) throw invalidArgument(`${at}.pixel_values`, 'little-endian float32 bytes (a multiple of 4)', `${bytes.byteLength} bytes`);
    const pixelValues = new Float32Array(bytes.byteLength / 4); // aligned copy
    new Uint8Array(pixelValues.buffer).set(bytes);
    return { kind: 'pixels', pixelValues, gridThw: readGrid(item.grid_thw, `${at}.grid_thw`) };
  }
  throw invalidArgument(at, 'one of "image", "video" or "pixel_values"', `keys ${Object.keys(item).join(', ') || 'none'}`);
}

/** Multipart files in order: a part whose field name starts with "video" is a frame of the video of that exact name; others are images. */
export function inputsFromParts(files: readonly { field: string; bytes: Uint8Array }[], fields: Readonly<Record<string, string>>, limits: InputLimits): ServeInput[] {
  if (files.length === 0) throw invalidArgument('multipart body', 'at least one file part (an image, or video frames)', 'no files');
  const budget = readBudget(numberFields(fields), 'form');
  const order: ({ kind: 'image'; bytes: Uint8Array } | { kind: 'video'; field: string; frames: Uint8Array[] })[] = [];
  const videos = new Map<string, Uint8Array[]>();
  for (const file of files) {
    if (!file.field.startsWith('video')) {
      order.push({ kind: 'image', bytes: file.bytes });
      continue;
    }
    let frames = videos.get(file.field);
    if (!frames) {
      frames = [];
      videos.set(file.field, frames);
      order.push({ kind: 'video', field: file.field, frames });
    }
    frames.push(file.bytes);
  }
  checkItemCount(order.length, limits);
  return order.map((entry, index): ServeInput => {
    if (entry.kind === 'image') {
      checkBudget(budget, limits.maxImagePixels, `items[${index}]`);
      return { kind: 'image', bytes: entry.bytes, budget };
    }
    if (entry.frames.length > limits.maxFrames) throw tooLarge(`video "${entry.field}" frames`, limits.maxFrames, entry.frames.length, 'Sample the clip down before sending it');
    checkBudget(budget, limits.maxVideoPixels, `items[${index}]`);
    const fps = fields[`${entry.field}.fps`];
    return { kind: 'video', frames: entry.frames, budget, ...(fps !== undefined ? { fps: Number(fps) } : {}) };
  });
}

/** A raw image body; min_pixels / max_pixels from the query string. */
export function inputFromRaw(bytes: Uint8Array, query: Readonly<Record<string, string | undefined>>, limits: InputLimits): ServeInput[] {
  if (bytes.byteLength === 0) throw invalidArgument('request body', 'image bytes', 'an empty body');
  const budget = readBudget(numberFields(query), 'query');
  checkBudget(budget, limits.maxImagePixels, 'query');
  return [{ kind: 'image', bytes, budget }];
}

function checkItemCount(count: number, limits: InputLimits): void {
  if (count > limits.maxItems) throw tooLarge('items per request', limits.maxItems, count, 'Split the request');
}

function checkBudget(budget: PixelBudget, limit: number, at: string): void {
  for (const key of ['minPixels', 'maxPixels'] as const) {
    const value = budget[key];
    if (value !== undefined && value > limit) throw tooLarge(`${at}.${key === 'minPixels' ? 'min_pixels' : 'max_pixels'}`, limit, value, 'Ask for a smaller resize budget');
  }
}

function readBudget(source: Readonly<Record<string, unknown>>, at: string): PixelBudget {
  const read = (key: 'min_pixels' | 'max_pixels'): number | undefined => {
    const value = source[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw invalidArgument(`${at}.${key}`, 'a positive integer', String(value));
    return value;
  };
  const [minPixels, maxPixels] = [read('min_pixels'), read('max_pixels')];
  if (minPixels !== undefined && maxPixels !== undefined && minPixels > maxPixels) {
    throw invalidArgument(`${at}.min_pixels`, `at most max_pixels (${maxPixels})`, minPixels);
  }
  return { ...(minPixels !== undefined ? { minPixels } : {}), ...(maxPixels !== undefined ? { maxPixels } : {}) };
}

/** Form fields and query values arrive as strings: min_pixels / max_pixels as numbers (NaN stays invalid). */
function numberFields(source: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ['min_pixels', 'max_pixels']) {
    const value = source[key];
    if (value !== undefined) out[key] = /^\d+$/.test(value) ? Number(value) : value;
  }
  return out;
}

function readGrid(value: unknown, at: string): GridThw {
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => Number.isSafeInteger(v) && (v as number) >= 1)) {
    throw invalidArgument(at, '[t, h, w] positive integers', JSON.stringify(value) ?? 'nothing');
  }
  return [value[0] as number, value[1] as number, value[2] as number];
}

/** Base64 (or a data: URL holding base64) → bytes; anything else is refused with the reason. */
function base64Bytes(value: unknown, at: string): Uint8Array {
  if (typeof value !== 'string') throw invalidArgument(at, 'a base64 string', typeof value);
  const dataUrl = /^data:[^,;]*;base64,/i.exec(value);
  if (!dataUrl && URL_LIKE.test(value)) throw urlRefused(at);
  const text = (dataUrl ? value.slice(dataUrl[0].length) : value).replace(/\s+/g, '');
  if (text.length === 0 || !BASE64.test(text)) throw invalidArgument(at, 'base64-encoded bytes', `${value.length} characters that are not base64`);
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}

function urlRefused(at: string): Error {
  return invalidArgument(
    at,
    'the bytes themselves (base64 or multipart)',
    'a URL',
    'URLs are never fetched: fetching them would let clients make this server request other hosts (server-side request forgery). Download the file yourself and send its bytes',
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
