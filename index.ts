// The `vitgraph` package entry: the model-agnostic API of src/ joined with the registry of
// graphs/. Functions that turn a checkpoint into graphs take the registry from here; each tower is
// also importable on its own (`vitgraph/qwen3-vl`, `vitgraph/qwen2-vl`, …).

import { MODELS } from './graphs/index.js';
import * as core from './src/index.js';
import { batchEncoder } from './src/serve/adapter.js';
import type { BatchEncoder } from './src/serve/types.js';

export * from './src/index.js';
export { MODELS } from './graphs/index.js';
/** The processors the Qwen VL families ship (each family's lives in its graphs/ folder). */
export { QWEN3_VL_PROCESSOR } from './graphs/qwen3-vl/processor.js';
export { QWEN2_VL_PROCESSOR } from './graphs/shared/qwen2.js';

/** VisionEncoder that can export any registered tower's checkpoint on first use. */
export class VisionEncoder extends core.VisionEncoder {
  static override load(model?: string, options: core.VisionEncoderOptions = {}): Promise<core.VisionEncoder> {
    return core.VisionEncoder.load(model, { models: MODELS, ...options });
  }
}

/** Exports a checkpoint of any registered tower (detected from its config.json). */
export const exportModel = (options: core.ExportOptions): Promise<core.ExportResult> => core.exportModel(MODELS, options);

/** Writes a random-weight checkpoint of a registered preset (`synthPresets()` lists them). */
export const synthCheckpoint = (outDir: string, preset: string, options?: core.SynthOptions): ReturnType<typeof core.synthCheckpoint> => core.synthCheckpoint(MODELS, outDir, preset, options);

export const synthPresets = (): ReturnType<typeof core.synthPresets> => core.synthPresets(MODELS);

/** Loads `model` (any registered tower; omitted: the embedded tiny tower) for the batching server. */
export async function loadBatchEncoder(model?: string, options: core.VisionEncoderOptions = {}): Promise<BatchEncoder> {
  return batchEncoder(await VisionEncoder.load(model, options), options);
}

/** Preprocesses images for a model (default: the embedded tiny tower) into a pixel_values + grid_thw safetensors file. */
export const preprocessToFile = (inputs: readonly core.VisualItem[], options: core.PreprocessToFileOptions): Promise<core.PreprocessFileSummary> => core.preprocessToFile(MODELS, inputs, options);

/** Encodes images with any registered tower (default: the embedded tiny one) into a safetensors file of every output + grid_thw. */
export const encodeToFile = (model: string | undefined, inputs: readonly core.EncodeInput[], options: core.EncodeToFileOptions): Promise<core.EncodeFileSummary> =>
  core.encodeToFile(model, inputs, { models: MODELS, ...options });

/** How images are preprocessed for a checkpoint directory, a package or an exported .onnx. */
export const modelProcessor = (model: string): Promise<core.ProcessorParams> => core.modelProcessor(MODELS, model);

/** Exports (or reuses) the cached package of a checkpoint. */
export const cachedExport = (checkpointDir: string, options?: Parameters<typeof core.cachedExport>[2]): Promise<string> => core.cachedExport(MODELS, checkpointDir, options);
