// The one place where the serving layer meets a concrete model: today's VisionEncoder (Qwen3-VL)
// as a `BatchEncoder`. Preprocessing runs per item (each item has its own pixel budget and its own
// rows), and a batch is one `encode()` call over the items' raw pixel rows, whose per-item results
// become named outputs: embeds → image_embeds [T, O], deepstack → deepstack_embeds [K, T, O].

import { VisionEncoder, type EncodedItem as ModelItem, type VisionEncoderOptions } from '../../graphs/qwen3-vl/encoder.js';
import { DEFAULT_BUCKETS } from '../../graphs/qwen3-vl/export.js';
import { checkEncoderInputs } from '../../graphs/qwen3-vl/inputs.js';
import { VitgraphError, invalidArgument } from '../errors.js';
import { PATCH_DIM, preprocess, type PreprocessOptions, type VisualItem } from '../image/index.js';
import { resolveBackend } from '../runtime/backend.js';
import { hostTensor } from '../tensor.js';
import type { BatchEncoder, EncodedItem, EncoderInfo, GridThw, PrepareLimits, PreparedItem, ServeInput } from './types.js';

const OUTPUTS = [
  { name: 'image_embeds', tokenAxis: 0 },
  { name: 'deepstack_embeds', tokenAxis: 1 },
] as const;

/** Loads `model` (a .onnx, a package, a checkpoint; omitted: the embedded tiny tower) as a BatchEncoder. */
export async function loadBatchEncoder(model: string | undefined, options: VisionEncoderOptions = {}): Promise<BatchEncoder> {
  const encoder = await VisionEncoder.load(model, options);
  const { backend, device } = resolveBackend(options);
  const buckets = options.graphs === 'buckets' || backend === 'native';
  const sizes = options.buckets ?? DEFAULT_BUCKETS;
  const info: EncoderInfo = {
    model: encoder.modelPath,
    graphs: buckets ? `buckets (${sizes.join(', ')} patches when exported here)` : 'dynamic',
    backend: `${backend} on ${device}`,
    threads: options.threads ? `${options.threads} intra-op` : 'default (all cores)',
    outputs: OUTPUTS,
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
    for (const [index, input] of inputs.entries()) prepared.push(await prepareOne(input, index, limits).catch((error: unknown) => { throw renumbered(error, index); }));
    return prepared;
  }

  async encodeBatch(items: readonly PreparedItem[]): Promise<EncodedItem[]> {
    const result = await this.encoder.encode(items.map((item) => ({ pixelValues: item.pixels, gridThw: [[...item.gridThw]] })));
    return result.items.map((item, i) => toNamed(item, items[i]!));
  }

  async warmup(): Promise<void> {
    await this.encoder.encode([{ pixelValues: new Float32Array(4 * PATCH_DIM), gridThw: [[1, 2, 2]] }]);
  }

  close(): Promise<void> {
    return this.encoder.close();
  }
}

async function prepareOne(input: ServeInput, index: number, limits: PrepareLimits): Promise<PreparedItem> {
  if (input.kind === 'pixels') {
    const grid = checkEncoderInputs({ pixelValues: hostTensor('float32', [input.pixelValues.length / PATCH_DIM, PATCH_DIM], checkRows(input.pixelValues, index)), gridThw: hostTensor('int64', [1, 3], BigInt64Array.from(input.gridThw.map(BigInt))) }, PATCH_DIM)[0]!;
    return { kind: 'pixels', gridThw: grid, patches: grid[0] * grid[1] * grid[2], pixels: input.pixelValues };
  }
  const options: PreprocessOptions = { maxInputPixels: limits.maxInputPixels, ...budget(input) };
  const item: VisualItem = input.kind === 'image' ? input.bytes : { frames: [...input.frames], ...(input.fps !== undefined ? { fps: input.fps } : {}) };
  const { pixelValues, items } = await preprocess([item], options);
  const [only] = items as [(typeof items)[number]];
  const gridThw: GridThw = only.gridThw;
  return { kind: only.kind, gridThw, patches: only.rows, pixels: pixelValues };
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
  return new VitgraphError(error.code, error.message.replaceAll('items[0]', `items[${index}]`), { ...error.details, item: index }, { cause: error });
}

function checkRows(pixels: Float32Array, index: number): Float32Array {
  if (pixels.length === 0 || pixels.length % PATCH_DIM !== 0) {
    throw invalidArgument(`items[${index}].pixel_values`, `float32 rows of ${PATCH_DIM} values`, `${pixels.length} values`);
  }
  return pixels;
}

function toNamed(item: ModelItem, prepared: PreparedItem): EncodedItem {
  const width = item.embeds.length / Math.max(item.tokens, 1);
  const deepstack = new Float32Array(item.deepstack.length * item.embeds.length); // [K, T, O]
  item.deepstack.forEach((layer, k) => deepstack.set(layer, k * item.embeds.length));
  return {
    kind: prepared.kind,
    gridThw: item.gridThw,
    tokens: item.tokens,
    outputs: {
      image_embeds: hostTensor('float32', [item.tokens, width], item.embeds),
      deepstack_embeds: hostTensor('float32', [item.deepstack.length, item.tokens, width], deepstack),
    },
  };
}
