// File-to-file preprocessing and encoding, for `vitgraph preprocess` / `vitgraph encode` and scripts:
// images and frame lists in, pixel_values + grid_thw (or every graph output + grid_thw) out as
// safetensors. The model (a checkpoint, a package, a .onnx; default the embedded tiny tower) decides
// the processor, through the registry the package entry passes in.

import { VisionEncoder, EMBEDDED_MODEL, type EncodeInput, type EncodeResult, type VisionEncoderOptions } from './encoder.js';
import { invalidArgument } from './errors.js';
import { modelProcessor } from './export/model-processor.js';
import { checkSafetensorsOutput } from './fs/vitgraph-files.js';
import { preprocess, type PreprocessedItem, type VisualItem } from './image/index.js';
import type { ModelRegistry } from './model.js';
import { useBuckets } from './runtime/backend.js';
import { concatTokens } from './runtime/buckets.js';
import { hostTensor } from './tensor.js';
import { writeSafetensors } from './weights/index.js';

/** An image budget for one call: overrides the processor's. */
export interface PixelBudget {
  minPixels?: number | undefined;
  maxPixels?: number | undefined;
}

export interface PreprocessToFileOptions extends PixelBudget {
  /** Whose processor: a checkpoint directory, a package or a .onnx (default: the embedded tiny tower, Qwen3-VL's). */
  model?: string | undefined;
  /** The safetensors file written: pixel_values [N, patch_dim] float32 and grid_thw [I, 3] int64. */
  out: string;
}

export interface PreprocessFileSummary {
  readonly items: { kind: PreprocessedItem['kind']; grid_thw: [number, number, number]; resized: PreprocessedItem['resized'] }[];
  /** pixel_values rows written. */
  readonly rows: number;
}

/** Preprocesses `inputs` as the model's processor says and writes pixel_values + grid_thw to `options.out`. */
export async function preprocessToFile(models: ModelRegistry, inputs: readonly VisualItem[], options: PreprocessToFileOptions): Promise<PreprocessFileSummary> {
  await checkSafetensorsOutput(options.out); // before any decoding: a path that cannot be written fails now
  const processor = await modelProcessor(models, options.model ?? EMBEDDED_MODEL);
  const pre = await preprocess([...inputs], { processor, ...budget(options) });
  const rows = pre.pixelValues.length / pre.patchDim;
  await writeSafetensors(
    options.out,
    {
      pixel_values: hostTensor('float32', [rows, pre.patchDim], pre.pixelValues),
      grid_thw: hostTensor('int64', [pre.items.length, 3], pre.gridThw),
    },
    { producer: 'vitgraph preprocess' },
  );
  return { items: pre.items.map((it) => ({ kind: it.kind, grid_thw: it.gridThw, resized: it.resized })), rows };
}

export interface EncodeToFileOptions extends VisionEncoderOptions {
  /** The safetensors file written: every graph output (all items' tokens) and grid_thw [I, 3]. */
  out: string;
  /** Inputs per encoder call (default 1 on the dynamic graph, 8 on buckets, which pack several per run). */
  batch?: number | undefined;
  /** Items encoded so far: 0 once the model is loaded, then after each encoder call. */
  onEncoded?: ((done: number, total: number) => void) | undefined;
}

export interface EncodeFileSummary {
  readonly items: { kind: EncodeResult['items'][number]['kind']; grid_thw: [number, number, number]; tokens: number }[];
  readonly tokens: number;
  readonly ms: { preprocess: number; encode: number };
}

/** Loads `model` (omitted: the embedded tiny tower), encodes `inputs` in batches, writes every output to `options.out`. */
export async function encodeToFile(model: string | undefined, inputs: readonly EncodeInput[], options: EncodeToFileOptions): Promise<EncodeFileSummary> {
  if (inputs.length === 0) throw invalidArgument('inputs', 'at least one image, video or pixel set', 'an empty list');
  await checkSafetensorsOutput(options.out); // before minutes of export or encoding
  const batch = options.batch ?? (useBuckets(options) ? 8 : 1);
  const encoder = await VisionEncoder.load(model, options);
  try {
    const results: EncodeResult[] = [];
    options.onEncoded?.(0, inputs.length);
    for (let i = 0; i < inputs.length; i += batch) {
      results.push(await encoder.encode(inputs.slice(i, i + batch), budget(options)));
      options.onEncoded?.(Math.min(i + batch, inputs.length), inputs.length);
    }
    const merged = concatTokens(
      results.map((r) => r.outputs),
      encoder.outputs,
    );
    const grid = results.flatMap((r) => Array.from(r.gridThw.data));
    await writeSafetensors(options.out, { ...merged, grid_thw: hostTensor('int64', [grid.length / 3, 3], BigInt64Array.from(grid)) }, { producer: 'vitgraph encode', model: encoder.modelId });
    return {
      items: results.flatMap((r) => r.items.map((it) => ({ kind: it.kind, grid_thw: it.gridThw, tokens: it.tokens }))),
      tokens: results.reduce((s, r) => s + r.items.reduce((n, it) => n + it.tokens, 0), 0),
      ms: { preprocess: round(results.reduce((s, r) => s + r.ms.preprocess, 0)), encode: round(results.reduce((s, r) => s + r.ms.encode, 0)) },
    };
  } finally {
    await encoder.close();
  }
}

const budget = ({ minPixels, maxPixels }: PixelBudget): PixelBudget => ({ ...(minPixels ? { minPixels } : {}), ...(maxPixels ? { maxPixels } : {}) });

const round = (ms: number): number => Math.round(ms * 10) / 10;
