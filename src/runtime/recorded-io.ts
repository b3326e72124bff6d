// The EncoderIO an exported .onnx file records about itself, read from disk (Node only; io.ts, the
// contract itself, is shared with the browser build).

import { inspectModel } from '../onnx/inspect.js';
import { parseEncoderIO, type EncoderIO } from './io.js';

/** The EncoderIO a .onnx file records in its metadata_props (`vitgraph.io`), or undefined for a graph vitgraph did not export. */
export async function recordedIO(path: string): Promise<EncoderIO | undefined> {
  const text = (await inspectModel(path)).metadata['vitgraph.io'];
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined; // parseEncoderIO refuses it, naming the file
  }
  return parseEncoderIO(json, path);
}
