// Images: an allow-list of decoded formats (issue 9 §4). SVG can reference other files and URLs,
// so it is refused unless the caller opts in; opted in, it is rendered from bytes (librsvg gets no
// base URL) and any external reference is refused first, so a neighbouring file never leaks in.

import test, { type ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { VitgraphError } from '../src/errors.js';
import { decodeImage } from '../src/image/decode.js';
import { preprocess } from '../src/image/preprocess.js';
import { tempDir } from './helpers/files.js';
import { QWEN3_VL_PROCESSOR } from '../graphs/qwen3-vl/processor.js';

const RED = { r: 255, g: 0, b: 0 };

/** A directory with secret.png (solid red) and the SVG `body` (blue background) as a.svg. */
async function svgBesideSecret(t: ExecutionContext, body: string): Promise<{ dir: string; svg: string; secret: string }> {
  const dir = await tempDir(t, 'vitgraph-safety-svg-');
  const secret = join(dir, 'secret.png');
  await sharp({ create: { width: 32, height: 32, channels: 3, background: RED } })
    .png()
    .toFile(secret);
  const svg = join(dir, 'a.svg');
  await writeFile(
    svg,
    `<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="32" height="32">` + `<rect width="32" height="32" fill="#0000ff"/>${body}</svg>`,
  );
  return { dir, svg, secret };
}

/** How many pixels are pure red (the secret's colour). */
function redPixels(rgb: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i]! > 200 && rgb[i + 1]! < 50 && rgb[i + 2]! < 50) count++;
  return count;
}

async function rejectsUnsupported(t: ExecutionContext, promise: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await t.throwsAsync(promise, { instanceOf: VitgraphError });
  t.is(error?.code, 'unsupported', error?.message);
  t.regex(error?.message ?? '', message);
}

const IMAGE_REF = '<image href="secret.png" width="32" height="32"/>';

test('an SVG referencing a sibling file is refused by default, by path, bytes and in preprocess', async (t) => {
  const { svg } = await svgBesideSecret(t, IMAGE_REF);
  await rejectsUnsupported(t, decodeImage(svg), /SVG is not decoded by default.*allowSvg: true/);
  await rejectsUnsupported(t, decodeImage(await readFile(svg)), /SVG is not decoded by default/);
  await rejectsUnsupported(t, preprocess([svg], { processor: QWEN3_VL_PROCESSOR }), /SVG is not decoded by default/);
});

for (const [name, body] of [
  ['<image href>', IMAGE_REF],
  ['<image xlink:href>', '<image xlink:href="secret.png" width="32" height="32"/>'],
  ['an absolute file URL', '<image href="file:///etc/hostname" width="32" height="32"/>'],
  ['a CSS url()', '<rect width="32" height="32" style="fill: url(secret.png)"/>'],
  ['a CSS @import', '<style>@import "other.css";</style>'],
  ['an external entity', ''], // replaced below with a DOCTYPE
  ['an XInclude', '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="#x"/>'],
] as const) {
  test(`opted in, an SVG with ${name} is refused and the secret's pixels never appear`, async (t) => {
    const { svg } = await svgBesideSecret(t, body);
    if (name === 'an external entity') {
      const text = await readFile(svg, 'utf8');
      await writeFile(svg, text.replace('<svg', '<!DOCTYPE svg [<!ENTITY s SYSTEM "secret.png">]>\n<svg'));
    }
    await rejectsUnsupported(t, decodeImage(svg, { allowSvg: true }), /SVG: expected a self-contained document/);
    await rejectsUnsupported(t, preprocess([svg], { processor: QWEN3_VL_PROCESSOR, allowSvg: true }), /self-contained/);
  });
}

test('opted in, a self-contained SVG (in-document and data: references) renders', async (t) => {
  const red = (
    await sharp({ create: { width: 2, height: 2, channels: 3, background: RED } })
      .png()
      .toBuffer()
  ).toString('base64');
  const { svg } = await svgBesideSecret(
    t,
    `<defs><linearGradient id="g"><stop offset="0" stop-color="#00ff00"/></linearGradient></defs>` +
      `<rect x="0" y="0" width="16" height="32" fill="url(#g)"/><image x="16" y="0" width="16" height="32" preserveAspectRatio="none" href="data:image/png;base64,${red}"/>`,
  );
  const { data, width, height } = await decodeImage(svg, { allowSvg: true });
  t.deepEqual([width, height], [32, 32]);
  t.deepEqual([...data.subarray(0, 3)], [0, 255, 0], 'left half: the in-document gradient');
  t.is(redPixels(data), 16 * 32, 'right half: the inlined data: image');
  const { gridThw } = await preprocess([svg], { processor: QWEN3_VL_PROCESSOR, allowSvg: true, minPixels: 32 * 32 });
  t.is(gridThw.length, 3);
});

test("the mechanism's premise: librsvg given bytes resolves no file reference, relative or absolute", async (t) => {
  // vitgraph never hands librsvg a path; were the pre-scan missing, this is what would render.
  const { dir, svg, secret } = await svgBesideSecret(t, IMAGE_REF);
  const text = await readFile(svg, 'utf8');
  for (const href of ['secret.png', secret, `file://${secret}`]) {
    const bytes = Buffer.from(text.replace('href="secret.png"', `href="${href}"`));
    const { data } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    t.is(redPixels(new Uint8Array(data)), 0, href);
  }
  // ... while sharp given the path renders the secret, which is why paths are never passed.
  const { data } = await sharp(svg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  t.true(redPixels(new Uint8Array(data)) > 0, `sharp(path) reads ${dir}/secret.png`);
});

test('an SVG sharp instance is refused even when opted in (its bytes cannot be checked)', async (t) => {
  const { svg } = await svgBesideSecret(t, '');
  await rejectsUnsupported(t, decodeImage(sharp(svg)), /SVG is not decoded by default/);
  await rejectsUnsupported(t, decodeImage(sharp(svg), { allowSvg: true }), /SVG is not decoded by default/);
});

test('a format outside the allow-list (libvips .v) is unsupported; the documented formats decode', async (t) => {
  const dir = await tempDir(t, 'vitgraph-safety-formats-');
  const vips = join(dir, 'x.v');
  await sharp({ create: { width: 4, height: 4, channels: 3, background: RED } }).toFile(vips);
  await rejectsUnsupported(t, decodeImage(vips), /vips images are not decoded: expected PNG, JPEG, WebP, GIF, TIFF or AVIF/);
  for (const format of ['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif'] as const) {
    const bytes = await sharp({ create: { width: 8, height: 8, channels: 3, background: RED } })
      .toFormat(format)
      .toBuffer();
    const { width } = await decodeImage(bytes);
    t.is(width, 8, format);
  }
});

test('an SVG whose <svg> tag hides behind a long prologue is still never rendered from its path', async (t) => {
  const { svg } = await svgBesideSecret(t, IMAGE_REF);
  const text = await readFile(svg, 'utf8');
  await writeFile(svg, text.replace('<svg', `<!-- ${'x'.repeat(5000)} -->\n<svg`));
  for (const allowSvg of [false, true]) {
    const error = await t.throwsAsync(decodeImage(svg, { allowSvg }), { instanceOf: VitgraphError });
    t.true(error?.code === 'unsupported' || error?.code === 'invalid_file', error?.message);
  }
});
