// Structure of the Qwen2-VL / Qwen2.5-VL graphs without weights: the I/O contract of both kinds
// (names, dtypes, shapes; every padded dim a number), parameter names = checkpoint keys for the
// released shapes (presets), and config parsing (defaults, upstream's confusing names, errors
// that name the field).

import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VitgraphError } from '../src/errors.js';
import { modelToBytes, type GraphBuilder, type ParameterSource } from '../src/onnx/index.js';
import { inspectModel } from '../src/onnx/inspect.js';
import { zeroParameters } from '../src/export/model-directory.js';
import * as qwen2 from '../graphs/qwen2-vl/index.js';
import * as qwen25 from '../graphs/qwen2.5-vl/index.js';
import { qwen2ReferenceConfig } from './reference/qwen2vl.js';
import { tempDir } from './helpers/files.js';
import { qwen2TensorShapes } from './helpers/qwen2.js';

const QWEN2 = { vision_config: { depth: 2, embed_dim: 64, num_heads: 4, mlp_ratio: 1.5, hidden_size: 48 } };
const QWEN25 = { vision_config: { depth: 2, hidden_size: 64, num_heads: 4, intermediate_size: 96, out_hidden_size: 48, fullatt_block_indexes: [1] } };

async function signature(t: ExecutionContext, g: GraphBuilder): Promise<Record<string, [string, (string | number)[]]>> {
  const path = join(await tempDir(t), 'model.onnx');
  await writeFile(path, await modelToBytes(g, { opset: 21 }));
  const summary = await inspectModel(path);
  return Object.fromEntries([...summary.inputs, ...summary.outputs].map((s) => [s.name, [s.dtype, s.shape]]));
}

for (const [name, dynamic, padded] of [
  ['Qwen2-VL', () => qwen2.buildDynamicGraph(qwen2.parseConfig(QWEN2), zeroParameters), () => qwen2.buildPaddedGraph(qwen2.parseConfig(QWEN2), zeroParameters, { maxPatches: 256, maxItems: 4 })],
  [
    'Qwen2.5-VL',
    () => qwen25.buildDynamicGraph(qwen25.parseConfig(QWEN25), zeroParameters),
    () => qwen25.buildPaddedGraph(qwen25.parseConfig(QWEN25), zeroParameters, { maxPatches: 256, maxItems: 4 }),
  ],
] as const) {
  test(`${name}: graph I/O is pinned (dynamic symbolic N and I; padded all numbers, with token_count)`, async (t) => {
    t.deepEqual(await signature(t, dynamic()), {
      pixel_values: ['float32', ['N', 1176]],
      grid_thw: ['int64', ['I', 3]],
      image_embeds: ['float32', ['N/4', 48]],
    });
    t.deepEqual(await signature(t, padded()), {
      pixel_values: ['float32', [256, 1176]],
      grid_thw: ['int64', [4, 3]],
      image_embeds: ['float32', [64, 48]],
      token_count: ['int64', []],
    });
  });
}

/** Records the parameter names and shapes a build claims, without any data. */
function recorder(): ParameterSource & { readonly taken: Map<string, readonly number[]> } {
  const taken = new Map<string, readonly number[]>();
  return {
    taken,
    take: (name, shape) => {
      taken.set(name, [...shape]);
      return () => {
        throw new Error('structure test: no weight data');
      };
    },
  };
}

for (const [family, presets, build] of [
  ['qwen2_vl', qwen2.PRESETS, (c: unknown, p: ParameterSource) => qwen2.buildDynamicGraph(qwen2.parseConfig(c), p)],
  ['qwen2_5_vl', qwen25.PRESETS, (c: unknown, p: ParameterSource) => qwen25.buildDynamicGraph(qwen25.parseConfig(c), p)],
] as const) {
  for (const [size, vision] of Object.entries(presets)) {
    test(`${family} preset ${size}: the graph claims exactly the released checkpoint's tensors (names and shapes)`, (t) => {
      const params = recorder();
      build({ model_type: family, vision_config: { model_type: family, ...vision } }, params);
      const expected = qwen2TensorShapes(qwen2ReferenceConfig({ model_type: family, vision_config: vision }));
      t.is(expected.length, family === 'qwen2_vl' ? 391 : 390, 'spec §2.2/§2.3 tensor count for depth 32');
      t.deepEqual(new Map(params.taken), new Map(expected));
    });
  }
}

test('Qwen2-VL config: embed_dim is the tower width, hidden_size the output; in_chans or in_channels; defaults', (t) => {
  const config = qwen2.parseConfig({ model_type: 'qwen2_vl', hidden_size: 1536, vision_config: { ...qwen2.PRESETS['2b'] } });
  t.like(config, {
    depth: 32,
    hiddenSize: 1280,
    outHiddenSize: 1536,
    intermediateSize: 5120,
    numHeads: 16,
    headDim: 80,
    inChannels: 3,
    patchSize: 14,
    patchDim: 1176,
    mergeUnit: 4,
    spatialMergeSize: 2,
    temporalPatchSize: 2,
  });
  t.like(qwen2.parseConfig({ hidden_size: 80, mlp_ratio: 2.75, embed_dim: 64, num_heads: 4, in_channels: 3 }), { intermediateSize: 176, hiddenSize: 64, outHiddenSize: 80 });
  t.deepEqual(qwen2.parseConfig(qwen2.configToJson(config)), config, 'configToJson round-trips');
  const error = (json: unknown): string => t.throws(() => qwen2.parseConfig(json), { instanceOf: VitgraphError })?.message ?? '';
  t.regex(error({ vision_config: { embed_dim: 64 } }), /vision_config\.hidden_size.*missing/);
  t.regex(error({ hidden_size: 8, embed_dim: 64, num_heads: 5 }), /num_heads.*5 heads do not divide embed_dim 64/);
  t.regex(error({ hidden_size: 8, embed_dim: 40, num_heads: 4 }), /head_dim 10 must be a multiple of 4/);
  t.regex(error({ hidden_size: 8, in_chans: 3, in_channels: 4 }), /in_channels\/in_chans.*disagree/);
  t.regex(error({ hidden_size: 8, hidden_act: 'gelu' }), /hidden_act.*"gelu".*"quick_gelu"/);
});

test('Qwen2.5-VL config: window geometry by the floor chain, full-attention indexes checked, widths required', (t) => {
  const config = qwen25.parseConfig({ model_type: 'qwen2_5_vl', vision_config: { ...qwen25.PRESETS['7b'] } });
  t.like(config, { depth: 32, hiddenSize: 1280, outHiddenSize: 3584, intermediateSize: 3420, headDim: 80, windowSize: 112, windowMergedSide: 4, windowPatchSide: 8, patchDim: 1176, mergeUnit: 4 });
  t.deepEqual(config.fullAttBlockIndexes, [7, 15, 23, 31]);
  t.deepEqual(qwen25.parseConfig(qwen25.configToJson(config)), config, 'configToJson round-trips');
  const small = { hidden_size: 64, num_heads: 4, out_hidden_size: 8, depth: 4, fullatt_block_indexes: [1, 3] };
  t.like(qwen25.parseConfig({ ...small, window_size: 100 }), { windowMergedSide: 3, windowPatchSide: 6 }, '100 // 2 // 14 = 3, not 100 // 14 = 7');
  const error = (json: unknown): string => t.throws(() => qwen25.parseConfig(json), { instanceOf: VitgraphError })?.message ?? '';
  t.regex(error({ ...small, window_size: 27 }), /window_size.*27 px is less than one merged token \(28 px\)/);
  t.regex(error({ ...small, fullatt_block_indexes: [1, 4] }), /fullatt_block_indexes.*index 4 is outside blocks 0\.\.3/);
  t.regex(error({ ...small, depth: 8, fullatt_block_indexes: undefined, hidden_size: undefined }), /hidden_size.*missing/);
  t.regex(error({ ...small, depth: 8, fullatt_block_indexes: undefined }), /index 15 is outside blocks 0\.\.7/, 'the default [7, 15, 23, 31] needs depth ≥ 32');
  t.regex(error({ ...small, out_hidden_size: undefined }), /out_hidden_size.*missing/);
});
