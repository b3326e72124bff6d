// Session options for a lean load (src/runtime/session.ts): prepacking is off unless asked for,
// so memory-mapped external weights are not copied; ORT accepts the entries and runs correctly.

import test from 'ava';
import { join } from 'node:path';
import { GraphBuilder, op, saveModel } from '../src/onnx/index.js';
import { Session, ortSessionOptions } from '../src/runtime/session.js';
import { hostTensor } from '../src/tensor.js';
import { tempDir } from './helpers/files.js';

test('prepacking is disabled by default, enabled by prepackWeights, and config entries still pass through', (t) => {
  t.deepEqual(ortSessionOptions().extra, { 'session.disable_prepacking': '1' });
  t.deepEqual(ortSessionOptions({ prepackWeights: true }).extra, { 'session.disable_prepacking': '0' });
  const withConfig = ortSessionOptions({ threads: 2, config: { 'session.intra_op.allow_spinning': '0' } });
  t.deepEqual(withConfig.extra, { 'session.disable_prepacking': '1', 'session.intra_op.allow_spinning': '0' });
  t.is(withConfig.intraOpNumThreads, 2);
  t.is(ortSessionOptions({ config: { 'session.disable_prepacking': '0' } }).extra?.['session.disable_prepacking'], '0', 'an explicit config entry wins');
});

test('a model with external-data weights runs the same with and without prepacking', async (t) => {
  const dir = await tempDir(t);
  const [m, k, n] = [3, 64, 32];
  const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i) / 8);
  const g = new GraphBuilder({ params: { take: () => new Uint8Array(w.buffer) } });
  const x = g.input('x', 'float32', [m, k]);
  g.output(
    g.scope('fc', () => op.gemmTransB(x, g.param('weight', [n, k]))),
    'y',
  );
  const path = join(dir, 'model.onnx');
  const saved = await saveModel(g, path, { opset: 21, externalData: 'always' });
  t.truthy(saved.externalDataPath);
  const xs = Float32Array.from({ length: m * k }, (_, i) => Math.cos(i));
  const want = Float32Array.from({ length: m * n }, (_, i) => {
    let sum = 0;
    for (let p = 0; p < k; p++) sum += xs[Math.floor(i / n) * k + p]! * w[(i % n) * k + p]!;
    return sum;
  });
  for (const prepackWeights of [false, true]) {
    const session = await Session.load(path, { threads: 1, prepackWeights });
    const y = (await session.run({ x: hostTensor('float32', [m, k], xs) })).y!.data as Float32Array;
    await session.close();
    const worst = y.reduce((max, v, i) => Math.max(max, Math.abs(v - want[i]!)), 0);
    t.true(worst <= 1e-5, `prepackWeights ${prepackWeights}: max |Δ| ${worst}`);
  }
});
