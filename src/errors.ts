// The error vocabulary of vitgraph's public boundary.
// Messages read "what: expected X, got Y" and, where there is one, what to do about it.
// The CLI prints `error.message` alone (no stack) for any VitgraphError.

export type ErrorCode =
  | 'invalid_argument' // a caller passed a value that can never work (bad option, bad shape)
  | 'invalid_config' // config.json is missing a field or breaks an invariant
  | 'invalid_file' // a file exists but its content is corrupt or lying (safetensors header, image bytes)
  | 'weight_binding' // a checkpoint tensor is missing, extra, or has the wrong shape/dtype
  | 'graph_build' // an op was given operands it cannot take (dtype/shape mismatch at build time)
  | 'input_mismatch' // runtime inputs contradict each other (grid_thw vs pixel rows)
  | 'not_found' // a path or resource does not exist
  | 'unsupported' // valid request this build cannot serve (missing native backend, no GPU, ...)
  | 'closed' // the encoder, runtime or session was closed: pending and later calls are refused
  | 'runtime'; // ONNX Runtime or the native layer failed

export class VitgraphError extends Error {
  readonly code: ErrorCode;
  /** Structured details for programmatic callers (tensor names, shapes, paths, ...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VitgraphError';
    this.code = code;
    this.details = details;
  }
}

export const invalidArgument = (what: string, expected: string, got: unknown, hint?: string): VitgraphError =>
  new VitgraphError('invalid_argument', sentence(`${what}: expected ${expected}, got ${describe(got)}`, hint), {
    what,
    expected,
    got,
  });

export const invalidConfig = (field: string, problem: string, hint?: string): VitgraphError =>
  new VitgraphError('invalid_config', sentence(`config field "${field}": ${problem}`, hint), { field });

export const invalidFile = (path: string, problem: string, hint?: string): VitgraphError =>
  new VitgraphError('invalid_file', sentence(`${path}: ${problem}`, hint), { path });

export const notFound = (what: string, path: string, hint?: string): VitgraphError =>
  new VitgraphError('not_found', sentence(`${what} not found: ${path}`, hint), { path });

export const unsupported = (what: string, hint?: string): VitgraphError =>
  new VitgraphError('unsupported', sentence(what, hint));

/** `what` (an encoder, a runtime, a session) was used after close(). */
export const closedError = (what: string, hint = 'Load the model again'): VitgraphError =>
  new VitgraphError('closed', sentence(`${what}: expected an open ${what}, got one that was closed`, hint), { what, reason: 'closed' });

export const inputMismatch = (problem: string, hint?: string, details: Record<string, unknown> = {}): VitgraphError =>
  new VitgraphError('input_mismatch', sentence(problem, hint), details);

export const graphBuild = (node: string, problem: string): VitgraphError =>
  new VitgraphError('graph_build', `${node}: ${problem}`, { node });

export const runtimeError = (problem: string, cause?: unknown): VitgraphError =>
  new VitgraphError('runtime', cause instanceof Error ? `${problem}: ${cause.message}` : problem, {}, { cause });

/** Formats a shape for messages: [3, 'N', 64] → "[3, N, 64]". */
export const formatShape = (shape: readonly (number | string | bigint)[]): string => `[${shape.join(', ')}]`;

function sentence(message: string, hint?: string): string {
  return hint ? `${message}. ${hint}` : message;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return formatShape(value as (number | string)[]);
  return String(value);
}
