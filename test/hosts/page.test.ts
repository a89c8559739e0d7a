// The page (examples/browser) in headless Chromium on SwiftShader, driven as a visitor drives it:
// a CSV uploaded through the file input, columns picked, one epoch trained, the prompt file
// downloaded and used by `gpt2-prompt predict` in Node; a multi-label file; files with a missing
// column; a prompt file for another model; and GPT-2 from a Hub laid out on 127.0.0.1
// (test/hub/hub-server.ts): resumed after a cut, refused when truncated or of another size,
// opened from Cache Storage with that server stopped, and deleted. SwiftShader is slow, so the
// data is a dozen short rows, texts cut at 16 tokens, one epoch on the shipped small model.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { browserMissing, openPage, type BrowserSession } from '../../scripts/browser.ts';
import { testGpu } from '../helpers.ts';
import { ROOT, LOSS_AGREEMENT, run, maxDifference } from './hosts.ts';
import { startHubServer, CUT_AFTER, type HubServer } from '../hub/hub-server.ts';
import { GPT2, GPT2Tokenizer, fingerprint, fit, formatEvaluation, holdOut, posWeights, decodeCheckpoint, encodeCheckpoint, DEFAULT_MODEL_DIR, DEFAULT_TRAINING, type DatasetSpec, type FitTask } from '../../src/index.ts';
import { loadDataset } from '../../src/node/dataset-file.ts';
import { readCheckpoint } from '../../src/node/checkpoint-file.ts';

const missing = browserMissing();
if (missing) console.warn(`page tests skipped: ${missing}`);
const NO_ADAPTER = /offers no WebGPU/;

const dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-page-'));
const file = (name: string, content: string) => {
  writeFileSync(join(dir, name), content);
  return join(dir, name);
};
const TRAIN = file('reviews.csv', `text,label,funny,sad
What a great film,good,1,0
A dull and boring movie,bad,0,1
I loved every minute,good,1,0
Awful acting and a bad plot,bad,0,1
The cast was brilliant,good,0,0
Tedious from start to finish,bad,0,1
A delightful comedy,good,1,0
I want my two hours back,bad,1,1
Superb direction,good,0,0
Clumsy and bland,bad,0,1
A charming story,good,1,0
Painful to watch,bad,0,1
`);
const VAL = file('reviews-val.csv', `text,label,funny,sad
A wonderful picture,good,1,0
A dreadful script,bad,0,1
Beautiful and moving,good,0,0
Disappointing ending,bad,0,1
`);
/** The page's training settings, as typed into its fields; Node and the CLI get the same. */
const SETTINGS = { epochs: 1, batchSize: 4, maxLength: 16 };
const TEXTS = ['A superb and moving film', 'Dull, bland and painful', 'I would watch it again'];

interface PageDemo {
  state: string;
  modelState?: string;
  error: string | null;
  modelError: string | null;
  dataError: string | null;
  classifyError: string | null;
  losses: number[];
  evaluations: { kind: string; report: { accuracy?: number } }[][];
  model?: { fromStore?: boolean; resumed?: boolean; fingerprint?: string };
  predictions?: { texts: string[]; rows: Record<string, string | number>[] };
  stored?: string[];
  data?: { kind: string; train: number; val: number; counts: { label: string; count: number }[] };
}

const readDemo = (page: Page) => page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { demo: PageDemo }).demo)) as PageDemo);

/** Waits until the page's demo object satisfies `test` (a function source over `d`). */
async function until(page: Page, test: string, timeout = 120_000): Promise<PageDemo> {
  await page.waitForFunction(`(() => { const d = window.demo; return d && (d.state === 'failed' || (${test})); })()`, null, { timeout, polling: 200 });
  return readDemo(page);
}

/** Node's run of the page's training: the same data through the CLI's readers, the same settings. */
async function nodeFit(task: FitTask) {
  const gpu = await testGpu();
  const checkpoint = await readCheckpoint(join(ROOT, DEFAULT_MODEL_DIR));
  const model = new GPT2(gpu, checkpoint.config, checkpoint.tensors);
  const losses: number[] = [];
  const evaluations: string[] = [];
  try {
    const result = await fit(model, new GPT2Tokenizer(), [task], {
      ...DEFAULT_TRAINING,
      ...SETTINGS,
      identity: { config: checkpoint.config, fingerprint: await fingerprint(checkpoint) },
      onStep: ({ loss }) => void losses.push(loss),
      onValidation: (e) => void evaluations.push(e.map(formatEvaluation).join('\n\n')),
    });
    result.classifier.dispose();
    return { losses, evaluations };
  } finally {
    model.dispose();
  }
}

async function typeSettings(page: Page) {
  await page.fill('#epochs', String(SETTINGS.epochs));
  await page.fill('#batch-size', String(SETTINGS.batchSize));
  await page.fill('#max-length', String(SETTINGS.maxLength));
}

describe('the page\'s JavaScript', () => {
  it('is under 1.5 MB minified, the bundle it loads included', async () => {
    const { build } = await import('esbuild');
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'ignore' });
    const out = await build({ entryPoints: [join(ROOT, 'examples', 'browser', 'main.js')], bundle: true, minify: true, format: 'esm', write: false, logLevel: 'warning' });
    const bytes = out.outputFiles[0]!.contents.byteLength;
    expect(bytes).toBeGreaterThan(500_000);
    expect(bytes).toBeLessThan(1_500_000);
  });
});

describe.skipIf(missing !== null)('the page in Chromium', { timeout: 200_000 }, () => {
  let session: BrowserSession;
  let hub: HubServer;
  let noAdapter: string | null = null;
  const results = join(ROOT, 'test-results');
  mkdirSync(results, { recursive: true });

  beforeAll(async () => {
    hub = await startHubServer();
    session = await openPage('/examples/browser/index.html');
    const d = await until(session.page, "d.modelState === 'ready'", 60_000);
    if (NO_ADAPTER.test(d.error ?? '')) noAdapter = d.error;
    else expect(d.error, session.console.join('\n')).toBeNull();
  }, 120_000);
  afterAll(async () => {
    await session?.close();
    await hub?.close();
  });

  let promptFile = '';
  let pagePredictions: PageDemo['predictions'];

  it('uploads a CSV, picks its columns, trains one epoch with Node\'s losses and validation report, and downloads the prompt file', async (ctx) => {
    if (noAdapter) ctx.skip(`Chromium offers no WebGPU adapter here: ${noAdapter}`);
    const page = session.page;
    await page.setInputFiles('#data-file', TRAIN);
    await page.selectOption('#text-column', 'text');
    await page.selectOption('#label-column', 'label');
    await page.check('input[name=val][value=file]');
    await page.setInputFiles('#val-file', VAL);
    let d = await until(page, 'd.data && d.data.val === 4');
    expect(d.dataError).toBeNull();
    expect(d.data).toMatchObject({ kind: 'single', train: 12, val: 4, counts: [{ label: 'bad', count: 6 }, { label: 'good', count: 6 }] });
    expect(await page.locator('#class-counts').innerText()).toMatch(/bad\s+6\s+2\s+good\s+6\s+2/);
    await typeSettings(page);
    await page.click('#train');
    d = await until(page, "d.state === 'trained'");
    expect(d.error).toBeNull();
    expect(d.losses).toHaveLength(3);

    const spec: DatasetSpec = { textColumn: 'text', labelColumn: 'label' };
    const train = await loadDataset(TRAIN, spec);
    const node = await nodeFit({ name: 'reviews', train, val: await loadDataset(VAL, { ...spec, labels: train.labelNames }) });
    expect(maxDifference(d.losses, node.losses)).toBeLessThan(LOSS_AGREEMENT);
    // The report is the CLI's: the same scikit-learn table and Pearson lines, character for character.
    expect(await page.locator('#report').textContent()).toBe(`after epoch 1\n${node.evaluations[0]}`);
    expect(node.evaluations[0]).toMatch(/precision +recall +f1-score +support[\s\S]*accuracy[\s\S]*pearson r and p/);

    const download = page.waitForEvent('download');
    await page.click('#download-prompt');
    promptFile = join(dir, (await download).suggestedFilename());
    await (await download).saveAs(promptFile);
    expect(promptFile).toMatch(/reviews\.gpt2p$/);
    // One epoch: the best checkpoint is the last one.
    const bestDownload = page.waitForEvent('download');
    await page.click('#download-best');
    const best = join(dir, (await bestDownload).suggestedFilename());
    await (await bestDownload).saveAs(best);
    expect(best).toMatch(/reviews\.best\.gpt2p$/);
    expect(readFileSync(best).equals(readFileSync(promptFile))).toBe(true);
    // The third step was profiled (the losses above include it): its Chrome trace downloads and parses.
    const traceDownload = page.waitForEvent('download');
    await page.click('#trace a');
    const tracePath = join(dir, (await traceDownload).suggestedFilename());
    await (await traceDownload).saveAs(tracePath);
    const trace = JSON.parse(readFileSync(tracePath, 'utf8')) as { traceEvents: { ph: string; name: string }[] };
    expect(trace.traceEvents.filter((e) => e.ph === 'X').length).toBeGreaterThan(10);
    expect(await page.locator('#trace pre').textContent()).toMatch(/matmul/);
    await page.fill('#text', TEXTS.join('\n'));
    await page.click('#classify');
    pagePredictions = (await until(page, 'd.predictions && d.predictions.texts.length === 3')).predictions;
    await page.screenshot({ path: join(results, 'page-trained.png'), fullPage: true });
  });

  it('gpt2-prompt predict in Node gives the page\'s probabilities for the downloaded prompt file, within 1e-5', async (ctx) => {
    if (!promptFile) ctx.skip('no prompt file from the page');
    const checkpoint = decodeCheckpoint(readFileSync(promptFile), promptFile);
    expect(checkpoint.model.fingerprint).toBe((await readDemo(session.page)).model!.fingerprint);
    expect(checkpoint.training).toMatchObject({ batchSize: 4, maxLength: 16, epochs: 1, lr: DEFAULT_TRAINING.lr, seed: 0 });
    const cli = await run(process.execPath, ['--import', 'tsx', 'src/cli/dev.ts', 'predict', '--prompt', promptFile, ...TEXTS.flatMap((t) => ['--text', t]), '--quiet'], 120_000);
    expect(cli.code, cli.stderr).toBe(0);
    const rows = cli.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string | number>);
    expect(rows.map((r) => r.text)).toEqual(TEXTS);
    rows.forEach((row, n) => {
      const page = pagePredictions!.rows[n]!;
      expect(page['reviews.label']).toBe(row['reviews.label']);
      for (const key of ['reviews.p(bad)', 'reviews.p(good)']) expect(Math.abs((page[key] as number) - (row[key] as number))).toBeLessThan(1e-5);
    });
  });

  it('gpt2-prompt train on the same file and settings writes the page\'s prompt file: the same fields, parameters within 1e-5', async (ctx) => {
    if (!promptFile) ctx.skip('no prompt file from the page');
    const out = join(dir, 'cli.gpt2p');
    const cli = await run(process.execPath, ['--import', 'tsx', 'src/cli/dev.ts', 'train', '--data', TRAIN, '--val', VAL, '--name', 'reviews', '--epochs', '1', '--batch-size', '4', '--max-length', '16', '--out', out, '--quiet'], 120_000);
    expect(cli.code, cli.stderr).toBe(0);
    const [page, node] = [promptFile, out].map((f) => decodeCheckpoint(readFileSync(f), f));
    // The page knows the file by its name only; the CLI by the path it was given.
    expect({ ...page!.training, data: null }).toEqual({ ...node!.training, data: null });
    expect(page!.training.data).toEqual(['reviews.csv']);
    expect(page!.model).toEqual(node!.model);
    expect(page!.tasks).toEqual(node!.tasks);
    expect(page!.promptTokens).toBe(node!.promptTokens);
    expect(page!.progress!.history.map((h) => h.epoch)).toEqual([1]);
    expect(Math.abs(page!.progress!.history[0]!.loss - node!.progress!.history[0]!.loss)).toBeLessThan(LOSS_AGREEMENT);
    for (const key of ['prompt', 'headWeight', 'headBias'] as const) expect(maxDifference(Array.from(page!.params[key]), Array.from(node!.params[key]))).toBeLessThan(1e-5);
  });

  it('loads a prompt file to classify, and refuses one made for another model, with the reason', async (ctx) => {
    if (!promptFile) ctx.skip('no prompt file from the page');
    const page = session.page;
    const checkpoint = decodeCheckpoint(readFileSync(promptFile), promptFile);
    const other = file('other-model.gpt2p', '');
    writeFileSync(other, encodeCheckpoint({ ...checkpoint, model: { ...checkpoint.model, fingerprint: '0123456789abcdef' } }));
    await page.setInputFiles('#prompt-file', other);
    let d = await until(page, 'd.classifyError');
    expect(d.classifyError).toMatch(/^other-model\.gpt2p was trained on a different model \(n_layer 2, n_embd 64, vocab 50257, fingerprint 0123456789abcdef\) than the one loaded \(.*fingerprint [0-9a-f]{16}\)$/);
    await page.setInputFiles('#prompt-file', promptFile);
    await page.waitForFunction(() => document.getElementById('prompt-status')!.textContent!.startsWith('classifying with reviews.gpt2p'));
    await page.evaluate(() => ((window as unknown as { demo: PageDemo }).demo.predictions = undefined));
    await page.setInputFiles('#classify-file', file('to-classify.csv', `text\n${TEXTS.map((t) => `"${t}"`).join('\n')}\n`));
    d = await until(page, 'd.predictions || d.classifyError');
    expect(d.classifyError).toBeNull();
    expect(d.predictions!.rows).toEqual(pagePredictions!.rows);
    const download = page.waitForEvent('download');
    await page.click('#download-predictions');
    const csv = join(dir, 'predictions.csv');
    await (await download).saveAs(csv);
    expect(readFileSync(csv, 'utf8').split('\n')[0]).toBe('text,reviews.label,reviews.p(bad),reviews.p(good)');
  });

  it('trains and reports a multi-label task (several 0/1 columns, a held-out split), with Node\'s losses', async (ctx) => {
    if (noAdapter) ctx.skip(`Chromium offers no WebGPU adapter here: ${noAdapter}`);
    const page = session.page;
    await page.setInputFiles('#data-file', TRAIN);
    await page.check('input[name=kind][value=multi]');
    await page.check('#label-columns input[value=funny]');
    await page.check('#label-columns input[value=sad]');
    await page.check('input[name=val][value=split]');
    await page.fill('#val-share', '25');
    await page.dispatchEvent('#val-share', 'change');
    let d = await until(page, "d.data && d.data.kind === 'multi' && d.data.counts.length === 2 && d.data.val === 3");
    expect(d.dataError).toBeNull();
    await typeSettings(page);
    await page.click('#train');
    d = await until(page, "d.state === 'trained'");
    expect(d.error).toBeNull();
    expect(d.evaluations[0]![0]!.kind).toBe('multi');
    const report = (await page.locator('#report').textContent())!;
    expect(report).toMatch(/funny[\s\S]*sad[\s\S]*micro avg[\s\S]*samples avg[\s\S]*pearson r and p/);

    const all = await loadDataset(TRAIN, { textColumn: 'text', labelColumns: ['funny', 'sad'] });
    const { train, val } = holdOut(all, 0.25, 0);
    const node = await nodeFit({ name: 'reviews', train, val, loss: { posWeight: posWeights(train.targets, 2) } });
    expect(maxDifference(d.losses, node.losses)).toBeLessThan(LOSS_AGREEMENT);
    expect(report).toBe(`after epoch 1\n${node.evaluations[0]}`);
  });

  it('Stop ends training at the next batch, with the best checkpoint so far still downloadable', async (ctx) => {
    if (noAdapter) ctx.skip(`Chromium offers no WebGPU adapter here: ${noAdapter}`);
    const page = session.page;
    await page.fill('#epochs', '4');
    await page.click('#train');
    await until(page, "d.state === 'training' && d.evaluations.length === 1");
    expect(await page.locator('#download-best').isDisabled()).toBe(false);
    await page.click('#stop');
    const d = await until(page, "d.state === 'stopped'");
    expect(d.losses.length).toBeGreaterThanOrEqual(3);
    expect(d.losses.length).toBeLessThan(12);
    expect(await page.locator('#step').textContent()).toMatch(/ · stopped$/);
    expect(await page.locator('#best-status').textContent()).toMatch(/^best so far: epoch \d \(validation macro F1 [\d.]+\)$/);
  });

  it('a file with a missing column gets one sentence naming the file, the row and the column', async (ctx) => {
    if (noAdapter) ctx.skip(`Chromium offers no WebGPU adapter here: ${noAdapter}`);
    const page = session.page;
    await page.setInputFiles('#data-file', TRAIN);
    await page.check('input[name=kind][value=single]');
    await page.selectOption('#label-column', 'label');
    await page.setInputFiles('#val-file', file('no-label.csv', 'text,sentiment\nA wonderful picture,good\n'));
    let d = await until(page, 'd.dataError');
    expect(d.dataError).toBe('no-label.csv: unknown column "label" (available: "text", "sentiment")');
    expect(await page.locator('#data-error').innerText()).toBe(d.dataError);
    await page.setInputFiles('#data-file', file('rows.jsonl', '{"text":"Great","label":"good"}\n{"text":"Awful"}\n'));
    d = await until(page, "d.dataError && d.dataError.startsWith('rows.jsonl')");
    expect(d.dataError).toBe('rows.jsonl: row 2, column "label": missing label (undefined)');
    await page.setInputFiles('#data-file', TRAIN);
    await page.check('input[name=val][value=none]');
    await page.fill('#labels', 'good,so-so');
    await page.dispatchEvent('#labels', 'change');
    d = await until(page, "d.dataError && d.dataError.startsWith('reviews.csv')");
    expect(d.dataError).toBe('reviews.csv: row 2, column "label": label "bad" is not one of the given labels ("good", "so-so")');
    await page.fill('#labels', '');
    await page.dispatchEvent('#labels', 'change');
    d = await until(page, '!d.dataError');
    expect(d.data).toMatchObject({ kind: 'single', train: 12, val: 0 });
  });

  it('opens a GPT-2 from a Hub: resumes a cut download, refuses a truncated or mismatched file, shows progress and cancels and resumes, refuses a model over the adapter\'s limits, opens from Cache Storage with the Hub stopped, and deletes it', async (ctx) => {
    if (noAdapter) ctx.skip(`Chromium offers no WebGPU adapter here: ${noAdapter}`);
    const page = session.page;
    await page.goto(`${session.origin}/examples/browser/index.html?model=test/flaky&hub=${hub.base}`);
    let d = await until(page, "d.modelState === 'ready' || d.modelState === 'failed'", 60_000);
    expect(d.modelError).toBeNull();
    expect(d.model).toMatchObject({ fromStore: false, resumed: true });
    const weights = hub.hits.filter((h) => h.method === 'GET' && h.path === '/test/flaky/resolve/main/model.safetensors');
    expect(weights.map((h) => h.range)).toEqual(['bytes=0-0', undefined, `bytes=${CUT_AFTER}-`]);
    expect(await page.locator('#model-status').textContent()).toMatch(/^test\/flaky \(2 layers × 64, .* downloaded from http:\/\/127\.0\.0\.1:\d+ \(resumed\), now stored in this browser/);

    for (const [repo, reason] of [
      ['test/truncated', /^test\/truncated\/model\.safetensors: truncated \(tensor .+ ends at byte \d+, but the file has only \d+ bytes\); the download was discarded$/],
      ['test/mismatch', /^http:.*\/test\/mismatch\/resolve\/main\/model\.safetensors: the server sends 6668232 bytes, but the file should have 6669232; the download was discarded$/],
    ] as const) {
      await page.fill('#repo', repo);
      await page.click('#open-model');
      d = await until(page, `d.modelError && d.modelError.includes('${repo}')`);
      expect(d.modelError).toMatch(reason);
    }

    // Watched and cancelled; opened again in a later visit, the download continues where it stopped.
    await page.fill('#repo', 'test/slow');
    await page.click('#open-model');
    await page.waitForFunction(() => /^model\.safetensors: 0\.3 MiB of 6\.4 MiB · [\d.]+ MiB\/s · \d+ s left$/.test(document.getElementById('download-status')!.textContent!), null, { timeout: 20_000 });
    await page.click('#cancel-download');
    d = await until(page, "d.modelError && d.modelError.includes('cancelled')");
    expect(d.modelError).toBe('download cancelled; Open model resumes it');
    d = await until(page, "d.stored.length === 2");
    expect(d.stored).toEqual([`test/flaky from ${hub.base}`, `test/slow from ${hub.base}`]);
    // A later visit: the kept bytes come from Cache Storage.
    await page.goto(`${session.origin}/examples/browser/index.html?hub=${hub.base}`);
    await until(page, "d.modelState === 'ready'");
    await page.fill('#repo', 'test/slow');
    await page.click('#open-model');
    d = await until(page, "d.modelState === 'ready' || d.modelState === 'failed'", 60_000);
    expect(d.modelError).toBeNull();
    expect(d.model).toMatchObject({ repo: 'test/slow', fromStore: false, resumed: true });
    const slow = hub.hits.filter((h) => h.method === 'GET' && h.path === '/test/slow/resolve/main/model.safetensors').map((h) => h.range);
    expect(slow).toHaveLength(4);
    expect(slow).toEqual(['bytes=0-0', undefined, 'bytes=0-0', 'bytes=300000-']);

    // A model no adapter can hold is refused from its config, before its weights are fetched.
    await page.fill('#repo', 'test/huge');
    await page.click('#open-model');
    d = await until(page, "d.modelError && d.modelError.includes('test/huge')");
    expect(d.modelError).toMatch(/^test\/huge cannot run here: the token embeddings \(50257 × 32768\) take 6282 MiB in one buffer, over this adapter's limit of \d+ MiB \(maxStorageBufferBindingSize\)$/);
    expect(await page.locator('#model-status').textContent()).toBe(d.modelError);
    expect(await page.locator('#model-needs').textContent()).toMatch(/^test\/huge: 14565\.8M parameters, 1 layer × 32768, 1024 positions\. Needs 55564 MiB of storage .*and about 55564 MiB of GPU memory for the weights plus about \d+ MiB per training batch of 8 × 1024 tokens/);
    expect(await page.locator('#train').isDisabled()).toBe(false);
    expect(hub.hits.filter((h) => h.method === 'GET' && h.path === '/test/huge/resolve/main/model.safetensors').map((h) => h.range)).toEqual(['bytes=0-0']);

    await hub.close();
    await page.goto(`${session.origin}/examples/browser/index.html?model=test/slow&hub=${hub.base}`);
    d = await until(page, "d.modelState === 'ready' || d.modelState === 'failed'", 60_000);
    expect(d.modelError).toBeNull();
    expect(d.model).toMatchObject({ fromStore: true });
    expect(await page.locator('#model-status').textContent()).toMatch(/from this browser's storage/);
    expect(d.stored).toEqual([`test/flaky from ${hub.base}`, `test/slow from ${hub.base}`]);
    await page.click('#stored-section summary');
    await page.click('#stored button');
    d = await until(page, 'd.stored.length === 1');
    expect(d.stored).toEqual([`test/slow from ${hub.base}`]);
  });

  it('without WebGPU, says which browsers and flags give it', async () => {
    const page = await session.page.context().browser()!.newPage();
    try {
      await page.addInitScript("Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined })");
      await page.goto(`${session.origin}/examples/browser/index.html`);
      await page.waitForFunction(() => (window as unknown as { demo?: PageDemo }).demo?.state === 'failed');
      expect(await page.locator('#status').textContent()).toMatch(/^Error: This browser offers no WebGPU.*Chrome and Edge 113.*chrome:\/\/flags\/#enable-unsafe-webgpu.*Safari 26.*Firefox 141/);
    } finally {
      await page.close();
    }
  });
});
