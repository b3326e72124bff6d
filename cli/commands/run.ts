import { runModelFile } from '../../index.js';
import { requiredStr, type Command } from '../args.js';
import { BACKEND_OPTIONS, backendOptions, GRAPH_FILE_OPTIONS, GRAPHS_OPTION, graphsChoice } from '../options.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'Run an ONNX graph once: each graph input from the same-named tensor of --inputs, every output to --out.',
  options: {
    ...GRAPH_FILE_OPTIONS,
    out: { type: 'string', value: '<out.safetensors>', required: true, description: 'where to write every graph output' },
    ...BACKEND_OPTIONS,
    ...GRAPHS_OPTION,
  },
  details:
    'For an encoder graph: --inputs holds pixel_values [N, patch_dim] float32 and grid_thw [I,3] int64;\n--out gets every named output (image_embeds; Qwen3-VL adds deepstack_embeds). Padded graphs are padded and sliced to the real tokens.',
  async run(args) {
    const out = requiredStr(args, 'out');
    const result = await runModelFile({ model: requiredStr(args, 'onnx'), inputs: requiredStr(args, 'inputs'), out, ...backendOptions(args), ...graphsChoice(args) });
    for (const [name, t] of Object.entries(result.outputs)) process.stderr.write(`${name}: ${t.dtype} [${t.shape.join(', ')}]\n`);
    process.stderr.write(`ran in ${result.ms.toFixed(1)} ms, wrote ${out}\n`);
  },
};
