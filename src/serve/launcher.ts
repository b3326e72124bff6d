// A server started through `npx vitgraph serve` / `npm exec` / `npm run` runs under npm (and the
// `sh -c` npm spawns). A SIGTERM to npm ends npm but does not reach the server, which would keep its
// port forever (under Kubernetes, a pod whose PID 1 is npx never drains). So the server watches the
// process chain up to npm and treats npm's exit like a SIGTERM.

import { readFileSync } from 'node:fs';

/** How often the chain is checked: a server outlives its npm by at most this long plus its drain. */
const POLL_MS = 500;
/** npm is at most this many parents up (node ← sh ← npm; ← sh ← npm for a nested npm run). */
const MAX_DEPTH = 4;

/** True when npm (or npx) started this process: npm sets npm_command for every script and exec. */
export const startedByNpm = (env: NodeJS.ProcessEnv = process.env): boolean => env.npm_command !== undefined || env.npm_lifecycle_event !== undefined;

/** `pid`'s parent and command line from /proc (Linux); undefined where /proc cannot say. */
function procInfo(pid: number): { ppid: number; command: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name "(…)", which may itself hold spaces or parentheses: state, ppid, …
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    return Number.isInteger(ppid) ? { ppid, command } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The chain of [child, parent] links from this process up to the nearest npm process (npm renames
 * its process "npm exec …" / "npm run …"). Without /proc, or with no npm found, only the first link.
 */
export function launcherChain(): [child: number, parent: number][] {
  const links: [number, number][] = [[process.pid, process.ppid]];
  let pid = process.ppid;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const info = procInfo(pid);
    if (!info) break;
    if (/^npm( |$)|\/npm(-cli\.js)?( |$)|\/npx(-cli\.js)?( |$)/.test(info.command)) return links;
    if (info.ppid <= 1) break;
    links.push([pid, info.ppid]);
    pid = info.ppid;
  }
  return links.slice(0, 1);
}

/**
 * Calls `onGone` once when any process of the chain to npm has exited (its child was re-parented,
 * which happens at the exit itself, even while the parent is an unreaped zombie). Returns a stop function.
 */
export function watchLauncher(onGone: () => void, pollMs = POLL_MS): () => void {
  const links = launcherChain();
  const parentOf = (pid: number): number | undefined => (pid === process.pid ? process.ppid : procInfo(pid)?.ppid);
  const timer = setInterval(() => {
    if (links.every(([child, parent]) => parentOf(child) === parent)) return;
    clearInterval(timer);
    onGone();
  }, pollMs);
  timer.unref(); // never what keeps the process alive
  return () => clearInterval(timer);
}
