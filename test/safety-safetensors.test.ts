// Duplicate keys in a safetensors header (issue 9 §8): JSON.parse keeps the last of two equal
// keys silently, so the header is scanned for repeats, whatever escapes spell them.

import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VitgraphError } from '../src/errors.js';
import { firstDuplicateKey } from '../src/weights/json-duplicates.js';
import { readSafetensors, readSafetensorsHeader } from '../src/weights/safetensors.js';
import { tempDir } from './helpers/files.js';

/** A safetensors file with `json` as its header (as written) and 16 data bytes. */
function fileWithHeader(json: string): Uint8Array {
  const header = new TextEncoder().encode(json);
  const bytes = new Uint8Array(8 + header.byteLength + 16);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  bytes.set(header, 8);
  return bytes;
}

const entry = (begin: number, end: number): string => `{"dtype":"U8","shape":[${end - begin}],"data_offsets":[${begin},${end}]}`;

test('a tensor named twice, once through a \\u escape, is invalid_file naming it (today the last one wins)', async (t) => {
  const path = join(await tempDir(t), 'dup.safetensors');
  await writeFile(path, fileWithHeader(`{"w":${entry(0, 8)},"\\u0077":${entry(8, 16)}}`));
  for (const read of [readSafetensorsHeader, readSafetensors]) {
    const error = await t.throwsAsync(read(path), { instanceOf: VitgraphError });
    t.is(error?.code, 'invalid_file');
    t.regex(error?.message ?? '', /expected unique keys, got "w" twice in the header/);
  }
});

test('unique keys pass, including equal keys in different objects', async (t) => {
  const path = join(await tempDir(t), 'ok.safetensors');
  await writeFile(path, fileWithHeader(`{"__metadata__":{"a":"1"},"a":${entry(0, 8)},"b":${entry(8, 16)}}`));
  t.deepEqual([...(await readSafetensorsHeader(path)).entries.keys()], ['a', 'b']);
});

test('firstDuplicateKey: nesting, arrays, escaped quotes and strings that look like keys', (t) => {
  t.is(firstDuplicateKey('{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}'), undefined);
  t.deepEqual(firstDuplicateKey('{"a":1,"b":{"x":2,"x":3}}'), { key: 'x', parent: 'b' });
  t.deepEqual(firstDuplicateKey('{"c":[{"k":1,"k":2}]}'), { key: 'k', parent: 'c' });
  t.is(firstDuplicateKey('{"a":"\\"a\\"","b":"a","c":["a","a"]}'), undefined);
  t.deepEqual(firstDuplicateKey('{"a\\"":1,"a\\u0022":2}'), { key: 'a"', parent: undefined });
});
