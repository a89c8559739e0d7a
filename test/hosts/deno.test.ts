// The engine under Deno's own WebGPU (wgpu, on the software Vulkan adapter): the golden
// fixture through `npm run golden:deno`, a short training that must give Node's losses, and the
// op suite's host subset (test/ops/suite) within the suite's float64 tolerances.
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, FIXTURE, LOSS_AGREEMENT, run, goldenLine, nodeGoldenReport, nodeShortTraining, expectMatchesFixture, maxDifference } from './hosts.ts';
import { hostSubset } from '../ops/suite/cases.ts';
import { describeFailure, type CaseResult } from '../ops/suite/runner.ts';
import { recordSuiteResults } from '../ops/suite/record.ts';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const DENO_FLAGS = ['run', '--unstable-webgpu', '--allow-read', '--allow-env'];
/** What Deno says when the machine has no adapter it can use (then the tests skip, saying so). */
const NO_ADAPTER = /offers no WebGPU|found no adapter/;

// A fresh machine compiles every kernel first, in Node and in Deno.
describe.skipIf(!existsSync(DENO))('Deno', { timeout: 400_000 }, () => {
  it('npm run golden:deno matches the fixture within 1e-4, with Node\'s step losses', async (ctx) => {
    const r = await run(DENO, [...DENO_FLAGS, 'scripts/golden-deno.ts', FIXTURE], 300_000);
    if (r.code === 2 && NO_ADAPTER.test(r.stderr)) ctx.skip(`Deno finds no WebGPU adapter here: ${r.stderr.trim()}`);
    expect(r.code, r.stderr).toBe(0);
    const report = goldenLine(r.stdout);
    expect(report.adapter).toMatch(/\(deno, core\)$/);
    expectMatchesFixture(report, await nodeGoldenReport(), expect);
  });

  it('type-checks both package entries under Deno\'s own WebGPU types (deno run does not)', async () => {
    const r = await run(DENO, ['check', 'src/index.ts', 'src/engine.ts'], 300_000);
    expect(r.code, r.stderr).toBe(0);
  });

  it('the README\'s Deno example runs as written, beside a checkout in a Deno workspace', async (ctx) => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const example = readme.match(/```ts\n(\/\/ deno run [^\n]*\n[\s\S]*?)```/)![1]!;
    const project = mkdtempSync(join(tmpdir(), 'gpt2-prompt-deno-'));
    try {
      symlinkSync(ROOT, join(project, 'gpt2-prompt'));
      writeFileSync(join(project, 'deno.json'), JSON.stringify({ workspace: ['./gpt2-prompt'] }));
      writeFileSync(join(project, 'main.ts'), example);
      const r = await run(DENO, [...DENO_FLAGS, '--no-lock', 'main.ts'], 120_000, project);
      if (r.code !== 0 && NO_ADAPTER.test(r.stderr)) ctx.skip(`Deno finds no WebGPU adapter here: ${r.stderr.trim()}`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^\[ 1, 4, 64 \] Float32Array\(4\)/);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('a short training of the default task gives Node\'s losses and validation accuracy', async (ctx) => {
    const r = await run(DENO, [...DENO_FLAGS, 'test/hosts/deno-training.ts'], 300_000);
    if (r.code !== 0 && NO_ADAPTER.test(r.stderr)) ctx.skip(`Deno finds no WebGPU adapter here: ${r.stderr.trim()}`);
    expect(r.code, r.stderr).toBe(0);
    const deno = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { losses: number[]; accuracy: number };
    const node = await nodeShortTraining();
    expect(deno.losses).toHaveLength(8);
    expect(maxDifference(deno.losses, node.losses)).toBeLessThan(LOSS_AGREEMENT);
    expect(deno.accuracy).toBe(node.accuracy);
  });

  it('the op suite\'s host subset matches float64 forwards and finite-difference gradients', async (ctx) => {
    const r = await run(DENO, [...DENO_FLAGS, 'test/hosts/deno-ops.ts'], 300_000);
    if (r.code !== 0 && NO_ADAPTER.test(r.stderr)) ctx.skip(`Deno finds no WebGPU adapter here: ${r.stderr.trim()}`);
    expect(r.code, r.stderr).toBe(0);
    const { adapter, results } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { adapter: string; results: CaseResult[] };
    recordSuiteResults('deno', adapter, results);
    expect(results.map((c) => c.name)).toEqual(hostSubset().map((c) => c.name));
    for (const c of results) expect(c.ok, describeFailure(c)).toBe(true);
  });
});
