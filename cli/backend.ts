// --backend/--device/--device-id/--no-cuda-graph/--threads, shared by run, bench and encode.

import type { BackendOptions } from '../src/runtime/backend.js';
import { choice, flag, int, str, type OptionSpec, type ParsedArgs } from './args.js';

export const BACKEND_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  backend: { type: 'string', value: 'ort-node|native', description: 'onnxruntime-node (CPU, default) or the native addon (IO binding; CUDA graphs on --device cuda)' },
  device: { type: 'string', value: 'cpu|cuda', description: 'execution device (default cpu; cuda implies --backend native)' },
  'device-id': { type: 'string', value: '<n>', description: 'CUDA device ordinal (default 0)' },
  'no-cuda-graph': { type: 'boolean', description: 'on CUDA, run eagerly instead of capturing a CUDA graph per bucket' },
  tf32: { type: 'boolean', description: 'on CUDA, let float32 matmuls use TF32 tensor cores (faster, ~1e-3 error; default off: exact float32)' },
  threads: { type: 'string', value: '<n>', description: 'intra-op threads (default: all cores)' },
  profile: { type: 'string', value: '<prefix>', description: 'write an ONNX Runtime profile (JSON trace) per session, named <prefix>_<date>.json' },
  'no-verify': { type: 'boolean', description: "open a package without checking its files' sha256 against vitgraph.json (checked by default; cheap after the first open)" },
};

export function backendOptions(args: ParsedArgs): BackendOptions {
  const backend = choice(args, 'backend', ['ort-node', 'native'] as const);
  const device = choice(args, 'device', ['cpu', 'cuda'] as const);
  const deviceId = int(args, 'device-id', 0);
  const threads = int(args, 'threads', 1);
  const profilePrefix = str(args, 'profile');
  return {
    ...(profilePrefix ? { profilePrefix } : {}),
    ...(backend ? { backend } : {}),
    ...(device ? { device } : {}),
    ...(deviceId !== undefined ? { deviceId } : {}),
    ...(flag(args, 'no-cuda-graph') ? { cudaGraph: false } : {}),
    ...(flag(args, 'tf32') ? { tf32: true } : {}),
    ...(threads ? { threads } : {}),
    ...(flag(args, 'no-verify') ? { verify: false } : {}),
  };
}

/**
 * The native backend runs the padded bucket graphs even on CPU; unasked, that changes what runs
 * (and, for a checkpoint, adds buckets to its cache entry), so it is said in one line. On CUDA the
 * buckets are the point (CUDA graphs) and the help says so.
 */
export function bucketNotice(backend: BackendOptions, graphs: string | undefined, quiet: boolean, stream: Pick<NodeJS.WriteStream, 'write'> = process.stderr): void {
  if (quiet || graphs !== undefined || backend.backend !== 'native' || backend.device === 'cuda') return;
  stream.write('note: --backend native runs the padded bucket graphs (as --graphs buckets); a checkpoint exports them into its cache entry on first use\n');
}
