// The encoder on top of model-agnostic runners: a dynamic graph, padded bucket graphs, or
// both (a package). Checks inputs on the host, packs items into buckets, slices outputs back.
// What it knows of the model comes from the file's recorded I/O contract (EncoderIO).

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { closedError, invalidArgument, invalidFile, runtimeError, unsupported } from '../errors.js';
import { requirePath } from '../fs/confined.js';
import type { Bucket, OutputSpec } from '../model.js';
import { inspectModel } from '../onnx/inspect.js';
import { hostTensor, type HostTensor } from '../tensor.js';
import { resolveBackend, runnerFactory, useBuckets, type BackendOptions } from './backend.js';
import { checkBucketFits, concatTokens, gatherSlots, padInputs, planRuns, sliceTokens, type EncoderOutputs, type Plan } from './buckets.js';
import { checkIOAgainstGraph, graphDevice, INPUTS, prepacksWeights, slotPatches, TOKEN_COUNT, type EncoderIO } from '../contract.js';
import { checkEncoderInputs, type GridRow } from './input-checks.js';
import { recordedIO } from './recorded-io.js';
import { MANIFEST, openPackage } from './package.js';
import type { Runner } from './runner.js';

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
  private closed = false;

  private constructor(
    private readonly dynamicPath: string | undefined,
    private readonly buckets: BucketGraph[],
    /** The graphs' recorded I/O: pixel row width, merge unit, named outputs, processor. */
    readonly io: EncoderIO,
    private readonly options: EncoderRuntimeOptions,
  ) {}

  /** Opens a .onnx file (dynamic or one padded bucket) or a package directory. */
  static async open(model: string, options: EncoderRuntimeOptions = {}): Promise<EncoderRuntime> {
    requirePath(model, 'model');
    // The native backend binds fixed-shape buffers: it runs bucket graphs and never the dynamic one.
    const native = !options.createRunner && resolveBackend(options).backend === 'native';
    const isPackage = (await stat(model).catch(() => undefined))?.isDirectory() === true;
    const pkg = isPackage ? await openPackage(model, { verify: options.verify !== false }) : undefined;
    const io = pkg ? pkg.io : await recordedIO(model);
    if (io && graphDevice(io) === 'cuda' && resolveBackend(options).device !== 'cuda') {
      throw unsupported(`${model} was exported for CUDA (--device cuda): its graphs use kernels ONNX Runtime runs well or at all only on CUDA (bfloat16, memory-efficient float32 attention)`, {
        fixes: [{ option: 'device', action: 'pass', value: 'cuda' }],
        otherwise: 're-export without --device cuda for CPU',
      });
    }
    // Quantized matmuls are only fast on prepacked weights; float ones lose nothing without (and load faster).
    const prepack = options.prepackWeights ?? prepacksWeights(io);
    const runnerOptions = { ...options, prepackWeights: prepack };
    const settings: EncoderRuntimeOptions = { ...runnerOptions, createRunner: options.createRunner ?? runnerFactory(runnerOptions), ...(native ? { oversize: 'error' } : {}) };
    const create = settings.createRunner!;
    if (pkg) {
      // A caller's own runners decide nothing about the backend: only `graphs` picks the buckets then.
      const buckets = useBuckets(options.createRunner ? { graphs: options.graphs } : options) || !pkg.dynamic;
      if (buckets && pkg.buckets.length === 0) {
        throw invalidArgument(
          native ? 'backend' : 'graphs',
          `a package with padded bucket graphs for ${native ? 'the native backend' : 'bucket graphs'}`,
          model,
          'Export a package with bucket sizes (vitgraph export --out <dir>, or exportModel to a directory)',
        );
      }
      await checkPackageGraphs(pkg.io, pkg.dynamic, buckets ? pkg.buckets : [], join(model, MANIFEST));
      return new EncoderRuntime(pkg.dynamic, buckets ? pkg.buckets.map((b) => ({ ...b })) : [], pkg.io, settings);
    }
    const runner = await create(model);
    try {
      const fileIO = io ?? foreignIO(runner, model);
      checkIOAgainstGraph(fileIO, runner, model);
      const pixels = runner.inputs.find((i) => i.name === INPUTS.pixelValues);
      const grid = runner.inputs.find((i) => i.name === INPUTS.gridThw);
      if (!grid || !pixels) throw invalidArgument(model, `an encoder graph with inputs ${INPUTS.pixelValues} and ${INPUTS.gridThw}`, runner.inputs.map((i) => i.name).join(', '));
      const [maxPatches, maxItems] = [pixels.shape[0], grid.shape[0]];
      const padded = typeof maxPatches === 'number' && typeof maxItems === 'number';
      const rt = new EncoderRuntime(padded ? undefined : model, padded ? [{ maxPatches, maxItems, path: model, runner: Promise.resolve(runner) }] : [], fileIO, settings);
      if (!padded) rt.dynamicRunner = Promise.resolve(runner);
      return rt;
    } catch (error) {
      await runner.close();
      throw error;
    }
  }

  get patchDim(): number {
    return this.io.patchDim;
  }

  get mergeUnit(): number {
    return this.io.mergeUnit;
  }

  get outputs(): readonly OutputSpec[] {
    return this.io.outputs;
  }

  /** pixel_values float32 [N, patchDim] + grid_thw int64 [I, 3] → every named output, tokens of all items in order. */
  async run(pixelValues: HostTensor, gridThw: HostTensor): Promise<EncoderOutputs> {
    this.checkOpen();
    const grid: GridRow[] = checkEncoderInputs({ pixelValues, gridThw }, this.io.patchDim, this.io.spatialMergeSize);
    const pixels = pixelValues.data as Float32Array;
    if (this.buckets.length === 0) return this.runDynamic(pixelValues, gridThw);
    const device = graphDevice(this.io);
    const plans = planRuns(grid, this.buckets, {
      oversize: this.dynamicPath && this.options.oversize !== 'error' ? 'dynamic' : 'error',
      slotOf: (b) => slotPatches(b, device),
    });
    const parts: EncoderOutputs[] = [];
    for (const plan of plans) parts.push(await this.runPlan(plan, pixels));
    return concatTokens(parts, this.io.outputs);
  }

  private async runPlan(plan: Plan, pixels: Float32Array): Promise<EncoderOutputs> {
    const { patchDim } = this.io;
    if (plan.kind === 'dynamic') {
      const [unit] = plan.units as [Plan['units'][number]];
      const rows = pixels.subarray(unit.firstRow * patchDim, (unit.firstRow + unit.rows) * patchDim);
      return this.runDynamic(hostTensor('float32', [unit.rows, patchDim], rows), hostTensor('int64', [1, 3], BigInt64Array.from(unit.grid.map(BigInt))));
    }
    const graph = this.buckets.find((b) => b.maxPatches === plan.bucket.maxPatches && b.maxItems === plan.bucket.maxItems)!;
    const slot = slotPatches(graph, graphDevice(this.io));
    checkBucketFits(plan.units, graph, slot); // padded graphs trust grid_thw: the host checks what it packs
    const { pixels: padded, grid } = padInputs(pixels, patchDim, plan.units, graph, slot);
    const out = await (await this.runnerOf(graph)).run({ [INPUTS.pixelValues]: padded, [INPUTS.gridThw]: grid });
    const tokens = Number((out[TOKEN_COUNT]?.data as BigInt64Array | undefined)?.[0] ?? -1);
    const expected = plan.units.reduce((s, u) => s + u.rows, 0) / this.io.mergeUnit;
    if (tokens !== expected) throw runtimeError(`bucket ${graph.maxPatches} reported ${tokens} tokens, expected ${expected}`);
    if (slot === undefined) return sliceTokens(this.outputsOf(out), this.io.outputs, tokens);
    return gatherSlots(
      this.outputsOf(out),
      this.io.outputs,
      slot / this.io.mergeUnit,
      plan.units.map((u) => u.rows / this.io.mergeUnit),
    );
  }

  private async runDynamic(pixelValues: HostTensor, gridThw: HostTensor): Promise<EncoderOutputs> {
    this.checkOpen();
    this.dynamicRunner ??= this.options.createRunner!(this.dynamicPath!);
    return this.outputsOf(await (await this.opened(this.dynamicRunner)).run({ [INPUTS.pixelValues]: pixelValues, [INPUTS.gridThw]: gridThw }));
  }

  private runnerOf(graph: BucketGraph): Promise<Runner> {
    this.checkOpen();
    graph.runner ??= this.options.createRunner!(graph.path);
    return this.opened(graph.runner);
  }

  /** The runner once open, unless close() came first: a request that waited for an open is refused too. */
  private async opened(runner: Promise<Runner>): Promise<Runner> {
    const open = await runner;
    this.checkOpen();
    return open;
  }

  private outputsOf(out: Record<string, HostTensor>): EncoderOutputs {
    return Object.fromEntries(
      this.io.outputs.map(({ name }) => {
        const t = out[name];
        if (t?.dtype !== 'float32') throw runtimeError(`graph output ${name}: expected float32, got ${t ? t.dtype : 'no such output'}`);
        return [name, t as HostTensor<'float32'>];
      }),
    );
  }

  private checkOpen(): void {
    if (this.closed) throw closedError('encoder');
  }

  /**
   * Opens every bucket graph and runs it `times` on all-padding inputs: on CUDA the third run
   * captures the bucket's graph, so the first real request replays instead of capturing.
   */
  async warmup(times = 3): Promise<void> {
    for (const graph of this.buckets) {
      const runner = await this.runnerOf(graph);
      const { pixels, grid } = padInputs(new Float32Array(0), this.io.patchDim, [], graph);
      for (let i = 0; i < times; i++) await runner.run({ [INPUTS.pixelValues]: pixels, [INPUTS.gridThw]: grid });
    }
  }

  /** The bucket sizes this runtime packs into (empty: dynamic graph only). */
  get bucketSizes(): Bucket[] {
    return this.buckets.map(({ maxPatches, maxItems }) => ({ maxPatches, maxItems }));
  }

  /** Closes every session; runs in progress finish first, later and pending calls reject with code 'closed'. */
  async close(): Promise<void> {
    this.closed = true;
    const opened = [this.dynamicRunner, ...this.buckets.map((b) => b.runner)];
    for (const runner of opened) await (await runner?.catch(() => undefined))?.close(); // a failed open has nothing to close
  }
}

/** The manifest's numbers against the graphs it lists (structure only, no weights read): a lying manifest is invalid_file, not a crash mid-run. */
async function checkPackageGraphs(io: EncoderIO, dynamic: string | undefined, buckets: readonly (Bucket & { readonly path: string })[], manifest: string): Promise<void> {
  if (dynamic) checkIOAgainstGraph(io, await inspectModel(dynamic), manifest);
  for (const bucket of buckets) {
    const graph = await inspectModel(bucket.path);
    checkIOAgainstGraph(io, graph, manifest);
    const rows = graph.inputs.find((i) => i.name === INPUTS.pixelValues)?.shape[0];
    const items = graph.inputs.find((i) => i.name === INPUTS.gridThw)?.shape[0];
    if (rows !== bucket.maxPatches || items !== bucket.maxItems) {
      throw invalidFile(
        manifest,
        `graphs: expected bucket ${bucket.maxPatches} × ${bucket.maxItems} to match its graph, got a graph of ${String(rows)} rows × ${String(items)} items`,
        'Re-export the package with this vitgraph',
      );
    }
  }
}

/** A graph vitgraph did not export: pixel_values' width, a 2×2 merge, every output but token_count ([..., T, O]). */
function foreignIO(runner: Runner, model: string): EncoderIO {
  const pixels = runner.inputs.find((i) => i.name === INPUTS.pixelValues);
  const patchDim = pixels?.shape[1];
  if (typeof patchDim !== 'number') throw invalidArgument(model, `an encoder graph with inputs ${INPUTS.pixelValues} [N, D] and ${INPUTS.gridThw}`, runner.inputs.map((i) => i.name).join(', '));
  const outputs = runner.outputs.filter((o) => o.name !== TOKEN_COUNT).map((o) => ({ name: o.name, tokenAxis: Math.max(0, o.shape.length - 2) }));
  return { patchDim, mergeUnit: 4, spatialMergeSize: 2, outputs };
}
