// What an exported .onnx file records about itself: its EncoderIO (src/contract.ts), kept in
// metadata_props under `vitgraph.io`. A package records the same in its manifest (package.ts).

import { parseEncoderIO, type EncoderIO } from '../contract.js';
import { parseJsonFile } from '../fs/json.js';
import { inspectModel } from '../onnx/inspect.js';

/** The EncoderIO a .onnx file records in its metadata_props (`vitgraph.io`), or undefined for a graph vitgraph did not export. */
export async function recordedIO(path: string): Promise<EncoderIO | undefined> {
  const text = (await inspectModel(path)).metadata['vitgraph.io'];
  if (text === undefined) return undefined;
  return parseEncoderIO(parseJsonFile(text, path, 'the vitgraph.io metadata'), path);
}
