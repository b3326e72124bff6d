// The layout redesign's contracts (issue 16): precision recorded once in the EncoderIO and read back
// from older files, image functions that take the model's processor, family knowledge asked of the
// registry, one rule for bucket graphs, and one dtype table.

import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportModel, MODELS, modelProcessor, openPackage, preprocess, QWEN2_VL_PROCESSOR, QWEN3_VL_PROCESSOR, useBuckets, VitgraphError } from '../index.js';
import { parseEncoderIO, PRECISION, PRECISIONS, quantizationOf } from '../src/contract.js';
import { BYTES_PER_ELEMENT, DATA_TYPES, dataTypeOfCode, dataTypeOfSafetensors, DTYPES, onnxTypeCode, safetensorsDTypeOf } from '../src/dtype.js';
import { ENCODER_FIXTURES, tempDir } from './helpers/files.js';

const IO = { patchDim: 1536, mergeUnit: 4, spatialMergeSize: 2, outputs: [{ name: 'image_embeds', tokenAxis: 0 }] };

test('the precision is read from io.precision, and from io.quantization in files written before it', (t) => {
  t.like(parseEncoderIO({ ...IO, precision: 'int8' }, 'x'), { precision: 'int8', quantization: quantizationOf('int8') });
  t.like(parseEncoderIO({ ...IO, precision: 'float16' }, 'x'), { precision: 'float16', quantization: undefined });
  t.like(parseEncoderIO({ ...IO, quantization: 'dynamic-int8' }, 'x'), { precision: 'int8', quantization: 'dynamic-int8' }); // written by vitgraph before per-row int8
  t.like(parseEncoderIO({ ...IO, quantization: quantizationOf('int8') }, 'x'), { precision: 'int8' });
  t.like(parseEncoderIO({ ...IO, quantization: quantizationOf('int4') }, 'x'), { precision: 'int4' });
  t.is(parseEncoderIO(IO, 'x').precision, undefined);
  const error = t.throws(() => parseEncoderIO({ ...IO, precision: 'int3' }, 'x'), { instanceOf: VitgraphError });
  t.regex(error?.message ?? '', /precision: expected one of float32, float16, bfloat16, int8, int4/);
  t.deepEqual(Object.keys(PRECISION), [...PRECISIONS]);
});

test('an export records its precision once in io; an old package without it reads it from its dtype', async (t) => {
  const out = join(await tempDir(t), 'pkg');
  await exportModel({ model: join(ENCODER_FIXTURES, 'tiny'), out, maxPatches: [256], dtype: 'float16' });
  const manifest = JSON.parse(await readFile(join(out, 'vitgraph.json'), 'utf8')) as { io: Record<string, unknown> };
  t.is(manifest.io.precision, 'float16');
  t.false('quantization' in manifest.io);
  const { precision: _, ...older } = manifest.io;
  await writeFile(join(out, 'vitgraph.json'), JSON.stringify({ ...manifest, io: older }));
  t.is((await openPackage(out, { verify: false })).io.precision, 'float16');
});

test('preprocess takes the model processor and defaults to none', async (t) => {
  const image = join(ENCODER_FIXTURES, '..', 'images', 'chelsea.png');
  const error = await t.throwsAsync(preprocess([image], undefined as never), { instanceOf: VitgraphError });
  t.is(error?.code, 'invalid_argument');
  t.regex(error?.message ?? '', /^processor: /);
  t.is((await preprocess([image], { processor: QWEN2_VL_PROCESSOR })).patchDim, 1176);
});

test('the registry answers for processors: each family its own, a foreign graph by its row width', async (t) => {
  t.is(MODELS.byId('qwen3-vl').processor, QWEN3_VL_PROCESSOR);
  t.is(MODELS.byId('qwen2.5-vl').processor, QWEN2_VL_PROCESSOR);
  t.is(MODELS.processorFor(1176), QWEN2_VL_PROCESSOR);
  t.is(MODELS.processorFor(1536), QWEN3_VL_PROCESSOR);
  t.is(MODELS.processorFor(1000), undefined);
  t.deepEqual(await modelProcessor(join(ENCODER_FIXTURES, 'qwen2vl_tiny')), { ...QWEN2_VL_PROCESSOR });
});

test('useBuckets: asked for, or the native backend (CUDA by default)', (t) => {
  t.false(useBuckets({}));
  t.true(useBuckets({ graphs: 'buckets' }));
  t.true(useBuckets({ device: 'cuda' }));
  t.true(useBuckets({ backend: 'native' }));
  t.false(useBuckets({ graphs: 'dynamic', backend: 'ort-node' }));
});

test('every dtype table derives from src/dtype.ts', (t) => {
  for (const dtype of DATA_TYPES) {
    t.is(dataTypeOfCode(onnxTypeCode(dtype)), dtype);
    t.is(dataTypeOfSafetensors(safetensorsDTypeOf(dtype)!), dtype);
    t.is(new DTYPES[dtype].array(3).BYTES_PER_ELEMENT, BYTES_PER_ELEMENT[dtype]);
  }
  t.is(dataTypeOfCode(12), undefined); // uint32 has no DataType
});
