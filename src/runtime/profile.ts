// Reading an ONNX Runtime profile (the JSON trace a session writes with profiling on): time per
// op type and the slowest nodes. The times are what ORT records per node on the host. On CUDA,
// kernels run asynchronously, so a node's time is its launch unless CUDA_LAUNCH_BLOCKING=1 makes
// every launch wait for its kernel; the report says which kind it holds.

import { invalidFile } from '../errors.js';

export interface OpTime {
  readonly op: string;
  readonly provider: string;
  readonly calls: number;
  /** Mean per profiled run, in ms. */
  readonly ms: number;
  /** Of all node time. */
  readonly share: number;
}

export interface NodeTime {
  readonly node: string;
  readonly op: string;
  readonly ms: number;
  readonly share: number;
}

export interface ProfileSummary {
  /** Runs the node times are averaged over. */
  readonly runs: number;
  /** Mean summed node time per run, ms. */
  readonly nodeMs: number;
  /** Mean model_run time per run, ms (wall time of the run as ORT saw it). */
  readonly runMs: number;
  readonly byOp: readonly OpTime[];
  readonly topNodes: readonly NodeTime[];
}

interface TraceEvent {
  readonly cat?: unknown;
  readonly name?: unknown;
  readonly dur?: unknown;
  readonly args?: { readonly op_name?: unknown; readonly provider?: unknown } | undefined;
}

/**
 * Summarizes a parsed trace. `skipRuns` leading runs are warm-up and left out (the first run
 * allocates, and on CUDA tunes kernels). Top `top` nodes by mean time.
 */
export function summarizeProfile(trace: unknown, options: { skipRuns?: number; top?: number } = {}): ProfileSummary {
  if (!Array.isArray(trace)) throw invalidFile('ONNX Runtime profile', 'expected a JSON array of trace events');
  const events = trace as TraceEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const skip = Math.min(options.skipRuns ?? 0, Math.max(0, runs.length - 1));
  const counted = runs.slice(skip);
  if (counted.length === 0) throw invalidFile('ONNX Runtime profile', 'holds no model_run event: run the session before ending the profile');
  // Node events belong to the run whose interval holds them; keep those of the counted runs.
  const firstTs = Number((counted[0] as { ts?: unknown }).ts ?? 0);
  const perOp = new Map<string, { op: string; provider: string; calls: number; us: number }>();
  const perNode = new Map<string, { op: string; us: number }>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || typeof e.name !== 'string' || !e.name.endsWith('_kernel_time') || typeof e.dur !== 'number') continue;
    if (Number((e as { ts?: unknown }).ts ?? 0) < firstTs) continue;
    const op = typeof e.args?.op_name === 'string' ? e.args.op_name : '?';
    const provider = typeof e.args?.provider === 'string' ? e.args.provider.replace(/ExecutionProvider$/, '') : '?';
    const key = `${op}\0${provider}`;
    const entry = perOp.get(key) ?? { op, provider, calls: 0, us: 0 };
    entry.calls++;
    entry.us += e.dur;
    perOp.set(key, entry);
    const node = e.name.slice(0, -'_kernel_time'.length);
    const n = perNode.get(node) ?? { op, us: 0 };
    n.us += e.dur;
    perNode.set(node, n);
    total += e.dur;
  }
  const n = counted.length;
  const ms = (us: number): number => us / 1000 / n;
  const share = (us: number): number => (total > 0 ? us / total : 0);
  return {
    runs: n,
    nodeMs: ms(total),
    runMs: counted.reduce((s, e) => s + Number(e.dur ?? 0), 0) / 1000 / n,
    byOp: [...perOp.values()].sort((a, b) => b.us - a.us).map((o) => ({ op: o.op, provider: o.provider, calls: o.calls / n, ms: ms(o.us), share: share(o.us) })),
    topNodes: [...perNode.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, options.top ?? 15)
      .map(([node, v]) => ({ node, op: v.op, ms: ms(v.us), share: share(v.us) })),
  };
}

/** The summary as two Markdown tables. */
export function profileMarkdown(p: ProfileSummary, title: string): string {
  const f = (x: number): string => (x >= 10 ? x.toFixed(1) : x.toFixed(3));
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  return [
    `#### ${title}`,
    '',
    `${p.runs} profiled runs: model_run ${f(p.runMs)} ms, node time ${f(p.nodeMs)} ms per run.`,
    '',
    '| op type | provider | nodes per run | ms per run | share |',
    '|---|---|---|---|---|',
    ...p.byOp.map((o) => `| ${o.op} | ${o.provider} | ${o.calls} | ${f(o.ms)} | ${pct(o.share)} |`),
    '',
    `| top ${p.topNodes.length} nodes | op | ms per run | share |`,
    '|---|---|---|---|',
    ...p.topNodes.map((x) => `| \`${x.node}\` | ${x.op} | ${f(x.ms)} | ${pct(x.share)} |`),
    '',
  ].join('\n');
}
