// vitgraph's command line: a thin shell over the library, one exported function per command.

import { VitgraphError } from '../src/errors.js';
import { VITGRAPH_VERSION } from '../src/version.js';
import { commandHelp, parseCommandArgs, type Command } from './args.js';
import { benchCommand } from './commands/bench.js';
import { cacheCommand } from './commands/cache.js';
import { encodeCommand } from './commands/encode.js';
import { exportCommand } from './commands/export.js';
import { inspectCommand } from './commands/inspect.js';
import { preprocessCommand } from './commands/preprocess.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { synthCommand } from './commands/synth.js';
import { cliMessage } from './hints.js';

export const COMMANDS: readonly Command[] = [encodeCommand, preprocessCommand, exportCommand, runCommand, benchCommand, inspectCommand, synthCommand, cacheCommand, serveCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    `vitgraph ${VITGRAPH_VERSION} — Qwen VL vision encoders (Qwen3-VL, Qwen3.5, Qwen2-VL, Qwen2.5-VL) as ONNX graphs, run with ONNX Runtime`,
    '',
    'Usage: vitgraph <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    "Run `vitgraph help <command>` (or `vitgraph <command> --help`) for a command's options.",
  ].join('\n');
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest.length > 0) return main([rest[0]!, '--help']);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VITGRAPH_VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`vitgraph: unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(', ')}\n`);
    return 2;
  }
  const debug = rest.includes('--debug');
  try {
    const args = parseCommandArgs(command, rest);
    if (args.help) {
      process.stdout.write(`${commandHelp(command)}\n`);
      return 0;
    }
    await command.run(args);
    return 0;
  } catch (error) {
    if (debug) process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    const message = error instanceof VitgraphError ? cliMessage(error, command) : `unexpected error: ${(error as Error).message ?? String(error)}`;
    process.stderr.write(`vitgraph ${command.name}: ${message.split('\n')[0]}\n`);
    return 1;
  }
}
