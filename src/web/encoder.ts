// WebEncoder: the browser's VisionEncoder. load() reads an exported package and opens a session on
// onnxruntime-web; encode() decodes images with the platform decoder, preprocesses them with the
// Node path's own modules and returns each named output as typed arrays with shapes, per image.

import { closedError, invalidArgument, invalidFile, runtimeError } from '../errors.js';
import type { OutputSpec } from '../model.js';
import type { ProcessorParams } from '../image/processor.js';
import { splitTokens, type EncoderOutputs } from '../runtime/buckets.js';
import { INPUTS } from '../contract.js';
import { hostTensor } from '../tensor.js';
import { decodeRgb, type WebImageSource } from './decode.js';
import { readPackage, type PackageSource, type ReadOptions } from './package.js';
import { patchImages, resizeImages, type PixelBudget, type PreprocessedImage } from './preprocess.js';
import { openSession, ort, type BackendInfo, type SessionOptions } from './session.js';

export interface LoadOptions extends ReadOptions, SessionOptions {}

export interface EncodeOptions extends PixelBudget {}

/** Milliseconds spent in each stage of one encode() call. */
export interface StageTimes {
  decode: number;
  resize: number;
  /** Normalise and patchify into pixel_values. */
  patchify: number;
  /** The onnxruntime-web run, inputs in and outputs out. */
  encode: number;
}

export interface EncodedImage extends PreprocessedImage {
  /** Merged tokens of this image: gh·gw / m². */
  tokens: number;
  /** Each named output, sliced to this image's tokens along its token axis. */
  outputs: EncoderOutputs;
}

export interface EncodeResult {
  items: EncodedImage[];
  /** All images' tokens, concatenated: image_embeds [tokens, D], deepstack_embeds [K, tokens, D], … */
  outputs: EncoderOutputs;
  /** The encoder's inputs: pixel_values [N, patchDim] float32 and grid_thw [I, 3] int64. */
  pixelValues: Float32Array;
  gridThw: BigInt64Array;
  patchDim: number;
  times: StageTimes;
}

export class WebEncoder {
  private session: ort.InferenceSession | undefined;

  private constructor(
    session: ort.InferenceSession,
    /** The tower's descriptor id, e.g. 'qwen3-vl'. */
    readonly model: string,
    readonly dtype: string,
    readonly processor: ProcessorParams,
    readonly outputs: readonly OutputSpec[],
    readonly mergeUnit: number,
    readonly backend: BackendInfo,
    /** Milliseconds to read the package files and to create the session. */
    readonly loadTimes: { fetch: number; session: number },
  ) {
    this.session = session;
  }

  /** Opens an exported package (its URL or its picked files) on the best backend available. */
  static async load(source: PackageSource, options: LoadOptions = {}): Promise<WebEncoder> {
    const t0 = performance.now();
    const pkg = await readPackage(source, options);
    const processor = pkg.io.processor;
    if (!processor) throw invalidFile('vitgraph.json', 'io.processor: expected the preprocessing the package was exported with, got none', 'Re-export the package with this vitgraph');
    const t1 = performance.now();
    const { session, info } = await openSession(pkg, options);
    const t2 = performance.now();
    return new WebEncoder(session, pkg.model, pkg.dtype, processor, pkg.io.outputs, pkg.io.mergeUnit, info, { fetch: t1 - t0, session: t2 - t1 });
  }

  /** Images → visual tokens: every named output, for all images and per image. */
  async encode(images: readonly WebImageSource[], options: EncodeOptions = {}): Promise<EncodeResult> {
    if (!Array.isArray(images) || images.length === 0) throw invalidArgument('images', 'a non-empty array of images', images);
    const session = this.open();
    const t0 = performance.now();
    const decoded = await Promise.all(images.map((image, i) => decodeRgb(image, `images[${i}]`)));
    const t1 = performance.now();
    const resized = resizeImages(decoded, this.processor, options);
    const t2 = performance.now();
    const { pixelValues, patchDim, gridThw, items } = patchImages(resized, this.processor);
    const t3 = performance.now();
    const outputs = await this.run(session, pixelValues, patchDim, gridThw);
    const t4 = performance.now();
    const tokens = items.map((item) => item.rows / this.mergeUnit);
    const perItem = splitTokens(outputs, this.outputs, tokens);
    return {
      items: items.map((item, i) => ({ ...item, tokens: tokens[i]!, outputs: perItem[i]! })),
      outputs,
      pixelValues,
      gridThw,
      patchDim,
      times: { decode: t1 - t0, resize: t2 - t1, patchify: t3 - t2, encode: t4 - t3 },
    };
  }

  /** Releases the session; later calls reject with code `closed`. */
  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.release();
  }

  private open(): ort.InferenceSession {
    if (!this.session) throw closedError('WebEncoder');
    return this.session;
  }

  private async run(session: ort.InferenceSession, pixelValues: Float32Array, patchDim: number, gridThw: BigInt64Array): Promise<EncoderOutputs> {
    const feeds = {
      [INPUTS.pixelValues]: new ort.Tensor('float32', pixelValues, [pixelValues.length / patchDim, patchDim]), // [N, patchDim]
      [INPUTS.gridThw]: new ort.Tensor('int64', gridThw, [gridThw.length / 3, 3]), // [I, 3]
    };
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await session.run(feeds);
    } catch (error) {
      throw runtimeError('onnxruntime-web run failed', error);
    }
    const outputs: Record<string, ReturnType<typeof hostTensor<'float32'>>> = {};
    for (const { name } of this.outputs) {
      const value = results[name];
      if (value?.type !== 'float32') throw runtimeError(`output ${name}: expected a float32 tensor, got ${value ? value.type : 'none'}`);
      outputs[name] = hostTensor('float32', value.dims.map(Number), (await value.getData()) as Float32Array);
      value.dispose();
    }
    return outputs;
  }
}
