import { inspectPath, type ModelSummary, type PackageSummary } from '../../index.js';
import { flag, positional, type Command } from '../args.js';

const sig = (s: { name: string; dtype: string; shape: (number | string)[] }): string => `  ${s.name}: ${s.dtype} [${s.shape.join(', ')}]`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function graphLines(summary: ModelSummary): string[] {
  return [
    `producer: ${summary.producer || '(none)'}   ir_version: ${summary.irVersion}`,
    `opsets: ${Object.entries(summary.opsets)
      .map(([d, v]) => `${d || 'ai.onnx'} ${v}`)
      .join(', ')}`,
    'inputs:',
    ...summary.inputs.map(sig),
    'outputs:',
    ...summary.outputs.map(sig),
    `parameters: ${summary.parameters.toLocaleString('en-US')} in ${summary.initializers} initializers${summary.externalFiles.length ? ` (external: ${summary.externalFiles.join(', ')})` : ''}`,
    `nodes: ${summary.nodes}`,
  ];
}

function modelLines(summary: ModelSummary): string[] {
  return [
    ...graphLines(summary),
    'ops:',
    ...Object.entries(summary.ops)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([opType, n]) => `  ${String(n).padStart(5)}  ${opType}`),
    ...(Object.keys(summary.metadata).length ? ['metadata:', ...Object.entries(summary.metadata).map(([k, v]) => `  ${k}: ${v.length > 120 ? `${v.slice(0, 117)}...` : v}`)] : []),
  ];
}

function packageLines(pkg: PackageSummary): string[] {
  return [
    `package: ${pkg.dir}`,
    `model: ${pkg.model}   dtype: ${pkg.dtype}${pkg.quantization ? ` (${pkg.quantization})` : ''}   device: ${pkg.device ?? 'any'}   opset: ${pkg.opset}   vitgraph: ${pkg.vitgraph}`,
    ...(pkg.weights ? [`weights: ${pkg.weights.file} (${mib(pkg.weights.bytes)}, shared by every graph)`] : []),
    ...pkg.graphs.flatMap((g) => ['', `== ${g.file}: ${g.variant}${g.variant === 'padded' ? ` bucket, ${g.maxPatches} patches, ${g.maxItems} items` : ''}`, ...graphLines(g)]),
  ];
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show an ONNX file (inputs/outputs, op histogram, opsets, parameters, metadata) or an exported package (manifest + each graph).',
  positionals: '<file.onnx|package dir>',
  options: {
    json: { type: 'boolean', description: 'print the summary as JSON' },
  },
  async run(args) {
    const path = positional(args, 0, 'model path');
    const inspected = await inspectPath(path);
    if (flag(args, 'json')) {
      process.stdout.write(`${JSON.stringify(inspected.summary, null, 2)}\n`);
      return;
    }
    const lines = inspected.kind === 'package' ? packageLines(inspected.summary) : modelLines(inspected.summary);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};
