// vitgraph/web in a real browser: Debian's chromium (headless) driven by puppeteer-core opens the
// built demo page (scripts/build-web.mjs into a temp dir, served by scripts/serve-web.mjs with
// COOP/COEP) on the WASM backend and encodes the PNG fixtures with the embedded tiny tower:
//   pixel_values   bit-identical to the Node path (sharp decode + the same preprocessing modules);
//   outputs        within 1e-4 of VisionEncoder (what `vitgraph encode` runs) in Node;
//   JPEG           logged, with a loose bound: browsers' JPEG decoders may differ from libjpeg-turbo.
// The screenshot goes to bench/out/web-demo.png (docs/web-demo.png with VITGRAPH_UPDATE_SCREENSHOT=1).
// Skips, saying so, when chromium is not installed (CHROMIUM_PATH overrides /usr/bin/chromium).

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { preprocess, QWEN3_VL_PROCESSOR, VisionEncoder } from '../index.js';
import { ROOT } from './helpers/files.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Chromium's software WebGPU adapter (SwiftShader): the one WebGPU this machine has. */
const SWIFTSHADER_WEBGPU = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
const PNGS = ['astronaut.png', 'camera.png', 'chelsea.png', 'logo.png'];
const JPEG = 'rocket.jpg';
/** Outputs: float32 CPU kernels of onnxruntime-web vs onnxruntime-node, same graph and weights. */
const ATOL = 1e-4;
/** JPEG pixel levels: different decoders (IDCT, chroma upsampling) may differ by a few levels. */
const JPEG_MAX_LEVELS = 8;

interface PageResult {
  backend: string;
  grid: number[];
  pixelValues: string; // base64 of float32 [N, patchDim]
  times: Record<string, number>;
  outputs: Record<string, { shape: number[]; data: string }>;
}

/** The page's `window.vitgraphDemo` (examples/web/demo.ts), typed here without the DOM library. */
interface DemoPage {
  vitgraphDemo: {
    ready: Promise<{ backend: { backend: string; fallback?: string; agreement?: number } }>;
    loadModel: (url: string) => Promise<unknown>;
    encode: (sources: Uint8Array[]) => Promise<{ gridThw: BigInt64Array; pixelValues: Float32Array; times: Record<string, number>; outputs: Record<string, { shape: number[]; data: Float32Array }> }>;
  };
}
interface PageCanvas {
  width: number;
  height: number;
  getContext: (kind: '2d') => { getImageData: (x: number, y: number, w: number, h: number) => { data: Uint8ClampedArray } };
}

interface Served {
  url: string;
  close: () => Promise<void>;
}

if (!existsSync(CHROMIUM)) {
  test.skip(`browser tests: no chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`, () => {});
} else {
  let browser: Browser;
  let page: Page;
  let server: Served;
  let node: VisionEncoder; // the embedded tiny tower in Node, what the page is held against
  const scratch = mkdtemp(join(tmpdir(), 'vitgraph-web-'));

  test.before(async () => {
    const out = join(await scratch, 'site');
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), out], { encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build-web failed:\n${build.stderr}`);
    const { serveWeb } = (await import(pathToFileURL(join(ROOT, 'scripts/serve-web.mjs')).href)) as { serveWeb: (o: { dir: string; port: number }) => Promise<Served> };
    // A package whose weights no browser buffer holds: only its manifest, which is all load() reads before refusing.
    const manifest = JSON.parse(await readFile(join(out, 'models/tiny/vitgraph.json'), 'utf8')) as { weights: { bytes: number } };
    manifest.weights.bytes = 3 * 2 ** 30;
    await mkdir(join(out, 'models/huge'));
    await writeFile(join(out, 'models/huge/vitgraph.json'), JSON.stringify(manifest));
    server = await serveWeb({ dir: out, port: 0 });
    const profile = join(await scratch, 'chromium-profile');
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, '--disable-gpu', `--user-data-dir=${profile}`],
    });
    node = await VisionEncoder.load(undefined, { threads: 1 });
    page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 720 });
    await page.goto(`${server.url}?backend=wasm`);
    await page.evaluate(() => (globalThis as unknown as DemoPage).vitgraphDemo.ready.then(() => undefined));
  });

  test.after.always(async () => {
    await browser?.close();
    await node?.close();
    await server?.close();
    await rm(await scratch, { recursive: true, force: true });
  });

  test.serial('the demo page encodes a picked PNG on WASM and shows shapes, times and the PCA map', async (t) => {
    const input = await page.$('#image');
    await input!.uploadFile(join(ROOT, 'fixtures/images/astronaut.png'));
    await page.waitForSelector('body[data-encoded="1"]', { timeout: 30_000 });
    const facts = await page.$eval('#facts', (table) => table.textContent ?? '');
    const status = await page.$eval('#status', (box) => box.textContent ?? '');
    t.log(status);
    t.regex(status, /backend wasm \(\d+ threads?\)/);
    t.regex(status, /decode [\d.]+ ms, resize [\d.]+ ms, normalise\+patchify [\d.]+ ms, encode [\d.]+ ms, pca [\d.]+ ms/);
    t.regex(facts, /grid_thw\[1, 32, 32\]/);
    t.regex(facts, /tokens256/);
    t.regex(facts, /image_embedsfloat32 \[256, 80\]/);
    t.regex(facts, /deepstack_embedsfloat32 \[2, 256, 80\]/);
    // The PCA canvas holds one pixel per merged token, and not one flat colour.
    const pca = await page.$eval('#pca', (canvas) => {
      const c = canvas as unknown as PageCanvas;
      const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      return { width: c.width, height: c.height, colours: new Set(Array.from({ length: data.length / 4 }, (_, i) => data.slice(i * 4, i * 4 + 3).join())).size };
    });
    t.deepEqual([pca.width, pca.height], [16, 16]);
    t.true(pca.colours > 100, `${pca.colours} distinct colours`);

    const shot = join(ROOT, 'bench/out/web-demo.png');
    await mkdir(join(ROOT, 'bench/out'), { recursive: true });
    await page.screenshot({ path: shot as `${string}.png` });
    if (process.env.VITGRAPH_UPDATE_SCREENSHOT === '1') await copyFile(shot, join(ROOT, 'docs/web-demo.png'));
  });

  test.serial(`PNG fixtures: pixel_values bit-identical to Node, outputs within ${ATOL} of VisionEncoder`, async (t) => {
    let worst = 0;
    for (const file of PNGS) {
      const path = join(ROOT, 'fixtures/images', file);
      const web = await encodeInPage(page, await readFile(path));
      t.is(web.backend, 'wasm');
      t.log(
        `${file}: grid [${web.grid.join(', ')}], ms ${Object.entries(web.times)
          .map(([stage, ms]) => `${stage} ${ms.toFixed(1)}`)
          .join(', ')}`,
      );
      const inputs = await preprocess([path], { processor: node.processor });
      t.deepEqual(web.grid, Array.from(inputs.gridThw, Number), file);
      const webPixels = Buffer.from(web.pixelValues, 'base64');
      t.true(webPixels.equals(Buffer.from(inputs.pixelValues.buffer)), `${file}: pixel_values differ (max |Δ| ${maxAbsDiff(floats(webPixels), inputs.pixelValues)})`);

      const { outputs } = await node.encode([path]);
      for (const [name, expected] of Object.entries(outputs)) {
        const got = web.outputs[name]!;
        t.deepEqual(got.shape, expected.shape, `${file} ${name} shape`);
        const delta = maxAbsDiff(floats(Buffer.from(got.data, 'base64')), expected.data as Float32Array);
        worst = Math.max(worst, delta);
        t.true(delta <= ATOL, `${file} ${name}: max |Δ| ${delta} > ${ATOL}`);
      }
    }
    t.log(`max |Δ| over ${PNGS.length} PNGs, all outputs: ${worst.toExponential(2)} (tolerance ${ATOL})`);
  });

  test.serial(`backend auto on a WebGPU adapter (SwiftShader): WebGPU is used only if it agrees with WASM, and the outputs stay within ${ATOL}`, async (t) => {
    const gpuBrowser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...SWIFTSHADER_WEBGPU, `--user-data-dir=${join(await scratch, 'chromium-webgpu')}`],
    });
    t.teardown(() => gpuBrowser.close());
    const gpuPage = await gpuBrowser.newPage();
    await gpuPage.goto(`${server.url}?backend=auto`);
    const backend = await gpuPage.evaluate(() => (globalThis as unknown as DemoPage).vitgraphDemo.ready.then((encoder) => encoder.backend));
    t.log(`auto chose ${backend.backend}; WebGPU vs WASM on the probe: max |Δ| ${backend.agreement ?? 'not measured'}${backend.fallback ? ` (${backend.fallback})` : ''}`);
    if (backend.agreement === undefined) {
      t.is(backend.backend, 'wasm'); // no adapter after all: nothing to compare
      return;
    }
    t.is(backend.backend, backend.agreement <= 1e-2 ? 'webgpu' : 'wasm'); // 1e-2: WEBGPU_AGREEMENT in src/web/session.ts
    if (backend.backend === 'wasm') {
      const delta = await chelseaDelta(gpuPage, node);
      t.true(delta <= ATOL, `image_embeds after the fallback: max |Δ| ${delta}`);
    }
  });

  test.serial(`JPEG: the browser's decoder vs sharp, logged (bound ${JPEG_MAX_LEVELS} levels)`, async (t) => {
    const path = join(ROOT, 'fixtures/images', JPEG);
    const web = await encodeInPage(page, await readFile(path));
    const node = await preprocess([path], { processor: QWEN3_VL_PROCESSOR });
    const levels = maxAbsDiff(floats(Buffer.from(web.pixelValues, 'base64')), node.pixelValues) / (2 / 255); // Qwen3-VL: one level = 2/255
    t.log(`${JPEG}: max |Δ| ${levels.toFixed(2)} levels between chromium's decode and sharp's`);
    t.true(levels <= JPEG_MAX_LEVELS);
  });

  test.serial(`a package loaded from picked files encodes like one loaded by URL (within ${ATOL} of VisionEncoder)`, async (t) => {
    const other = await browser.newPage();
    t.teardown(() => other.close());
    await other.goto(`${server.url}?backend=wasm`);
    await other.evaluate(() => (globalThis as unknown as DemoPage).vitgraphDemo.ready.then(() => undefined));
    const tiny = join(await scratch, 'site/models/tiny');
    const picker = await other.$('#model-files');
    await picker!.uploadFile(...['vitgraph.json', 'dynamic.onnx', 'weights.data'].map((file) => join(tiny, file)));
    await other.waitForSelector('body[data-loaded="2"]', { timeout: 30_000 }); // the first load was by URL
    const delta = await chelseaDelta(other, node);
    t.true(delta <= ATOL, `image_embeds: max |Δ| ${delta}`);
  });

  test.serial('a package with a 3 GiB weights file is refused before download, saying what fits and how', async (t) => {
    const other = await browser.newPage();
    t.teardown(() => other.close());
    await other.goto(`${server.url}?backend=wasm&model=models/huge/`);
    const message = await other.evaluate(() =>
      (globalThis as unknown as DemoPage).vitgraphDemo.ready.then(
        () => 'loaded',
        (error: Error) => error.message,
      ),
    );
    t.log(message);
    t.regex(message, /weights\.data: 3\.00 GiB \(float32\): expected at most 2\.00 GiB/);
    t.regex(message, /4 GiB/);
    t.regex(message, /--dtype float16/);
  });
}

/** max |Δ| of chelsea.png's image_embeds between `page` and `node`. */
async function chelseaDelta(page: Page, node: VisionEncoder): Promise<number> {
  const path = join(ROOT, 'fixtures/images/chelsea.png');
  const web = await encodeInPage(page, await readFile(path));
  const { outputs } = await node.encode([path]);
  return maxAbsDiff(floats(Buffer.from(web.outputs.image_embeds!.data, 'base64')), outputs.image_embeds!.data as Float32Array);
}

/** Encodes `bytes` through the page's WebEncoder; returns its inputs and outputs as base64. */
async function encodeInPage(page: Page, bytes: Buffer): Promise<PageResult> {
  return page.evaluate(async (base64: string) => {
    const toBase64 = (view: ArrayBufferView): string => {
      const u8 = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      let text = '';
      for (let i = 0; i < u8.length; i += 0x8000) text += String.fromCharCode(...u8.subarray(i, i + 0x8000));
      return btoa(text);
    };
    const data = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const { vitgraphDemo } = globalThis as unknown as DemoPage;
    const encoder = await vitgraphDemo.ready;
    const result = await vitgraphDemo.encode([data]);
    return {
      backend: encoder.backend.backend,
      grid: Array.from(result.gridThw, Number),
      pixelValues: toBase64(result.pixelValues),
      times: result.times,
      outputs: Object.fromEntries(Object.entries(result.outputs).map(([name, t]) => [name, { shape: t.shape.slice(), data: toBase64(t.data) }])),
    };
  }, bytes.toString('base64'));
}

const floats = (bytes: Buffer): Float32Array => new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
