// Is CUDA usable here, before any slow work (a first-use export of a checkpoint)? Opens a native
// CUDA session on a one-node graph, so the addon's own probe runs: provider library beside the
// ORT core, its CUDA/cuDNN dependencies, a visible device, device_id in range.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, modelToBytes, op } from '../onnx/index.js';
import { resolveBackend, type BackendOptions } from './backend.js';
import { NativeSession } from './native/index.js';

/** Opset of the probe graph: one Add, understood by every ORT the addon supports. */
const PROBE_OPSET = 17;

/**
 * Resolves when `options` ask for the CPU, or when a CUDA session opens; otherwise throws the
 * native backend's VitgraphError ('unsupported', naming what is missing and how to get it).
 */
export async function checkCudaUsable(options: BackendOptions): Promise<void> {
  if (resolveBackend(options).device !== 'cuda') return;
  const graph = new GraphBuilder({ name: 'cuda_probe' });
  const x = graph.input('x', 'float32', [1]);
  graph.output(op.add(x, x), 'y');
  const dir = await mkdtemp(join(tmpdir(), 'vitgraph-cuda-probe-'));
  try {
    const path = join(dir, 'probe.onnx');
    await writeFile(path, await modelToBytes(graph, { opset: PROBE_OPSET }));
    const session = await NativeSession.create(path, {
      device: 'cuda',
      ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}),
      ...(options.ortLibraryPath ? { ortLibraryPath: options.ortLibraryPath } : {}),
    });
    await session.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
