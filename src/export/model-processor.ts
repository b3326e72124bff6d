// How images are preprocessed for a given model, whatever form it takes: a checkpoint directory
// (its family's defaults overridden by its preprocessor_config.json), an exported package, or a
// .onnx file (both record the processor they were exported with; one exported before they did gets
// the registered family whose processor makes pixel rows as wide as the graph's).

import { stat } from 'node:fs/promises';
import { invalidArgument } from '../errors.js';
import { requirePath } from '../fs/confined.js';
import { loadProcessor } from '../image/processor-file.js';
import type { ProcessorParams } from '../image/processor.js';
import type { EncoderIO } from '../contract.js';
import type { ModelRegistry } from '../model.js';
import { openModelDirectory } from './model-directory.js';
import { recordedIO } from '../runtime/recorded-io.js';
import { MANIFEST, openPackage } from '../runtime/package.js';

export async function modelProcessor(models: ModelRegistry, model: string): Promise<ProcessorParams> {
  requirePath(model, 'model');
  const info = await stat(model).catch(() => undefined);
  if (info?.isDirectory()) {
    if (await stat(`${model}/${MANIFEST}`).catch(() => undefined)) return recordedProcessor(models, (await openPackage(model, { verify: false })).io, model);
    const source = await openModelDirectory(models, model);
    return loadProcessor(source.dir, source.model.processorDefaults(source.config));
  }
  const recorded = await recordedIO(model);
  if (!recorded) throw invalidArgument('model', 'a checkpoint directory, a package, or a .onnx exported by vitgraph (it records its processor)', model);
  return recordedProcessor(models, recorded, model);
}

function recordedProcessor(models: ModelRegistry, io: EncoderIO, model: string): ProcessorParams {
  const processor = io.processor ?? models.processorFor(io.patchDim);
  if (!processor) throw invalidArgument('model processor', `a recorded processor, or pixel rows of ${models.rowWidths()} columns`, `${io.patchDim} columns`, model);
  return processor;
}
