// Library errors name options as the API spells them (`overwrite`, `maxPixels`) and carry them in
// structured fields (VitgraphError.details: `what`, `problem`, `remedy`). The CLI re-renders those
// with its flags, one table for every command, and leaves out fixes the command has no flag for.

import { renderRemedy, type Remedy, type VitgraphError } from '../src/errors.js';
import type { Command } from './args.js';

/** API option key → CLI flag, where the two differ beyond camelCase → kebab-case. */
const FLAG_OF_OPTION: Readonly<Record<string, string>> = {
  overwrite: 'force',
};
/** API options whose flag does not take the option's value as such (--no-cuda-graph is cudaGraph: false). */
const NO_DIRECT_FLAG = new Set(['cudaGraph']);

/** The flag `command` offers for an API option key, e.g. maxPixels → --max-pixels; undefined when it has none. */
export function flagFor(command: Command, option: string): string | undefined {
  if (NO_DIRECT_FLAG.has(option)) return undefined;
  const flag = FLAG_OF_OPTION[option] ?? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return flag in command.options ? `--${flag}` : undefined;
}

/** The error's message with API option names replaced by `command`'s flags. */
export function cliMessage(error: VitgraphError, command: Command): string {
  const { what, problem, remedy } = error.details as { what?: unknown; problem?: unknown; remedy?: Remedy };
  if (typeof problem !== 'string') return error.message;
  const subject = typeof what === 'string' ? flagFor(command, what) : undefined;
  const head = subject && problem.startsWith(`${what as string}:`) ? `${subject}${problem.slice((what as string).length)}` : problem;
  const hint = remedy ? renderRemedy(remedy, (option) => flagFor(command, option)) : error.message.slice(problem.length + 2) || undefined;
  return hint ? `${head}. ${hint}` : head;
}
