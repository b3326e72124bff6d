import { modelProcessor } from '../../index.js';
import { checkSafetensorsOutput } from '../../src/fs/vitgraph-files.js';
import { preprocess } from '../../src/image/index.js';
import { hostTensor } from '../../src/tensor.js';
import { writeSafetensors } from '../../src/weights/index.js';
import { flag, requiredStr, str, type Command } from '../args.js';
import { PIXEL_OPTIONS, pixelBudget, visualInputs } from './encode.js';

export const preprocessCommand: Command = {
  name: 'preprocess',
  summary: "Images (or frame lists) → pixel_values [N, patch_dim] and grid_thw [I,3] as safetensors, as the model's processor makes them (default: Qwen3-VL's).",
  positionals: '<image…>',
  options: {
    model: { type: 'string', value: '<m>', description: "preprocess for this model: a checkpoint dir (its family's processor + its preprocessor_config.json), a package or a .onnx (default: Qwen3-VL's processor)" },
    out: { type: 'string', value: '<file.safetensors>', required: true, description: 'where to write pixel_values and grid_thw' },
    ...PIXEL_OPTIONS,
    json: { type: 'boolean', description: 'print a JSON summary of the items' },
  },
  async run(args) {
    const inputs = visualInputs(args);
    const out = requiredStr(args, 'out');
    await checkSafetensorsOutput(out);
    const model = str(args, 'model');
    const processor = model === undefined ? {} : { processor: await modelProcessor(model) };
    const pre = await preprocess(inputs as Parameters<typeof preprocess>[0], { ...processor, ...pixelBudget(args) });
    await writeSafetensors(
      out,
      {
        pixel_values: hostTensor('float32', [pre.pixelValues.length / pre.patchDim, pre.patchDim], pre.pixelValues),
        grid_thw: hostTensor('int64', [pre.items.length, 3], pre.gridThw),
      },
      { producer: 'vitgraph preprocess' },
    );
    const summary = pre.items.map((it) => ({ kind: it.kind, grid_thw: it.gridThw, resized: it.resized }));
    if (flag(args, 'json')) process.stdout.write(`${JSON.stringify({ items: summary })}\n`);
    else process.stderr.write(`${summary.length} item(s), ${pre.pixelValues.length / pre.patchDim} patch rows → ${out}\n`);
  },
};
