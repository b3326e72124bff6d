import { preprocessToFile } from '../../index.js';
import { flag, requiredStr, str, type Command } from '../args.js';
import { imageOptions, pixelBudget, visualInputs } from '../options.js';

const MODEL = "preprocess for this model: a checkpoint dir (its family's processor + its preprocessor_config.json), a package or a .onnx (default: the embedded tiny tower's, Qwen3-VL's)";

export const preprocessCommand: Command = {
  name: 'preprocess',
  summary: "Images (or frame lists) → pixel_values [N, patch_dim] and grid_thw [I,3] as safetensors, as the model's processor makes them (default: the embedded tiny tower's, Qwen3-VL's).",
  options: {
    ...imageOptions(MODEL, 'where to write pixel_values and grid_thw'),
    json: { type: 'boolean', description: 'print a JSON summary of the items' },
  },
  positionals: '<image…>',
  async run(args) {
    const out = requiredStr(args, 'out');
    const model = str(args, 'model');
    const { items, rows } = await preprocessToFile(visualInputs(args) as Parameters<typeof preprocessToFile>[0], { out, ...(model ? { model } : {}), ...pixelBudget(args) });
    if (flag(args, 'json')) process.stdout.write(`${JSON.stringify({ items })}\n`);
    else process.stderr.write(`${items.length} item(s), ${rows} patch rows → ${out}\n`);
  },
};
