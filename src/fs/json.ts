// JSON read from files is untrusted: nesting is bounded before parsing (V8 parses deep JSON but
// every later walk, JSON.stringify included, recurses and overflows the stack), and a parse error
// never quotes the text (V8's message does: a config.json linked to /etc/passwd printed its first line).

import { invalidFile } from '../errors.js';

/** Deeper nesting than any config, index, manifest or safetensors header needs (they use 2–6). */
export const MAX_JSON_DEPTH = 64;

/** Parses `text` read from `path`; invalid_file naming the path (never its content) when it is not JSON or nests too deep. */
export function parseJsonFile(text: string, path: string, what = 'file'): unknown {
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw invalidFile(path, `expected ${what} to be JSON nested at most ${MAX_JSON_DEPTH} levels, got deeper nesting`, 'The file is corrupt or not what it claims to be');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const at = /position (\d+)/.exec((error as Error).message)?.[1];
    throw invalidFile(path, `expected ${what} to be JSON, got text that does not parse${at ? ` (at byte ${at})` : ''}`, 'The file is corrupt or not what it claims to be');
  }
}

/** The deepest bracket nesting of `text`, strings skipped; stops counting once past the limit. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c /* \ */) i++;
        else if (s === 0x22) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > deepest) deepest = depth;
      if (deepest > MAX_JSON_DEPTH) return deepest;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return deepest;
}
