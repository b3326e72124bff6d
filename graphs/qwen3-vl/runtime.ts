// The encoder on top of model-agnostic runners: a dynamic graph, padded bucket graphs, or
// both (a package). Checks inputs on the host, packs items into buckets, slices outputs back.

import { stat } from 'node:fs/promises';
import { closedError, invalidArgument, runtimeError } from '../../src/errors.js';
import { requirePath } from '../../src/fs/confined.js';
import type { Runner } from '../../src/runtime/runner.js';
import { resolveBackend, runnerFactory, type BackendOptions } from '../../src/runtime/backend.js';
import { hostTensor, type HostTensor } from '../../src/tensor.js';
import { concatTokens, padInputs, planRuns, sliceTokens, type EncoderOutputs, type GridRow, type Plan } from './buckets.js';
import { checkBucketFits, checkEncoderInputs } from './inputs.js';
import { IO, PADDED_IO } from './io.js';
import { openPackage } from './package.js';
import type { Bucket } from './padded.js';

export type { EncoderOutputs } from './buckets.js';

/** Creates a runner for one graph file (onnxruntime-node by default; the native addon plugs in here). */
export type RunnerFactory = (path: string) => Promise<Runner>;

export interface EncoderRuntimeOptions extends BackendOptions {
  /** For a package: run the 'dynamic' graph (CPU default) or the padded 'buckets' (always on the native backend). */
  graphs?: 'dynamic' | 'buckets';
  /** An item larger than every bucket: run it on the dynamic graph, or fail. */
  oversize?: 'dynamic' | 'error';
  /** Overrides the backend's runner factory. */
  createRunner?: RunnerFactory;
}

interface BucketGraph extends Bucket {
  readonly path: string;
  /** Opened on first use; a promise so concurrent first requests share one session. */
  runner?: Promise<Runner>;
}

export class EncoderRuntime {
  private dynamicRunner: Promise<Runner> | undefined;
  /** Set by close(): no session opens afterwards, so pending and later calls reject. */
  private closed = false;

  private constructor(
    private readonly dynamicPath: string | undefined,
    private readonly buckets: BucketGraph[],
    readonly patchDim: number,
    readonly mergeUnit: number,
    private readonly options: EncoderRuntimeOptions,
  ) {}

  /** Opens a .onnx file (dynamic or one padded bucket) or a package directory. */
  static async open(model: string, options: EncoderRuntimeOptions = {}): Promise<EncoderRuntime> {
    requirePath(model, 'model');
    // The native backend binds fixed-shape buffers: it runs bucket graphs and never the dynamic one.
    const native = !options.createRunner && resolveBackend(options).backend === 'native';
    const settings: EncoderRuntimeOptions = { ...options, createRunner: options.createRunner ?? runnerFactory(options), ...(native ? { oversize: 'error' } : {}) };
    const create = settings.createRunner!;
    if ((await stat(model).catch(() => undefined))?.isDirectory()) {
      const pkg = await openPackage(model);
      const useBuckets = options.graphs === 'buckets' || native || !pkg.dynamic;
      if (useBuckets && pkg.buckets.length === 0) {
        throw invalidArgument(native ? '--backend native' : '--graphs buckets', 'a package with padded bucket graphs', model, 'Export one with --max-patches');
      }
      return new EncoderRuntime(pkg.dynamic, useBuckets ? pkg.buckets.map((b) => ({ ...b })) : [], pkg.config.patchDim, pkg.config.mergeUnit, settings);
    }
    const runner = await create(model);
    const pixels = runner.inputs.find((i) => i.name === IO.pixelValues);
    const grid = runner.inputs.find((i) => i.name === IO.gridThw);
    if (!pixels || !grid) {
      await runner.close();
      throw invalidArgument(model, `an encoder graph with inputs ${IO.pixelValues} and ${IO.gridThw}`, runner.inputs.map((i) => i.name).join(', '));
    }
    const patchDim = Number(pixels.shape[1]);
    const [maxPatches, maxItems] = [pixels.shape[0], grid.shape[0]];
    const padded = typeof maxPatches === 'number' && typeof maxItems === 'number';
    const rt = new EncoderRuntime(padded ? undefined : model, padded ? [{ maxPatches, maxItems, path: model, runner: Promise.resolve(runner) }] : [], patchDim, 4, settings);
    if (!padded) rt.dynamicRunner = Promise.resolve(runner);
    return rt;
  }

  /** pixel_values float32 [N, patchDim] + grid rows → image_embeds [N/4, O], deepstack_embeds [K, N/4, O]. */
  async run(pixelValues: HostTensor, gridThw: HostTensor): Promise<EncoderOutputs> {
    if (this.closed) throw closedError('encoder');
    const grid: GridRow[] = checkEncoderInputs({ pixelValues, gridThw }, this.patchDim);
    const pixels = pixelValues.data as Float32Array;
    if (this.buckets.length === 0) return this.runDynamic(pixelValues, gridThw);
    const plans = planRuns(grid, this.buckets, { oversize: this.dynamicPath && this.options.oversize !== 'error' ? 'dynamic' : 'error' });
    const parts: EncoderOutputs[] = [];
    for (const plan of plans) parts.push(await this.runPlan(plan, pixels));
    return concatTokens(parts);
  }

  private async runPlan(plan: Plan, pixels: Float32Array): Promise<EncoderOutputs> {
    if (plan.kind === 'dynamic') {
      const [unit] = plan.units as [Plan['units'][number]];
      const rows = pixels.subarray(unit.firstRow * this.patchDim, (unit.firstRow + unit.rows) * this.patchDim);
      return this.runDynamic(hostTensor('float32', [unit.rows, this.patchDim], rows), hostTensor('int64', [1, 3], BigInt64Array.from(unit.grid.map(BigInt))));
    }
    const graph = this.buckets.find((b) => b.maxPatches === plan.bucket.maxPatches && b.maxItems === plan.bucket.maxItems)!;
    graph.runner ??= this.create(graph.path);
    checkBucketFits(plan.units, graph); // padded graphs trust grid_thw: the host checks what it packs
    const { pixels: padded, grid } = padInputs(pixels, this.patchDim, plan.units, graph);
    const out = await (await this.opened(graph.runner)).run({ [IO.pixelValues]: padded, [IO.gridThw]: grid });
    const tokens = Number((out[PADDED_IO.tokenCount]?.data as BigInt64Array | undefined)?.[0] ?? -1);
    const expected = plan.units.reduce((s, u) => s + u.rows, 0) / this.mergeUnit;
    if (tokens !== expected) throw runtimeError(`bucket ${graph.maxPatches} reported ${tokens} tokens, expected ${expected}`);
    return sliceTokens(encoderOutputs(out), tokens);
  }

  private async runDynamic(pixelValues: HostTensor, gridThw: HostTensor): Promise<EncoderOutputs> {
    this.dynamicRunner ??= this.create(this.dynamicPath!);
    return encoderOutputs(await (await this.opened(this.dynamicRunner)).run({ [IO.pixelValues]: pixelValues, [IO.gridThw]: gridThw }));
  }

  /** The runner once open, unless close() came first: a request that waited for an open is refused too. */
  private async opened(runner: Promise<Runner>): Promise<Runner> {
    const open = await runner;
    if (this.closed) throw closedError('encoder');
    return open;
  }

  private create(path: string): Promise<Runner> {
    if (this.closed) return Promise.reject(closedError('encoder'));
    return this.options.createRunner!(path);
  }

  /**
   * Opens every bucket graph and runs it `times` on all-padding inputs: on CUDA the third run
   * captures the bucket's graph, so the first real request replays instead of capturing.
   */
  async warmup(times = 3): Promise<void> {
    for (const graph of this.buckets) {
      graph.runner ??= this.create(graph.path);
      const runner = await this.opened(graph.runner);
      const { pixels, grid } = padInputs(new Float32Array(0), this.patchDim, [], graph);
      for (let i = 0; i < times; i++) await runner.run({ [IO.pixelValues]: pixels, [IO.gridThw]: grid });
    }
  }

  /** The bucket sizes this runtime packs into (empty: dynamic graph only). */
  get bucketSizes(): Bucket[] {
    return this.buckets.map(({ maxPatches, maxItems }) => ({ maxPatches, maxItems }));
  }

  async close(): Promise<void> {
    this.closed = true;
    const opened = [this.dynamicRunner, ...this.buckets.map((b) => b.runner)];
    for (const runner of opened) await (await runner?.catch(() => undefined))?.close(); // a failed open has nothing to close
  }
}

function encoderOutputs(out: Record<string, HostTensor>): EncoderOutputs {
  const imageEmbeds = out[IO.imageEmbeds];
  const deepstackEmbeds = out[IO.deepstackEmbeds];
  if (imageEmbeds?.dtype !== 'float32' || deepstackEmbeds?.dtype !== 'float32') throw runtimeError(`graph outputs lack float32 ${IO.imageEmbeds}/${IO.deepstackEmbeds}`);
  return { imageEmbeds: imageEmbeds as HostTensor<'float32'>, deepstackEmbeds: deepstackEmbeds as HostTensor<'float32'> };
}
