// Options of VisionEncoder.load that only some models can honour. Silently ignoring one changes
// what is measured (an int8 run that encodes in float32), so a conflict is a typed error.

import { invalidArgument } from './errors.js';

export interface ModelOptionConflicts {
  readonly dtype?: string | undefined;
  readonly graphs?: 'dynamic' | 'buckets' | undefined;
}

/**
 * Refuses options the model at hand cannot honour: `dtype` chooses the precision of a checkpoint's
 * first-use export, so a .onnx file or a package (exported already, in its own precision) cannot
 * take it; `graphs: 'buckets'` picks a package's padded graphs, which a single .onnx file has not.
 */
export function checkModelOptions(kind: 'onnx' | 'package', options: ModelOptionConflicts): void {
  const what = kind === 'onnx' ? 'a .onnx file' : 'an exported package';
  if (options.dtype !== undefined) {
    throw invalidArgument(
      'dtype',
      'no dtype for a model exported already',
      `${options.dtype} with ${what}`,
      `It keeps the precision it was exported in (inspect shows it): drop the dtype, or pass the checkpoint directory to export it in ${options.dtype}`,
    );
  }
  if (kind === 'onnx' && options.graphs === 'buckets') {
    throw invalidArgument(
      'graphs',
      'dynamic (or nothing) for a single .onnx file',
      'buckets',
      'A .onnx file is one graph; bucket graphs come in a package directory (vitgraph export --out <dir>) or from a checkpoint',
    );
  }
}
