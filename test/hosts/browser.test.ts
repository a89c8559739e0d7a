// The engine inside headless Chromium (Dawn in the browser, on SwiftShader), through the
// browser bundle: the golden fixture via `npm run golden:browser`, the example page
// (examples/browser), whose training must give Node's losses and validation report, and the op
// suite's host subset (test/ops/suite) on the engine bundle, within the suite's tolerances.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserMissing, openPage, type BrowserSession } from '../../scripts/browser.ts';
import { testGpu } from '../helpers.ts';
import { ROOT, FIXTURE, LOSS_AGREEMENT, run, goldenLine, nodeGoldenReport, expectMatchesFixture, maxDifference, readFromRoot } from './hosts.ts';
import { hostSubset } from '../ops/suite/cases.ts';
import { describeFailure, type CaseResult } from '../ops/suite/runner.ts';
import { recordSuiteResults } from '../ops/suite/record.ts';
import { nn, saveSafetensors, loadSafetensors, GPT2, GPT2Tokenizer, loadCheckpoint, fingerprint, fit, classify, defaultTask, DEFAULT_MODEL_DIR, DEFAULT_TRAINING, type Dataset } from '../../src/index.ts';

const missing = browserMissing();
if (missing) console.warn(`browser tests skipped: ${missing}`);

/** What the page or golden:browser says when Chromium offers no WebGPU adapter here (the tests then skip, saying so). */
const NO_ADAPTER = /offers no WebGPU|found no adapter/;

const firstRows = (data: Dataset, n: number): Dataset => ({ ...data, texts: data.texts.slice(0, n), labels: data.labels.slice(0, n) });

/** Node's run of what the page runs: the default task on the shipped model, default settings. */
async function nodeRun(options: { train?: number; val?: number; epochs: number; steps?: number; classify?: string }) {
  const gpu = await testGpu();
  const [config, weights] = await Promise.all([readFromRoot(`${DEFAULT_MODEL_DIR}/config.json`), readFromRoot(`${DEFAULT_MODEL_DIR}/model.safetensors`)]);
  const checkpoint = loadCheckpoint(new TextDecoder().decode(config), weights, DEFAULT_MODEL_DIR);
  const model = new GPT2(gpu, checkpoint.config, checkpoint.tensors);
  const tokenizer = new GPT2Tokenizer();
  const task = await defaultTask(DEFAULT_TRAINING.seed, readFromRoot);
  const losses: number[] = [];
  const accuracy: number[] = [];
  const stop = new AbortController();
  try {
    const result = await fit(model, tokenizer, [{ name: task.name, train: options.train ? firstRows(task.train, options.train) : task.train, val: options.val ? firstRows(task.val, options.val) : task.val }], {
      ...DEFAULT_TRAINING,
      identity: { config: checkpoint.config, fingerprint: await fingerprint(checkpoint) },
      epochs: options.epochs,
      signal: stop.signal,
      onStep: ({ loss }) => {
        losses.push(loss);
        if (losses.length === options.steps) stop.abort(new Error('enough steps'));
      },
      onValidation: ([e]) => void accuracy.push(e!.report.accuracy!),
    });
    const prediction = options.classify ? (await classify(model, tokenizer, [result.classifier], [options.classify], { maxLength: result.maxLength })).rows[0] : undefined;
    result.classifier.dispose();
    return { losses, accuracy, prediction };
  } catch (error) {
    if (!stop.signal.aborted) throw error;
    return { losses, accuracy, prediction: undefined };
  } finally {
    model.dispose();
  }
}

interface PageDemo {
  state: string;
  error: string | null;
  losses: number[];
  evaluations: { report: { accuracy?: number } }[][];
  prediction?: Record<string, string | number>;
}

async function pageDemo(session: BrowserSession): Promise<PageDemo> {
  await session.page.waitForFunction(() => ['trained', 'stopped', 'failed'].includes((window as unknown as { demo?: PageDemo }).demo?.state ?? ''), null, { timeout: 280_000, polling: 500 });
  return session.page.evaluate(() => {
    const d = (window as unknown as { demo: PageDemo }).demo;
    return { state: d.state, error: d.error, losses: d.losses, evaluations: d.evaluations, ...(d.prediction ? { prediction: d.prediction } : {}) };
  });
}

// A fresh machine compiles every kernel first, in Node and in the browser: minutes, not seconds.
describe.skipIf(missing !== null)('Chromium', { timeout: 400_000 }, () => {
  it('npm run golden:browser matches the fixture within 1e-4, with Node\'s step losses', async (ctx) => {
    const r = await run(process.execPath, ['--import', 'tsx', 'scripts/golden-browser.ts', FIXTURE], 280_000);
    if (r.code === 2 && NO_ADAPTER.test(r.stderr)) ctx.skip(`Chromium offers no WebGPU adapter here: ${r.stderr.trim()}`);
    expect(r.code, r.stderr).toBe(0);
    const report = goldenLine(r.stdout);
    expect(report.adapter).toMatch(/\(chromium, core\)$/);
    expectMatchesFixture(report, await nodeGoldenReport(), expect);
  });

  describe('the example page', () => {
    let session: BrowserSession | null = null;
    beforeAll(async () => {
      session = await openPage('/examples/browser/index.html?autostart&steps=3');
    }, 120_000);
    afterAll(async () => session?.close());

    it('three training steps of the default task give Node\'s losses', async (ctx) => {
      const page = await pageDemo(session!);
      if (NO_ADAPTER.test(page.error ?? '')) ctx.skip(`Chromium offers no WebGPU adapter here: ${page.error}`);
      expect(page.error).toBeNull();
      expect(page.state).toBe('stopped');
      const node = await nodeRun({ epochs: 1, steps: 3 });
      expect(page.losses).toHaveLength(3);
      expect(maxDifference(page.losses, node.losses)).toBeLessThan(LOSS_AGREEMENT);
    });

    it('trains to Node\'s validation accuracy, then classifies typed text as Node does (screenshot in test-results/)', async (ctx) => {
      const text = 'A dull, tedious film. What a waste of time.';
      const options = { train: 96, val: 48, epochs: 1 };
      await session!.page.goto(`${session!.origin}/examples/browser/index.html?autostart&train=${options.train}&val=${options.val}&epochs=${options.epochs}`);
      const page = await pageDemo(session!);
      if (NO_ADAPTER.test(page.error ?? '')) ctx.skip(`Chromium offers no WebGPU adapter here: ${page.error}`);
      expect(page.error).toBeNull();
      expect(page.state).toBe('trained');
      const typed = await session!.page.evaluate(async (t) => (window as unknown as { demo: { classify(t: string): Promise<Record<string, string | number>> } }).demo.classify(t), text);
      const node = await nodeRun({ ...options, classify: text });
      expect(page.losses).toHaveLength(12);
      expect(maxDifference(page.losses, node.losses)).toBeLessThan(LOSS_AGREEMENT);
      expect(page.evaluations.map((e) => e[0]!.report.accuracy)).toEqual(node.accuracy);
      expect(typed['demo-sentiment.label']).toBe(node.prediction!['demo-sentiment.label']);
      expect(Math.abs((typed['demo-sentiment.p(good)'] as number) - (node.prediction!['demo-sentiment.p(good)'] as number))).toBeLessThan(1e-5);
      expect(await session!.page.locator('#report').textContent()).toContain('accuracy');
      mkdirSync(join(ROOT, 'test-results'), { recursive: true });
      await session!.page.screenshot({ path: join(ROOT, 'test-results', 'browser-demo.png'), fullPage: true });
    });
  });

  it('the op suite\'s host subset on the engine bundle matches float64 forwards and finite-difference gradients', async (ctx) => {
    // The suite's cases and runner as one module for the page; they reach the ops only through
    // the engine object the page hands them, here the shipped dist/browser/engine.js.
    const suiteModule = 'test-results/browser/op-suite.js';
    await build({
      stdin: { contents: "export { runSuite } from './runner.ts';\nexport { hostSubset } from './cases.ts';\n", resolveDir: join(ROOT, 'test', 'ops', 'suite'), loader: 'ts' },
      bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'warning', outfile: join(ROOT, suiteModule),
    });
    const session = await openPage('/');
    try {
      // A string, not a function: vitest would rewrite a function's import() into a helper the page lacks.
      const page = await session.page.evaluate<{ error: string | null; adapter?: string; results: CaseResult[] }>(`(async () => {
        const engine = await import('/dist/browser/engine.js');
        const suite = await import('/${suiteModule}');
        let gpu;
        try {
          gpu = await engine.openWebGpu({ host: 'chromium' });
        } catch (error) {
          return { error: String(error), results: [] };
        }
        const results = await suite.runSuite(engine, gpu, suite.hostSubset());
        const adapter = gpu.adapterName;
        gpu.destroy();
        return { error: null, adapter, results };
      })()`);
      if (NO_ADAPTER.test(page.error ?? '')) ctx.skip(`Chromium offers no WebGPU adapter here: ${page.error}`);
      expect(page.error, session.console.join('\n')).toBeNull();
      recordSuiteResults('chromium', page.adapter!, page.results);
      expect(page.results.map((c) => c.name)).toEqual(hostSubset().map((c) => c.name));
      for (const c of page.results) expect(c.ok, describeFailure(c)).toBe(true);
    } finally {
      await session.close();
    }
  });

  it('saves and loads state dicts in a page with the engine bundle: the bytes Node writes, through a Blob', async (ctx) => {
    // The same seeded model in Node and in the page: a Linear and a BatchNorm1d (its u32 counter saved as I64).
    const gpu = await testGpu();
    const model = (seed: number) => new nn.Sequential(new nn.Linear(gpu, 3, 4, { seed }), new nn.BatchNorm1d(gpu, 4));
    const nodeBytes = await saveSafetensors(model(1).stateDict(), { metadata: { by: 'node' } });
    const otherSeed = model(2);
    const otherBytes = await saveSafetensors(otherSeed.stateDict());
    const session = await openPage('/');
    try {
      const page = await session.page.evaluate<{ error: string | null; saved: number[]; loaded: Record<string, number[]> }>(`(async () => {
        const engine = await import('/dist/browser/engine.js');
        let gpu;
        try {
          gpu = await engine.openWebGpu({ host: 'chromium' });
        } catch (error) {
          return { error: String(error), saved: [], loaded: {} };
        }
        const make = (seed) => new engine.nn.Sequential(new engine.nn.Linear(gpu, 3, 4, { seed }), new engine.nn.BatchNorm1d(gpu, 4));
        const bytes = await engine.saveSafetensors(make(1).stateDict(), { metadata: { by: 'node' } });
        // What docs/nn.md shows for a download and an upload: bytes to a Blob and back.
        const blob = new Blob([bytes], { type: 'application/octet-stream' });
        const fromBlob = new Uint8Array(await blob.arrayBuffer());
        const other = make(1);
        other.loadStateDict(engine.loadSafetensors(gpu, new Uint8Array(${JSON.stringify(Array.from(otherBytes))}), { name: 'from node' }));
        const loaded = {};
        for (const [key, t] of other.stateDict()) loaded[key] = Array.from(await t.read());
        gpu.destroy();
        return { error: null, saved: Array.from(fromBlob), loaded };
      })()`);
      if (NO_ADAPTER.test(page.error ?? '')) ctx.skip(`Chromium offers no WebGPU adapter here: ${page.error}`);
      expect(page.error, session.console.join('\n')).toBeNull();
      expect(Buffer.from(page.saved).equals(Buffer.from(nodeBytes))).toBe(true);
      const expected = loadSafetensors(gpu, otherBytes);
      expect(Object.keys(page.loaded)).toEqual([...expected.keys()]);
      for (const [key, t] of expected) expect(page.loaded[key], key).toEqual(Array.from(await t.read()));
    } finally {
      await session.close();
    }
  });
});
