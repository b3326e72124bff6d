// A checkpoint's `preprocessor_config.json` read from disk (Node only), turned into processor
// parameters by processorFromConfig (processor.ts, which the browser build shares).

import { join } from 'node:path';
import { VitgraphError, invalidFile } from '../errors.js';
import { openRegularFile } from '../fs/confined.js';
import { parseJsonFile } from '../fs/json.js';
import { processorFromConfig, type ProcessorParams } from './processor.js';

/** Largest preprocessor_config.json read; real ones are under 1 KiB. */
export const MAX_PROCESSOR_CONFIG_BYTES = 1 << 20;

/**
 * The parsed `<dir>/preprocessor_config.json`, or undefined when the directory has none. Symlinks are
 * followed (hub caches link to blobs) but the target must be a regular file of at most
 * `MAX_PROCESSOR_CONFIG_BYTES`; an unreadable or non-JSON file throws `invalid_file`.
 */
export async function readProcessorConfig(dir: string): Promise<unknown> {
  const path = join(dir, 'preprocessor_config.json');
  let file;
  try {
    file = await openRegularFile(path, 'preprocessor_config.json'); // a FIFO is refused, not waited on
  } catch (error) {
    if (error instanceof VitgraphError && error.code === 'not_found') return undefined;
    throw error;
  }
  try {
    const info = await file.stat();
    if (info.size > MAX_PROCESSOR_CONFIG_BYTES) {
      throw invalidFile(path, `expected at most ${MAX_PROCESSOR_CONFIG_BYTES} bytes, got ${info.size}`, 'A preprocessor config is a small JSON object');
    }
    return parseJsonFile(await file.readFile('utf8'), path, 'preprocessor_config.json');
  } finally {
    await file.close();
  }
}

/** `defaults` overridden by `<dir>/preprocessor_config.json` when the directory has one. */
export async function loadProcessor(dir: string, defaults: ProcessorParams): Promise<ProcessorParams> {
  const json = await readProcessorConfig(dir);
  return json === undefined ? defaults : processorFromConfig(json, defaults);
}
