import { invalidArgument } from '../../src/errors.js';
import { cacheRoot, clearCache, listCache } from '../../index.js';
import { flag, str, type Command } from '../args.js';

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'List or clear the export cache (checkpoints exported on first use by encode / VisionEncoder).',
  positionals: 'list|clear',
  options: {
    'older-than': { type: 'string', value: '<30d|12h|90m>', description: 'clear: only entries last used longer ago than this' },
    json: { type: 'boolean', description: 'list: print JSON' },
  },
  details:
    'The cache lives in $VITGRAPH_CACHE, else $XDG_CACHE_HOME/vitgraph, else ~/.cache/vitgraph. One entry per\n' +
    '(checkpoint content, dtype): a package whose graphs share one weights file (about the size of the\n' +
    'tower in the export dtype: 1.6 GB for the 2B tower in float32).',
  async run(args) {
    const [action, ...extra] = args.positionals;
    if ((action !== 'list' && action !== 'clear') || extra.length) throw invalidArgument('cache action', 'list or clear', args.positionals.join(' ') || undefined, 'See vitgraph cache --help');
    if (action === 'list') {
      const entries = await listCache();
      if (flag(args, 'json')) {
        process.stdout.write(`${JSON.stringify(entries.map((e) => ({ ...e, lastUsed: e.lastUsed.toISOString() })))}\n`);
        return;
      }
      process.stdout.write(`${cacheRoot()}: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${formatBytes(entries.reduce((s, e) => s + e.bytes, 0))}\n`);
      for (const e of entries) {
        const buckets = e.buckets.length ? ` buckets ${e.buckets.join(',')}` : '';
        process.stdout.write(`  ${formatBytes(e.bytes).padStart(9)}  ${e.model} ${e.dtype}${buckets}  last used ${e.lastUsed.toISOString().slice(0, 16).replace('T', ' ')}  ${e.path}\n`);
      }
      return;
    }
    const olderThan = str(args, 'older-than');
    const { removed, bytes } = await clearCache(olderThan === undefined ? {} : { olderThanMs: parseDuration(olderThan) });
    process.stdout.write(`removed ${removed.length} entr${removed.length === 1 ? 'y' : 'ies'} and temporaries, ${formatBytes(bytes)} freed\n`);
  },
};

const UNITS: Readonly<Record<string, number>> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text);
  if (!match) throw invalidArgument('--older-than', 'a duration like 30d, 12h, 90m or 45s', text);
  return Number(match[1]) * UNITS[match[2]!]!;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
