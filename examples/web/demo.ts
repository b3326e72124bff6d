// The demo page: load a package (the embedded tiny tower by default), encode a picked, dropped or
// sample image, and show what the tower sees. `window.vitgraphDemo` exposes the same calls to tests.

import { WebEncoder, type BackendPreference, type EncodeResult, type LoadProgress, type WebImageSource } from '../../src/web/index.js';
import { componentColours, principalComponents } from './pca.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const backendSelect = $<HTMLSelectElement>('backend');
backendSelect.value = params.get('backend') ?? 'auto';

let encoder: WebEncoder | undefined;
let modelLine = '';

function status(text: string, error = false): void {
  const box = $('status');
  box.textContent = text;
  box.classList.toggle('error', error);
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (t: number): string => `${t.toFixed(1)} ms`;

async function loadModel(source: string | File[]): Promise<WebEncoder> {
  await encoder?.close();
  encoder = undefined;
  const onProgress = ({ file, loaded, total }: LoadProgress): void => status(`loading ${file}: ${mib(loaded)} / ${mib(total)}`);
  const loaded = await WebEncoder.load(source, { backend: backendSelect.value as BackendPreference, onProgress });
  const { backend, threads, fallback, agreement } = loaded.backend;
  const where = backend === 'webgpu' ? `webgpu (agrees with wasm to ${agreement?.toExponential(1) ?? '?'})` : `wasm (${threads} thread${threads === 1 ? '' : 's'}${crossOriginIsolated ? '' : ', not cross-origin isolated'})`;
  modelLine =
    `model ${loaded.model} (${loaded.dtype}), backend ${where}${fallback ? ` — ${fallback}` : ''}\n` +
    `load: fetch ${ms(loaded.loadTimes.fetch)}, session ${ms(loaded.loadTimes.session)}`;
  status(`${modelLine}\nready: pick, drop or choose an image`);
  encoder = loaded;
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? 0) + 1);
  return loaded;
}

async function encode(sources: WebImageSource[]): Promise<EncodeResult> {
  if (!encoder) throw new Error('no model loaded');
  status(`${modelLine}\nencoding…`);
  const result = await encoder.encode(sources);
  const pcaMs = render(result, encoder);
  const { decode, resize, patchify, encode: run } = result.times;
  status(`${modelLine}\nencoded: decode ${ms(decode)}, resize ${ms(resize)}, normalise+patchify ${ms(patchify)}, encode ${ms(run)}, pca ${ms(pcaMs)}`);
  document.body.dataset.encoded = String(Number(document.body.dataset.encoded ?? 0) + 1);
  return result;
}

/** Draws the first image: resized pixels with its grids, the PCA map, and the facts table; returns the PCA's milliseconds. */
function render(result: EncodeResult, model: WebEncoder): number {
  const item = result.items[0]!;
  const { resized, gridThw, tokens } = item;
  const m = model.processor.mergeSize;
  const p = model.processor.patchSize;

  const view = $<HTMLCanvasElement>('resized');
  view.width = resized.width;
  view.height = resized.height;
  const ctx = view.getContext('2d')!;
  const rgba = new Uint8ClampedArray(resized.width * resized.height * 4).fill(255);
  for (let i = 0, o = 0; o < rgba.length; i += resized.channels, o += 4) {
    for (let c = 0; c < 3; c++) rgba[o + c] = resized.data[i + (resized.channels === 3 ? c : 0)]!;
  }
  ctx.putImageData(new ImageData(rgba, resized.width, resized.height), 0, 0);
  drawGrid(ctx, resized.width, resized.height, p, 'rgba(255,255,255,0.5)', 1);
  drawGrid(ctx, resized.width, resized.height, p * m, 'rgba(255,214,0,0.9)', 1.5);

  const embeds = item.outputs.image_embeds ?? Object.values(item.outputs)[0]!;
  const [rows, cols] = [gridThw[1] / m, gridThw[2] / m];
  const dim = embeds.shape[embeds.shape.length - 1]!;
  const t0 = performance.now();
  const { projections, variances } = principalComponents(embeds.data, tokens, dim, 3);
  const colours = componentColours(projections, tokens, 3); // [rows·cols, 4], row-major over the merged grid
  const pcaMs = performance.now() - t0;
  const pca = $<HTMLCanvasElement>('pca');
  pca.width = cols;
  pca.height = rows;
  pca.getContext('2d')!.putImageData(new ImageData(colours, cols, rows), 0, 0);
  const total = variances.reduce((a, b) => a + b, 0);
  $('pca-caption').textContent = `image_embeds: top 3 principal components as RGB over the ${rows}×${cols} merged grid (variances ${variances.map((v) => v.toFixed(3)).join(', ')}; ${total.toFixed(3)} in all)`;
  $('resized-caption').textContent = `resized to ${resized.width}×${resized.height}: ${gridThw[1]}×${gridThw[2]} patches of ${p} px (thin), ${m}×${m} merge windows (thick)`;

  const facts: [string, string][] = [
    ['grid_thw', `[${gridThw.join(', ')}]`],
    ['patches', String(item.rows)],
    ['tokens', String(tokens)],
    ['pixel_values', `float32 [${result.pixelValues.length / result.patchDim}, ${result.patchDim}]`],
    ...Object.entries(item.outputs).map(([name, t]): [string, string] => [name, `float32 [${t.shape.join(', ')}]`]),
    ['image_embeds[0, :4]', Array.from(embeds.data.subarray(0, 4), (v) => v.toFixed(5)).join(', ')],
    ['backend', model.backend.backend],
  ];
  const table = $('facts');
  table.replaceChildren(
    ...facts.map(([k, v]) => {
      const tr = document.createElement('tr');
      for (const text of [k, v]) tr.appendChild(document.createElement('td')).textContent = text;
      return tr;
    }),
  );
  return pcaMs;
}

function drawGrid(ctx: CanvasRenderingContext2D, width: number, height: number, step: number, colour: string, lineWidth: number): void {
  ctx.strokeStyle = colour;
  ctx.lineWidth = lineWidth;
  ctx.beginPath();
  for (let x = step; x < width; x += step) {
    ctx.moveTo(x, 0);
    ctx.lineTo(x, height);
  }
  for (let y = step; y < height; y += step) {
    ctx.moveTo(0, y);
    ctx.lineTo(width, y);
  }
  ctx.stroke();
}

function guarded(task: () => Promise<unknown>): void {
  task().catch((error: unknown) => status(`${modelLine}\n${(error as Error).message}`, true));
}

$('load-url').addEventListener('click', () => guarded(() => loadModel($<HTMLInputElement>('model-url').value)));
$('model-files').addEventListener('change', (event) => {
  const files = Array.from((event.target as HTMLInputElement).files ?? []);
  if (files.length > 0) guarded(() => loadModel(files));
});
$('image').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) guarded(() => encode([file]));
});
for (const button of document.querySelectorAll<HTMLButtonElement>('button[data-sample]')) {
  button.addEventListener('click', () => guarded(() => encode([button.dataset.sample!])));
}
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) guarded(() => encode([file]));
});

const ready = loadModel(params.get('model') ?? $<HTMLInputElement>('model-url').value);
ready.catch((error: unknown) => status((error as Error).message, true));

declare global {
  interface Window {
    vitgraphDemo: { ready: Promise<WebEncoder>; encode: typeof encode; loadModel: typeof loadModel };
  }
}
window.vitgraphDemo = { ready, encode, loadModel };
