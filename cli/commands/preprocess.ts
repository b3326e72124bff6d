import { preprocess } from '../../src/image/index.js';
import { hostTensor } from '../../src/tensor.js';
import { writeSafetensors } from '../../src/weights/index.js';
import { flag, requiredStr, type Command } from '../args.js';
import { PIXEL_OPTIONS, pixelBudget, visualInputs } from './encode.js';

export const preprocessCommand: Command = {
  name: 'preprocess',
  summary: 'Images (or frame lists) → pixel_values [N,1536] and grid_thw [I,3] as safetensors, as the Qwen3-VL processor makes them.',
  positionals: '<image…>',
  options: {
    out: { type: 'string', value: '<file.safetensors>', required: true, description: 'where to write pixel_values and grid_thw' },
    ...PIXEL_OPTIONS,
    json: { type: 'boolean', description: 'print a JSON summary of the items' },
  },
  async run(args) {
    const inputs = visualInputs(args);
    const pre = await preprocess(inputs as Parameters<typeof preprocess>[0], pixelBudget(args));
    const out = requiredStr(args, 'out');
    await writeSafetensors(out, {
      pixel_values: hostTensor('float32', [pre.pixelValues.length / 1536, 1536], pre.pixelValues),
      grid_thw: hostTensor('int64', [pre.items.length, 3], pre.gridThw),
    });
    const summary = pre.items.map((it) => ({ kind: it.kind, grid_thw: it.gridThw, resized: it.resized }));
    if (flag(args, 'json')) process.stdout.write(`${JSON.stringify({ items: summary })}\n`);
    else process.stderr.write(`${summary.length} item(s), ${pre.pixelValues.length / 1536} patch rows → ${out}\n`);
  },
};
