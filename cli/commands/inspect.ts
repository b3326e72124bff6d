import { inspectModel } from '../../src/onnx/inspect.js';
import { flag, positional, type Command } from '../args.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show an ONNX file: inputs/outputs with shapes, op histogram, opsets, parameter count, metadata.',
  positionals: '<file.onnx>',
  options: {
    json: { type: 'boolean', description: 'print the summary as JSON' },
  },
  async run(args) {
    const summary = await inspectModel(positional(args, 0, 'model path'));
    if (flag(args, 'json')) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    const sig = (s: { name: string; dtype: string; shape: (number | string)[] }): string => `  ${s.name}: ${s.dtype} [${s.shape.join(', ')}]`;
    const lines = [
      `producer: ${summary.producer || '(none)'}   ir_version: ${summary.irVersion}`,
      `opsets: ${Object.entries(summary.opsets).map(([d, v]) => `${d || 'ai.onnx'} ${v}`).join(', ')}`,
      'inputs:',
      ...summary.inputs.map(sig),
      'outputs:',
      ...summary.outputs.map(sig),
      `parameters: ${summary.parameters.toLocaleString('en-US')} in ${summary.initializers} initializers${summary.externalFiles.length ? ` (external: ${summary.externalFiles.join(', ')})` : ''}`,
      `nodes: ${summary.nodes}`,
      'ops:',
      ...Object.entries(summary.ops)
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([opType, n]) => `  ${String(n).padStart(5)}  ${opType}`),
      ...(Object.keys(summary.metadata).length ? ['metadata:', ...Object.entries(summary.metadata).map(([k, v]) => `  ${k}: ${v.length > 120 ? `${v.slice(0, 117)}...` : v}`)] : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};
