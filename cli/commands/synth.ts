import { synthCheckpoint, synthPresets } from '../../index.js';
import { choice, flag, int, requiredStr, type Command } from '../args.js';
import { byteProgress } from '../progress.js';

export const synthCommand: Command = {
  name: 'synth',
  summary: 'Write a random-weight checkpoint with the real tower shapes (HF layout) for testing deployments.',
  options: {
    preset: {
      type: 'string',
      value: '<name>',
      required: true,
      description: `tower shape: ${synthPresets()
        .map((p) => p.name)
        .join(', ')} (2b: Qwen3-VL-2B/4B vision, 8b: Qwen3-VL-8B/32B/MoE vision)`,
    },
    out: { type: 'string', value: '<dir>', required: true, description: 'directory for config.json + model.safetensors' },
    seed: { type: 'string', value: '<n>', description: 'random seed (default 0)' },
    dtype: { type: 'string', value: 'float32|bfloat16', description: 'stored weight dtype (default float32)' },
    force: { type: 'boolean', description: 'replace an existing checkpoint in --out' },
    quiet: { type: 'boolean', short: 'q', description: 'no progress on stderr (progress shows only on a terminal)' },
  },
  async run(args) {
    const seed = int(args, 'seed', 0);
    const dtype = choice(args, 'dtype', ['float32', 'bfloat16'] as const);
    const result = await synthCheckpoint(requiredStr(args, 'out'), requiredStr(args, 'preset'), {
      ...(seed !== undefined ? { seed } : {}),
      ...(dtype ? { dtype } : {}),
      overwrite: flag(args, 'force'),
      ...(flag(args, 'quiet') ? {} : { onProgress: byteProgress('writing weights') }),
    });
    process.stdout.write(`${result.configPath}\n${result.weightsPath}\n`);
    process.stderr.write(`${result.model} checkpoint, ${(result.bytes / 2 ** 20).toFixed(1)} MiB of random weights\n`);
  },
};
