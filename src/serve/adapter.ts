// The one place where the serving layer meets the encoder: a `VisionEncoder` (any tower of the
// registry) as a `BatchEncoder`. Preprocessing runs per item with the model's own processor (each
// item has its own pixel budget and rows), and a batch is one `encode()` call over the items' raw
// pixel rows; each item comes back with the model's named outputs.

import { VitgraphError, invalidArgument } from '../errors.js';
import type { VisionEncoder, VisionEncoderOptions } from '../encoder.js';
import { preprocess, type PreprocessOptions, type ProcessorParams, type VisualItem } from '../image/index.js';
import { resolveBackend, useBuckets } from '../runtime/backend.js';
import { DEFAULT_BUCKETS } from '../export/export.js';
import { checkEncoderInputs } from '../runtime/input-checks.js';
import { hostTensor } from '../tensor.js';
import type { BatchEncoder, EncodedItem, EncoderInfo, GridThw, PrepareLimits, PreparedItem, ServeInput } from './types.js';

/** Wraps a loaded encoder; `options` are the ones it was loaded with (for the startup log). */
export function batchEncoder(encoder: VisionEncoder, options: VisionEncoderOptions = {}): BatchEncoder {
  const { backend, device } = resolveBackend(options);
  const buckets = useBuckets(options);
  const sizes = options.buckets ?? DEFAULT_BUCKETS;
  const info: EncoderInfo = {
    model: encoder.modelId,
    graphs: buckets ? `buckets (${sizes.join(', ')} patches when exported here)` : 'dynamic',
    backend: `${backend} on ${device}`,
    threads: options.threads ? `${options.threads} intra-op` : 'default (all cores)',
    outputs: encoder.outputs,
    buckets,
    ...(buckets ? { largestRun: Math.max(...sizes) } : {}),
  };
  return new VisionBatchEncoder(encoder, info);
}

class VisionBatchEncoder implements BatchEncoder {
  constructor(
    private readonly encoder: VisionEncoder,
    readonly info: EncoderInfo,
  ) {}

  async prepare(inputs: readonly ServeInput[], limits: PrepareLimits): Promise<PreparedItem[]> {
    const prepared: PreparedItem[] = [];
    for (const [index, input] of inputs.entries())
      prepared.push(
        await this.prepareOne(input, index, limits).catch((error: unknown) => {
          throw renumbered(error, index);
        }),
      );
    return prepared;
  }

  async encodeBatch(items: readonly PreparedItem[]): Promise<EncodedItem[]> {
    const result = await this.encoder.encode(items.map((item) => ({ pixelValues: item.pixels, gridThw: [[...item.gridThw]] })));
    return result.items.map((item, i) => ({ kind: items[i]!.kind, gridThw: item.gridThw, tokens: item.tokens, outputs: item.outputs }));
  }

  async warmup(): Promise<void> {
    const { patchDim, spatialMergeSize: m } = this.encoder.io;
    await this.encoder.encode([{ pixelValues: new Float32Array(m * m * patchDim), gridThw: [[1, m, m]] }]);
  }

  close(): Promise<void> {
    return this.encoder.close();
  }

  private async prepareOne(input: ServeInput, index: number, limits: PrepareLimits): Promise<PreparedItem> {
    const { patchDim, spatialMergeSize } = this.encoder.io;
    if (input.kind === 'pixels') {
      const rows = checkRows(input.pixelValues, patchDim, index);
      const grid = checkEncoderInputs(
        { pixelValues: hostTensor('float32', [rows.length / patchDim, patchDim], rows), gridThw: hostTensor('int64', [1, 3], BigInt64Array.from(input.gridThw.map(BigInt))) },
        patchDim,
        spatialMergeSize,
      )[0]!;
      return { kind: 'pixels', gridThw: grid, patches: grid[0] * grid[1] * grid[2], pixels: input.pixelValues };
    }
    const options: PreprocessOptions & { processor: ProcessorParams } = { processor: this.encoder.processor, maxInputPixels: limits.maxInputPixels, ...budget(input) };
    const item: VisualItem = input.kind === 'image' ? input.bytes : { frames: [...input.frames], ...(input.fps !== undefined ? { fps: input.fps } : {}) };
    const { pixelValues, items } = await preprocess([item], options);
    const [only] = items as [(typeof items)[number]];
    const gridThw: GridThw = only.gridThw;
    return { kind: only.kind, gridThw, patches: only.rows, pixels: pixelValues };
  }
}

/** An item's budget: images bound one frame, videos the whole clip (frames × height × width). */
function budget(input: Extract<ServeInput, { kind: 'image' | 'video' }>): PreprocessOptions {
  const { minPixels, maxPixels } = input.budget ?? {};
  if (input.kind === 'image') return { ...(minPixels ? { minPixels } : {}), ...(maxPixels ? { maxPixels } : {}) };
  return { ...(minPixels ? { videoMinPixels: minPixels } : {}), ...(maxPixels ? { videoMaxPixels: maxPixels } : {}) };
}

/** Each item is preprocessed alone (as items[0]): its errors name its place in the request. */
function renumbered(error: unknown, index: number): unknown {
  if (!(error instanceof VitgraphError) || index === 0) return error;
  return new VitgraphError(error.code, error.message.replaceAll('items[0]', `items[${index}]`).replaceAll('item 0:', `item ${index}:`), { ...error.details, item: index }, { cause: error });
}

function checkRows(pixels: Float32Array, patchDim: number, index: number): Float32Array {
  if (pixels.length === 0 || pixels.length % patchDim !== 0) {
    throw invalidArgument(`items[${index}].pixel_values`, `float32 rows of ${patchDim} values`, `${pixels.length} values`);
  }
  return pixels;
}
