// The README's code runs. Convention (so the README can be rewritten freely):
//
//   <!-- readme-test -->            on the line before a code fence: this block is run
//   <!-- readme-test: skip why -->  on the line before a ts/js fence: not run, for the reason given
//
// Every ```ts / ```js block must carry one of the two markers (an unmarked one fails, so new
// snippets cannot silently rot). A marked block is transpiled (TypeScript's transpileModule) and run
// as an ES module in a scratch app where `vitgraph` resolves to this checkout (dist/) and
// `fixtures/` to the repository's fixtures. In a marked ```sh block, each `npx vitgraph …` or
// `node dist/cli/main.js …` command that uses the embedded model (no --model, no --onnx) runs the
// built CLI there; other commands (npm ci, npm test) are left to CI. Each block runs with an empty
// HOME (and the checkpoint cache in it), as on a new user's machine: its first command must finish
// within the quick start's promise (10 s) and leave no ONNX Runtime telemetry files.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT, tempDir } from './helpers/files.js';

interface Block {
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  marker: 'run' | 'skip' | undefined;
}

export function readmeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    const previous = (lines[i - 1] ?? '').trim();
    const marker = /^<!--\s*readme-test\s*-->$/.test(previous) ? 'run' : /^<!--\s*readme-test:\s*skip\b/.test(previous) ? 'skip' : undefined;
    blocks.push({ lang: open[1]!, code: lines.slice(i + 1, end).join('\n'), line: i + 1, marker });
    i = end;
  }
  return blocks;
}

const README = await readFile(join(ROOT, 'README.md'), 'utf8');
const BLOCKS = readmeBlocks(README);
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

/** A scratch app: `vitgraph` → this checkout, `fixtures` → the repository's. */
async function scratchApp(dir: string): Promise<string> {
  await mkdir(join(dir, 'node_modules'), { recursive: true });
  await symlink(ROOT, join(dir, 'node_modules', 'vitgraph'));
  await symlink(join(ROOT, 'fixtures'), join(dir, 'fixtures'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'readme', private: true, type: 'module' }));
  return dir;
}

/** Runs with HOME = `home` (fresh), the cache in it, and none of the caller's telemetry settings. */
function run(command: string, args: readonly string[], cwd: string, home: string): { ok: boolean; output: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), VITGRAPH_CACHE: join(home, '.cache', 'vitgraph') };
  delete env.ORT_DISABLE_TELEMETRY;
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 120_000, env });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}` };
}

/** The quick start's promise: its first encode, on a cold cache, within this. */
const FIRST_RUN_MS = 10_000;
/** The CLI spelled as the README spells it: in an app (`npx vitgraph`) or in a clone (`node dist/cli/main.js`). */
const CLI_FORMS = /^(npx vitgraph|node dist\/cli\/main\.js) /;

/** `npx vitgraph …` commands of a shell block that use the embedded model. */
export function embeddedModelCommands(code: string): string[] {
  return code
    .split('\n')
    .flatMap((line) => line.split('&&'))
    .map((c) => c.trim())
    .filter((c) => CLI_FORMS.test(c) && !/--model|--onnx/.test(c));
}

test('every ts/js block of the README is marked to run or skipped with a reason', (t) => {
  const unmarked = BLOCKS.filter((b) => /^(ts|js|typescript|javascript)$/.test(b.lang) && b.marker === undefined).map((b) => `README.md:${b.line}`);
  t.deepEqual(unmarked, [], 'add <!-- readme-test --> or <!-- readme-test: skip <reason> --> before each');
  t.true(
    BLOCKS.some((b) => b.marker === 'run' && /^(ts|js)$/.test(b.lang)),
    'at least the Library snippet runs',
  );
});

for (const block of BLOCKS.filter((b) => b.marker === 'run')) {
  test.serial(`README.md:${block.line} (${block.lang}) runs`, async (t) => {
    const dir = await scratchApp(await tempDir(t));
    const home = join(dir, 'home');
    await mkdir(home);
    if (block.lang === 'ts' || block.lang === 'js') {
      const js = ts.transpileModule(block.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      await writeFile(join(dir, 'snippet.mjs'), js);
      const r = run(process.execPath, ['snippet.mjs'], dir, home);
      t.true(r.ok, r.output);
      return;
    }
    const commands = embeddedModelCommands(block.code);
    t.true(commands.length > 0, 'a marked shell block has at least one embedded-model vitgraph command');
    for (const [i, command] of commands.entries()) {
      const args = command.replace(CLI_FORMS, '').split(/\s+/);
      const start = performance.now();
      const r = run(process.execPath, [CLI, ...args], dir, home);
      const ms = performance.now() - start;
      t.true(r.ok, `${command}\n${r.output}`);
      if (i === 0) {
        t.log(`first command on a cold cache and an empty HOME: ${Math.round(ms)} ms`);
        t.true(ms < FIRST_RUN_MS, `${command}: ${Math.round(ms)} ms`);
      }
    }
    t.false(existsSync(join(home, '.cache', 'Microsoft')), 'no ONNX Runtime telemetry files');
  });
}

test('the README and the files users run name no path outside the repository', async (t) => {
  // scripts/gpu-check.* (the device check) are the exception being reworked separately.
  const files = ['README.md', 'Dockerfile', 'package.json', '.ci/run', 'scripts/build-native.mjs', 'bench/quant.ts', 'bench/run.ts', 'bench/serve.ts', 'bench/family.ts'];
  for (const file of files) {
    const text = await readFile(join(ROOT, file), 'utf8');
    t.notRegex(text, /\.\.\/shared\/|\/opt\/vgkit|\blent (GPU|machine)/, file);
  }
});
