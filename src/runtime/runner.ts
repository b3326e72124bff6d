// What every backend offers the model layer: named host tensors in, named host tensors out.

import type { HostTensor } from '../tensor.js';
import type { TensorInfo } from './session.js';

export interface Runner {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  run(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>>;
  close(): Promise<void>;
}
