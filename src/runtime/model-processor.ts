// How images are preprocessed for a given model, whatever form it takes: a checkpoint directory
// (its family's defaults overridden by its preprocessor_config.json), an exported package, or a
// .onnx file (both record the processor they were exported with).

import { stat } from 'node:fs/promises';
import { invalidArgument } from '../errors.js';
import { requirePath } from '../fs/confined.js';
import { loadProcessor } from '../image/processor-file.js';
import { QWEN3_VL_PROCESSOR, type ProcessorParams } from '../image/processor.js';
import type { ModelRegistry } from '../model.js';
import { openModelDirectory } from './checkpoint.js';
import { recordedIO } from './recorded-io.js';
import { MANIFEST, openPackage } from './package.js';

export async function modelProcessor(models: ModelRegistry, model: string): Promise<ProcessorParams> {
  requirePath(model, 'model');
  const info = await stat(model).catch(() => undefined);
  if (info?.isDirectory()) {
    if (await stat(`${model}/${MANIFEST}`).catch(() => undefined)) return (await openPackage(model, { verify: false })).io.processor ?? QWEN3_VL_PROCESSOR;
    const source = await openModelDirectory(models, model);
    return loadProcessor(source.dir, source.model.processorDefaults(source.config));
  }
  const recorded = await recordedIO(model);
  if (!recorded) throw invalidArgument('model', 'a checkpoint directory, a package, or a .onnx exported by vitgraph (it records its processor)', model);
  return recorded.processor ?? QWEN3_VL_PROCESSOR;
}
