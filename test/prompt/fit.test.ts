// The method as a library: fit's checkpoints resume to exactly the uninterrupted run, its
// validation reports come every epoch, and prediction rows read the right columns.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { randomWeights } from '../gpt2/reference.ts';
import { GPT2 } from '../../src/gpt2/model.ts';
import type { GPT2Config } from '../../src/gpt2/config.ts';
import { makeDemoDataset } from '../../src/data/demo.ts';
import { fit, layoutTasks, toExamples, type FitTask, type FitOptions, type Tokenizer } from '../../src/prompt/fit.ts';
import { predictionRows, classify } from '../../src/prompt/predict.ts';
import { encodeCheckpoint, decodeCheckpoint, type PromptCheckpoint } from '../../src/prompt/checkpoint.ts';
import type { TaskEvaluation } from '../../src/prompt/evaluate.ts';
import type { Task } from '../../src/prompt/classifier.ts';

const config: GPT2Config = { vocabSize: 128, nPositions: 40, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEps: 1e-5, activation: 'gelu_new' };
// One id per character: the tiny model has a 128-token vocabulary.
const chars: Tokenizer = { encode: (text, maxLength) => Array.from(text, (c) => c.charCodeAt(0) % 128).slice(0, maxLength) };
const weights = randomWeights(config, 9, 0.2);
let model: GPT2;
const identity = { config, fingerprint: 'test' };

beforeAll(async () => {
  model = new GPT2(await testGpu(), config, weights);
});

const tasks: FitTask[] = [{ name: 'demo', train: makeDemoDataset(24, 1), val: makeDemoDataset(10, 2) }];
const options = (epochs: number): FitOptions => ({ identity, epochs, batchSize: 8, lr: 1e-2, seed: 4, promptTokens: 3 });

describe('fit', () => {
  it('resuming from an epoch checkpoint trains exactly as the uninterrupted run', async () => {
    const full: PromptCheckpoint[] = [];
    const fullLosses: number[] = [];
    const evaluations: TaskEvaluation[][] = [];
    const run = await fit(model, chars, tasks, {
      ...options(3),
      onStep: ({ loss }) => fullLosses.push(loss),
      onCheckpoint: (c) => void full.push(c),
      onValidation: (e) => void evaluations.push(e),
    });
    expect(full.map((c) => c.progress!.epochsCompleted)).toEqual([1, 2, 3]);
    expect(full[2]!.progress!.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(evaluations).toHaveLength(3);
    expect(evaluations[0]![0]!.report.classes.reduce((n, c) => n + c.support, 0)).toBe(10);
    expect(run.checkpoint).toBe(full[2]);
    run.classifier.dispose();

    // Through the file format, as the CLI's --resume reads it.
    const saved = decodeCheckpoint(encodeCheckpoint(full[0]!), 'epoch1');
    const resumedLosses: number[] = [];
    const resumed = await fit(model, chars, tasks, { ...options(3), resume: saved, onStep: ({ loss }) => resumedLosses.push(loss) });
    expect(resumedLosses).toEqual(fullLosses.slice(fullLosses.length / 3));
    const params = await resumed.classifier.params();
    expect(Array.from(params.prompt)).toEqual(Array.from(full[2]!.params.prompt));
    expect(Array.from(params.headWeight)).toEqual(Array.from(full[2]!.params.headWeight));
    expect(resumed.checkpoint!.progress!.history).toEqual(full[2]!.progress!.history);

    // The trained classifier classifies new texts.
    const rows = await classify(model, chars, [resumed.classifier], ['The movie was awful.', 'What a great film!'], { maxLength: resumed.maxLength });
    expect(rows.columns).toEqual(['demo.label', 'demo.p(bad)', 'demo.p(good)']);
    for (const row of rows.rows) expect((row['demo.p(bad)'] as number) + (row['demo.p(good)'] as number)).toBeCloseTo(1, 5);
    resumed.classifier.dispose();
  });

  it('a longer run continuing a shorter run\'s last checkpoint is the longer run (the study\'s 10 epochs after 3)', async () => {
    const short = await fit(model, chars, tasks, options(1));
    short.classifier.dispose();
    const continued = await fit(model, chars, tasks, { ...options(2), resume: short.checkpoint! });
    const fresh = await fit(model, chars, tasks, options(2));
    const [a, b] = [await continued.classifier.params(), await fresh.classifier.params()];
    expect(Array.from(a.prompt)).toEqual(Array.from(b.prompt));
    expect(Array.from(a.headWeight)).toEqual(Array.from(b.headWeight));
    expect(continued.checkpoint!.progress!.history).toEqual(fresh.checkpoint!.progress!.history);
    continued.classifier.dispose();
    fresh.classifier.dispose();
  });

  it('a fresh prompt is the embeddings of random tokens, set by the seed', async () => {
    const first = await fit(model, chars, tasks, { ...options(0) });
    const again = await fit(model, chars, tasks, { ...options(0) });
    const other = await fit(model, chars, tasks, { ...options(0), seed: 5 });
    const [a, b, c] = await Promise.all([first, again, other].map((r) => r.classifier.params()));
    expect(Array.from(a!.prompt)).toEqual(Array.from(b!.prompt));
    expect(Array.from(a!.prompt)).not.toEqual(Array.from(c!.prompt));
    // Every prompt row is a row of wte.
    const { wte } = weights;
    const C = config.nEmbd;
    for (let p = 0; p < 3; p++) {
      const row = Array.from(a!.prompt.subarray(p * C, (p + 1) * C));
      const found = Array.from({ length: config.vocabSize }, (_, v) => v).some((v) => Array.from(wte.subarray(v * C, (v + 1) * C)).every((x, i) => x === row[i]));
      expect(found).toBe(true);
    }
    for (const r of [first, again, other]) r.classifier.dispose();
  });

  it('examples keep each task index and truncate texts', () => {
    const data = makeDemoDataset(4, 3);
    const examples = toExamples(data, chars, 1, 7);
    expect(examples.map((e) => e.tokens.length)).toEqual([7, 7, 7, 7]);
    expect(examples.map((e) => e.label)).toEqual(Array.from(data.labels));
    expect(examples.every((e) => e.task === 1)).toBe(true);
    expect(layoutTasks([...tasks, { name: 'more', train: data }]).map((t) => t.start)).toEqual([0, 2]);
  });
});

describe('prediction rows', () => {
  it('name the argmax of single-label tasks and every positive label of multi-label ones', () => {
    const tasks: Task[] = [
      { name: 'sentiment', kind: 'single', labelNames: ['bad', 'good'], start: 0 },
      { name: 'emotion', kind: 'multi', labelNames: ['joy', 'fear', 'anger'], start: 2 },
    ];
    // Two texts, composite head of 5 columns.
    const logits = Float32Array.of(0, Math.log(3), 1, -1, 2, 2, 0, -1, -2, -3);
    const { columns, rows } = predictionRows([{ tasks, classes: 5 }], [logits]);
    expect(columns).toEqual(['sentiment.label', 'sentiment.p(bad)', 'sentiment.p(good)', 'emotion.label', 'emotion.p(joy)', 'emotion.p(fear)', 'emotion.p(anger)']);
    expect(rows[0]).toMatchObject({ 'sentiment.label': 'good', 'sentiment.p(bad)': 0.25, 'sentiment.p(good)': 0.75, 'emotion.label': 'joy|anger' });
    expect(rows[1]).toMatchObject({ 'sentiment.label': 'bad', 'emotion.label': '', 'emotion.p(joy)': Number((1 / (1 + Math.exp(1))).toFixed(6)) });
  });
});
