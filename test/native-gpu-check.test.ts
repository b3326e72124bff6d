// The device check's harness, run on CPU: the synthetic case source, a case source module loaded
// by path (with a golden that must fail), the time budget, the CUDA skip, and scripts/gpu-check.sh.

import anyTest from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { nativeAddonFile } from '../src/runtime/native/index.js';
import { reportMarkdown, runCheck } from '../scripts/gpu-check.js';

const addonFile = nativeAddonFile();
const test = addonFile.built ? anyTest.serial : anyTest.serial.skip;
if (!addonFile.built) console.log(`native tests skipped: the addon is not built (${addonFile.path}); run npm run build:native`);

const root = fileURLToPath(new URL('../../', import.meta.url));
const gpuPresent = spawnSync('nvidia-smi', ['-L']).status === 0;
const quiet = (): void => undefined;

test('on CPU: goldens pass, native equals onnxruntime-node bit for bit, latency is measured, CUDA parts skip', async (t) => {
  const report = await runCheck({ device: 'cpu', models: 'synthetic', sizes: [224], dtypes: ['float32', 'float16'], runs: 2, warmup: 1, log: quiet });
  t.is(report.status, 'passed', JSON.stringify(report, null, 1));
  t.is(report.device, 'cpu');
  t.is(report.environment.transfer, 'host');
  t.truthy(report.environment.runtime?.version);
  t.deepEqual(
    report.cases.map((c) => c.name),
    ['affine fp32', 'mlp 224² fp32', 'mlp 224² fp16'],
  );
  for (const c of report.cases) {
    t.true(c.pass, c.name);
    t.true(
      c.reference?.every((x) => x.bitExact),
      `${c.name} equals onnxruntime-node`,
    );
    t.is(c.graphReplay, undefined);
  }
  t.true(report.cases[0]!.golden?.every((x) => x.pass && x.maxAbs < 1e-5));
  t.is(report.cases[1]!.latency?.eager.runs, 2);
  t.true(report.notes.some((n) => /CUDA-graph replay .* skipped \(device cpu\)/.test(n)));
  const md = reportMarkdown(report);
  t.regex(md, /# vitgraph native device check — passed/);
  t.regex(md, /\| mlp 224² fp16 \| ok \|/);
});

test('a case source module is loaded by path, and a golden outside tolerance fails the check', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vitgraph-gpu-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const models = new URL('../scripts/gpu-check.models.js', import.meta.url).href;
  const source = join(dir, 'cases.mjs');
  await writeFile(
    source,
    `import { writeAffineModel, affineReference, seededFloats } from ${JSON.stringify(models)};
     const golden = (name, shift) => ({ name, kind: 'golden', dtype: 'float32', async prepare(dir) {
       const m = await writeAffineModel(dir, 4, 3, 2);
       const x = seededFloats(8, 4);
       const y = affineReference(m, x).map((v) => v + shift);
       return { modelPath: m.path, spec: { inputs: { x: { dtype: 'float32', shape: [2, 4] } }, outputs: { y: { dtype: 'float32', shape: [2, 3] } } },
                inputs: { x }, expected: { y }, tolerance: { atol: 1e-4, rtol: 0 } };
     } });
     export const checkSource = { name: 'test cases', cases: () => [golden('close', 0), golden('off by 0.01', 0.01)] };`,
  );
  const report = await runCheck({ device: 'cpu', models: source, log: quiet });
  t.is(report.source, 'test cases');
  t.is(report.status, 'failed');
  t.deepEqual(
    report.cases.map((c) => [c.name, c.pass]),
    [
      ['close', true],
      ['off by 0.01', false],
    ],
  );
  t.true(report.cases[1]!.golden![0]!.maxAbs > 0.009);
  t.regex(reportMarkdown(report), /\| off by 0\.01 \| FAILED/);
});

test('cases not started within the time budget are skipped, saying so', async (t) => {
  const report = await runCheck({ device: 'cpu', models: 'synthetic', sizes: [224], dtypes: ['float32'], budgetS: 0, log: quiet });
  t.is(report.status, 'passed');
  t.true(report.cases.every((c) => c.skipped === 'time budget of 0 s used up'));
});

test('CUDA asked for without a usable GPU: every CUDA check is skipped with the reason', async (t) => {
  if (gpuPresent) return t.log('this machine has a GPU');
  const report = await runCheck({ device: 'cuda', models: 'synthetic', log: quiet });
  t.is(report.status, 'cuda-unavailable');
  t.deepEqual(report.cases, []);
  t.true(
    report.notes.some((n) => /^CUDA checks skipped: .*libonnxruntime_providers_cuda\.so/.test(n)),
    report.notes.join('\n'),
  );
  const auto = await runCheck({ device: 'auto', models: 'synthetic', sizes: [224], dtypes: ['float32'], runs: 1, log: quiet });
  t.is(auto.device, 'cpu');
  t.is(auto.status, 'passed');
  t.true(auto.notes.some((n) => /no usable CUDA .*running the CPU parts only/.test(n)));
});

test('scripts/gpu-check.sh runs the check and writes JSON, Markdown and a log', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'vitgraph-gpu-check-out-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const r = spawnSync('bash', ['scripts/gpu-check.sh', '--device', 'cpu', '--models', 'synthetic', '--sizes', '224', '--dtypes', 'float32', '--runs', '2'], {
    cwd: root,
    env: { ...process.env, OUT: out },
    encoding: 'utf8',
    timeout: 120000,
  });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /== exit 0/);
  for (const f of ['gpu-check.json', 'gpu-check.md', 'gpu-check.log']) t.true(existsSync(join(out, f)), f);
  const json = JSON.parse(await readFile(join(out, 'gpu-check.json'), 'utf8')) as { status: string; cases: unknown[] };
  t.is(json.status, 'passed');
  t.is(json.cases.length, 2);
});
