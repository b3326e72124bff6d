import { exportModel, PRECISIONS } from '../../index.js';
import { choice, flag, int, intList, requiredStr, type Command } from '../args.js';
import { byteProgress } from '../progress.js';

export const exportCommand: Command = {
  name: 'export',
  summary: 'Build ONNX graphs of a vision tower (Qwen3-VL, Qwen3.5, Qwen2-VL, Qwen2.5-VL; detected from config.json) from a Hugging Face checkpoint.',
  options: {
    model: {
      type: 'string',
      value: '<hf-dir>',
      required: true,
      description: 'model directory: config.json (vision_config or a bare vision config) + *.safetensors; or a Hugging Face hub folder models--org--name[@revision]',
    },
    out: { type: 'string', value: '<file.onnx|dir>', required: true, description: 'a .onnx file, or a package directory (dynamic graph + bucket graphs + vitgraph.json)' },
    variant: { type: 'string', value: 'dynamic|padded', description: 'graph kind for a .onnx output (default dynamic)' },
    'max-patches': { type: 'string', value: '<n[,n…]>', description: 'padded bucket sizes in patches (multiples of 4), e.g. 1024,4096,16384' },
    'max-items': { type: 'string', value: '<n>', description: 'grid rows per padded bucket (default: max-patches / 64, at least 1)' },
    dtype: {
      type: 'string',
      value: PRECISIONS.join('|'),
      description:
        'weight precision (default float32); half precision holds the float16 residual stream at 2^-8 (no overflow where upstream fp16 overflows); bfloat16 needs --device cuda; int8/int4 quantize the Linear layers from the checkpoint (CPU graphs)',
    },
    device: {
      type: 'string',
      value: 'cpu|cuda',
      description: 'the device the graphs are for (default cpu, runs anywhere); cuda allows bfloat16 and keeps float32 attention on the CUDA memory-efficient kernel; refused on CPU',
    },
    opset: { type: 'string', value: '<n>', description: 'ai.onnx opset, 20..24 (default 21)' },
    attention: { type: 'string', value: 'looped|dense', description: 'dynamic-graph attention: fused per segment (default) or decomposed with a dense mask' },
    'external-data': { type: 'string', value: 'auto|always|never', description: 'weights in <file>.data: auto = past 64 MiB of weights (memory-mapped by ONNX Runtime: faster load, less memory)' },
    force: { type: 'boolean', description: 'replace an existing output that vitgraph wrote (a package, a vitgraph .onnx); other files are never replaced' },
    quiet: { type: 'boolean', short: 'q', description: 'no progress on stderr (progress shows only on a terminal)' },
  },
  details: 'Examples:\n  vitgraph export --model ./Qwen3-VL-2B-Instruct --out vision.onnx\n  vitgraph export --model ./Qwen3-VL-2B-Instruct --out pkg/ --max-patches 1024,4096,16384',
  async run(args) {
    const out = requiredStr(args, 'out');
    const quiet = flag(args, 'quiet');
    const result = await exportModel({
      model: requiredStr(args, 'model'),
      out,
      variant: choice(args, 'variant', ['dynamic', 'padded'] as const),
      maxPatches: intList(args, 'max-patches', 4),
      maxItems: int(args, 'max-items', 1),
      dtype: choice(args, 'dtype', PRECISIONS),
      device: choice(args, 'device', ['cpu', 'cuda'] as const),
      opset: int(args, 'opset', 1),
      attention: choice(args, 'attention', ['looped', 'dense'] as const),
      externalData: choice(args, 'external-data', ['auto', 'always', 'never'] as const),
      overwrite: flag(args, 'force'),
      ...(quiet ? {} : { onProgress: byteProgress('writing weights') }),
    });
    for (const file of result.files) process.stdout.write(`${file}\n`);
    if (!quiet) process.stderr.write(`exported ${result.model}: ${result.graphs} graph${result.graphs === 1 ? '' : 's'} (${(result.parameters / 1e6).toFixed(1)} M parameters) to ${out}\n`);
  },
};
