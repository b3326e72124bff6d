// What the benchmark scripts share: options, logging, and one timed case in its own process.

import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SessionCase, SessionResult } from './session-worker.js';

export const run = promisify(execFile);
export const root = fileURLToPath(new URL('../../', import.meta.url));
/** gitignored: checkpoints, exported graphs, the llama.cpp build. */
export const work = join(root, 'bench', 'out');

const args = process.argv.slice(2);
export const flagged = (name: string): boolean => args.includes(name);
export const option = (name: string, fallback: string): string => (args.includes(name) ? args[args.indexOf(name) + 1]! : fallback);
export const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );
export const log = (s: string): void => void process.stderr.write(`${s}\n`);

/** Runs one case in bench/session-worker.js (its own process: its own load time and peak RSS). */
export async function measure(c: SessionCase): Promise<SessionResult> {
  const { stdout } = await run(process.execPath, [join(root, 'dist', 'bench', 'session-worker.js'), JSON.stringify(c)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as SessionResult;
}

export { agreement } from './agreement.js';
