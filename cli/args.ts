// A small command framework over node:util parseArgs: typed options, generated --help,
// and numbers/choices checked with errors that name the flag.

import { parseArgs } from 'node:util';
import { VitgraphError, invalidArgument } from '../src/errors.js';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  readonly short?: string;
  /** Shown in --help as the value's name, e.g. <file.onnx>. */
  readonly value?: string;
  readonly required?: boolean;
  readonly multiple?: boolean;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Positional arguments as shown in usage, e.g. '<file.onnx>'. */
  readonly positionals?: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Extra help text (examples, notes). */
  readonly details?: string;
  run(args: ParsedArgs): Promise<void>;
}

export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
  /** Positionals (no `option`) and option values in command-line order. */
  readonly sequence: readonly { readonly option?: string; readonly value: string }[];
}

export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  debug: { type: 'boolean', description: 'print stack traces on errors' },
};

export function parseCommandArgs(command: Command, argv: readonly string[]): ParsedArgs & { help: boolean } {
  const options = { ...command.options, ...COMMON_OPTIONS };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }])),
    });
  } catch (error) {
    throw optionError(command, error as Error & { code?: string });
  }
  const help = parsed.values.help === true;
  if (!help) {
    for (const [name, o] of Object.entries(command.options)) {
      if (o.required && parsed.values[name] === undefined) {
        throw invalidArgument(`--${name}`, o.value ?? 'a value', undefined, `See vitgraph ${command.name} --help`);
      }
    }
  }
  const sequence = parsed.tokens.flatMap((t) => (t.kind === 'positional' ? [{ value: t.value }] : t.kind === 'option' && typeof t.value === 'string' ? [{ option: t.name, value: t.value }] : []));
  return { values: parsed.values, positionals: parsed.positionals, sequence, help };
}

/**
 * One plain line for node's parseArgs errors, whose messages quote the flag and, for unknown
 * options, append advice in nested quotes ("... as in '-- \"--x\"'").
 */
function optionError(command: Command, error: Error & { code?: string }): VitgraphError {
  const flag = /'(-[^' ]+)/.exec(error.message)?.[1] ?? '';
  const help = `See vitgraph ${command.name} --help`;
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new VitgraphError('invalid_argument', `unknown option ${flag}. ${help}`, { option: flag });
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new VitgraphError('invalid_argument', `${flag}: ${/does not take/.test(error.message) ? 'takes no value' : 'expected a value, got nothing'}. ${help}`, { option: flag });
    default:
      return new VitgraphError('invalid_argument', `${error.message.split('\n')[0]!.replace(/'/g, '').replace(/\.$/, '')}. ${help}`, {});
  }
}

export function commandHelp(command: Command): string {
  const rows = Object.entries({ ...command.options, ...COMMON_OPTIONS }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    return [flag, `${o.description}${o.required ? ' (required)' : ''}`] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [
    `Usage: vitgraph ${command.name}${command.positionals ? ` ${command.positionals}` : ''} [options]`,
    '',
    command.summary,
    '',
    'Options:',
    ...rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`),
    ...(command.details ? ['', command.details] : []),
  ].join('\n');
}

// ---- typed accessors -----------------------------------------------------------------------

export const str = (args: ParsedArgs, name: string): string | undefined => {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
};

export const requiredStr = (args: ParsedArgs, name: string): string => {
  const v = str(args, name);
  if (v === undefined) throw invalidArgument(`--${name}`, 'a value', undefined);
  return v;
};

export const flag = (args: ParsedArgs, name: string): boolean => args.values[name] === true;

export function int(args: ParsedArgs, name: string, min = 0): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) throw invalidArgument(`--${name}`, `an integer ≥ ${min}`, v);
  return n;
}

export function intList(args: ParsedArgs, name: string, min = 1): number[] | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  return v.split(',').map((part) => {
    const n = Number(part.trim());
    if (!/^\d+$/.test(part.trim()) || n < min) throw invalidArgument(`--${name}`, `comma-separated integers ≥ ${min}`, v);
    return n;
  });
}

export function choice<T extends string>(args: ParsedArgs, name: string, choices: readonly T[]): T | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  if (!choices.includes(v as T)) throw invalidArgument(`--${name}`, `one of ${choices.join(', ')}`, v);
  return v as T;
}

export function positional(args: ParsedArgs, index: number, what: string): string {
  const v = args.positionals[index];
  if (v === undefined) throw invalidArgument(what, 'a value', undefined);
  return v;
}
