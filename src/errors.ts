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
  | 'file_system' // the file system refused a read or write (permission, read-only, full disk, link loop)
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

/**
 * A fix that changes a caller option, named by its API key (`overwrite`, `maxPixels`). Messages
 * spell it as the API does (`pass overwrite: true`); the CLI re-renders the hint with its flags
 * (`pass --force`) and leaves out fixes a command has no flag for (cli/hints.ts).
 */
export interface OptionFix {
  readonly option: string;
  /** 'pass': set the option (to `value`, default true); 'lower' / 'raise': change its value. */
  readonly action: 'pass' | 'lower' | 'raise';
  readonly value?: string | number | boolean;
}

/** A structured hint: option fixes, what they achieve (`then`), and a fix that is no option (`otherwise`). */
export interface Remedy {
  readonly fixes: readonly OptionFix[];
  readonly then?: string;
  readonly otherwise?: string;
}

/** Renders a remedy; `name` spells an option (undefined: the caller has no such option, the fix is left out). */
export function renderRemedy(remedy: Remedy, name: (option: string) => string | undefined): string | undefined {
  const fixes = remedy.fixes.flatMap((fix) => {
    const spelled = name(fix.option);
    return spelled === undefined ? [] : [describeFix(fix, spelled)];
  });
  const text = [fixes.length > 0 ? `${fixes.join(', or ')}${remedy.then ? ` ${remedy.then}` : ''}` : '', remedy.otherwise ?? ''].filter(Boolean).join(', or ');
  return text ? text[0]!.toUpperCase() + text.slice(1) : undefined;
}

/** "lower maxPixels", "pass overwrite: true" (an API key), "pass --force", "pass --graphs buckets" (a CLI flag). */
function describeFix(fix: OptionFix, spelled: string): string {
  if (fix.action !== 'pass') return `${fix.action} ${spelled}`;
  const value = fix.value ?? true;
  if (!spelled.startsWith('--')) return `pass ${spelled}: ${JSON.stringify(value)}`;
  return value === true ? `pass ${spelled}` : `pass ${spelled} ${value}`;
}

/** The API's spelling of an option: its key. */
export const apiOptionName = (option: string): string => option;

export const invalidArgument = (what: string, expected: string, got: unknown, hint?: string | Remedy): VitgraphError => {
  const problem = `${what}: expected ${expected}, got ${describe(got)}`;
  const remedy = typeof hint === 'object' ? { remedy: hint } : {};
  return new VitgraphError('invalid_argument', sentence(problem, typeof hint === 'object' ? renderRemedy(hint, apiOptionName) : hint), { what, expected, got, problem, ...remedy });
};

export const invalidConfig = (field: string, problem: string, hint?: string): VitgraphError => new VitgraphError('invalid_config', sentence(`config field "${field}": ${problem}`, hint), { field });

export const invalidFile = (path: string, problem: string, hint?: string): VitgraphError => new VitgraphError('invalid_file', sentence(`${path}: ${problem}`, hint), { path });

export const notFound = (what: string, path: string, hint?: string): VitgraphError => new VitgraphError('not_found', sentence(`${what} not found: ${path}`, hint), { path });

export const unsupported = (what: string, hint?: string | Remedy): VitgraphError =>
  typeof hint === 'object'
    ? new VitgraphError('unsupported', sentence(what, renderRemedy(hint, apiOptionName)), { problem: what, remedy: hint })
    : new VitgraphError('unsupported', sentence(what, hint));

/** `what` (an encoder, a runtime, a session) was used after close(). */
export const closedError = (what: string, hint = 'Load the model again'): VitgraphError =>
  new VitgraphError('closed', sentence(`${what}: expected an open ${what}, got one that was closed`, hint), { what, reason: 'closed' });

export const inputMismatch = (problem: string, hint?: string, details: Record<string, unknown> = {}): VitgraphError => new VitgraphError('input_mismatch', sentence(problem, hint), details);

export const graphBuild = (node: string, problem: string): VitgraphError => new VitgraphError('graph_build', `${node}: ${problem}`, { node });

export const runtimeError = (problem: string, cause?: unknown): VitgraphError => new VitgraphError('runtime', cause instanceof Error ? `${problem}: ${cause.message}` : problem, {}, { cause });

/** Formats a shape for messages: [3, 'N', 64] → "[3, N, 64]". */
export const formatShape = (shape: readonly (number | string | bigint)[]): string => `[${shape.join(', ')}]`;

function sentence(message: string, hint: string | undefined): string {
  return hint ? `${message}. ${hint}` : message;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return formatShape(value as (number | string)[]);
  return String(value);
}
