// JSON.parse keeps the last of two equal keys in an object without a word, so a safetensors
// header naming one tensor twice would silently bind the second entry. This scanner walks the
// (already parsed, hence valid) JSON text once and reports the first key an object repeats.

export interface DuplicateKey {
  /** The repeated key, decoded. */
  readonly key: string;
  /** The key of the object holding it (undefined: the top-level object). */
  readonly parent: string | undefined;
}

interface Frame {
  /** Keys seen so far; undefined for an array. */
  readonly keys: Set<string> | undefined;
  /** The key under which this object or array sits in its parent. */
  readonly name: string | undefined;
}

/**
 * The first key that some object of `text` repeats, or undefined. `text` must be valid JSON
 * (call after JSON.parse succeeded): only strings, brackets, colons and commas are looked at.
 */
export function firstDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  let expectKey = false;
  let lastKey: string | undefined; // the key whose value is being read in the innermost object
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return { key, parent: top.name };
        top.keys.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const name = stack[stack.length - 1]?.keys ? lastKey : stack[stack.length - 1]?.name;
      stack.push({ keys: c === 0x7b ? new Set() : undefined, name });
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1]?.keys !== undefined;
    }
  }
  return undefined;
}

/** Index of the closing quote of the string literal opening at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22) return i;
  }
  return text.length - 1;
}
