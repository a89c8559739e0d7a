// Mixed-task batches: rows of different tasks in one pass, each bitwise equal to the row run
// alone with its own task, on both adapters, for tasks of separately trained prompt files
// (composed into one classifier) and of one multi-task file.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { randomWeights } from '../gpt2/reference.ts';
import { openGpu } from '../../src/node/device.ts';
import { GPT2 } from '../../src/gpt2/model.ts';
import type { GPT2Config } from '../../src/gpt2/config.ts';
import { PromptClassifier, initialParams, type Task } from '../../src/prompt/classifier.ts';
import { train, encode, disposePast, tokenBatch, type Example } from '../../src/prompt/train.ts';
import { encodeCheckpoint, decodeCheckpoint, type PromptCheckpoint } from '../../src/prompt/checkpoint.ts';
import { composeHeads } from '../../src/prompt/compose.ts';
import { mixedLogits, taskPrediction, type MixedRow } from '../../src/prompt/mixed.ts';
import { tidy, noGrad } from '../../src/tensor/tensor.ts';
import { seededRandom } from '../../src/util/random.ts';
import type { Gpu } from '../../src/gpu/context.ts';

const config: GPT2Config = { vocabSize: 200, nPositions: 48, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEps: 1e-5, activation: 'gelu_new' };
const P = 3;

function examples(n: number, seed: number, task: number, multi: boolean): Example[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const label = random() < 0.5 ? 0 : 1;
    return {
      tokens: Uint32Array.from({ length: 1 + Math.floor(random() * 12) }, () => Math.floor(random() * 100) + label * 100),
      task,
      label,
      targets: multi ? Float32Array.of(label, 1 - label, random() < 0.5 ? 1 : 0) : null,
    };
  });
}

/** Trains a prompt for `tasks` (briefly) and returns it as its file would be read back. */
async function trainedFile(model: GPT2, tasks: Task[], seed: number): Promise<PromptCheckpoint> {
  const random = seededRandom(seed);
  const K = tasks.reduce((n, t) => n + t.labelNames.length, 0);
  const prompt = Float32Array.from({ length: P * config.nEmbd }, () => random() - 0.5);
  const classifier = new PromptClassifier(model, initialParams(prompt, config.nEmbd, K, random), tasks);
  const data = tasks.flatMap((t, i) => examples(12, seed + i, i, t.kind === 'multi'));
  await train(model, classifier, data, { epochs: 1, batchSize: 8, lr: 1e-2, seed, losses: tasks.map(() => ({})), cacheBytes: 0 });
  const checkpoint: PromptCheckpoint = { model: { config, fingerprint: 'test-model' }, tasks, promptTokens: P, params: await classifier.params(), training: {} };
  classifier.dispose();
  return decodeCheckpoint(encodeCheckpoint(checkpoint), `seed-${seed}.gpt2p`);
}

/** Logits [K] of one text run alone (a batch of one) through `classifier`'s prompt `group`. */
async function alone(model: GPT2, classifier: PromptClassifier, tokens: Uint32Array, group = 0): Promise<Float32Array> {
  const past = encode(model, tokenBatch([{ tokens, task: 0, label: 0, targets: null }], [0]));
  const logits = noGrad(() => tidy(() => classifier.logits(model, past, group)));
  disposePast(past);
  const values = await logits.readF32();
  logits.dispose();
  return values;
}

const sentiment: Task = { name: 'sentiment', kind: 'single', labelNames: ['bad', 'good'], start: 0 };
const emotion: Task = { name: 'emotion', kind: 'multi', labelNames: ['joy', 'anger', 'fear'], start: 0 };

/** Texts of different lengths (one empty), so the batch is padded. */
function texts(): Uint32Array[] {
  const random = seededRandom(77);
  return [0, 7, 1, 12, 3, 9, 5].map((n) => Uint32Array.from({ length: n }, () => Math.floor(random() * 200)));
}

const adapters: { name: string; open: () => Promise<Gpu | null> }[] = [
  { name: 'default adapter', open: () => testGpu() },
  { name: 'vulkan (lavapipe)', open: () => openGpu({ backend: 'vulkan', quiet: true }).catch(() => null) },
];

describe.each(adapters)('mixed-task batches on the $name', ({ open }) => {
  let gpu: Gpu | null;
  let model: GPT2;
  let sentimentFile: PromptCheckpoint;
  let emotionFile: PromptCheckpoint;
  let bothFile: PromptCheckpoint;

  beforeAll(async () => {
    gpu = await open();
    if (!gpu) return;
    gpu.poison = true;
    model = new GPT2(gpu, config, randomWeights(config, 5, 0.2));
    sentimentFile = await trainedFile(model, [sentiment], 1);
    emotionFile = await trainedFile(model, [emotion], 2);
    bothFile = await trainedFile(model, [sentiment, { ...emotion, start: 2 }], 3);
  }, 120_000);

  it('rows of separately trained prompt files, composed, each equal the row run alone with its own file', async (ctx) => {
    if (!gpu) return ctx.skip();
    const composite = composeHeads([
      { source: 'sentiment.gpt2p', checkpoint: sentimentFile },
      { source: 'emotion.gpt2p', checkpoint: emotionFile },
    ]);
    expect(composite.tasks.map((t) => t.group)).toEqual([0, 1]);
    const mixed = new PromptClassifier(model, composite.params, composite.tasks);
    const own = [new PromptClassifier(model, sentimentFile.params, sentimentFile.tasks), new PromptClassifier(model, emotionFile.params, emotionFile.tasks)];
    // Tasks alternate; one row asks for both (two passes over one encoding).
    const rows: MixedRow[] = texts().map((tokens, r) => ({ tokens, tasks: r === 3 ? [0, 1] : [r % 2] }));
    const got = await mixedLogits(model, mixed, rows);
    let compared = 0;
    for (const [r, row] of rows.entries()) {
      for (const t of row.tasks) {
        const task = composite.tasks[t]!;
        const expected = await alone(model, own[t]!, row.tokens);
        const width = task.labelNames.length;
        expect(Array.from(got[r]!.subarray(task.start, task.start + width)), `row ${r}, task ${task.name}`).toEqual(Array.from(expected));
        expect(taskPrediction(task, got[r]!)).toEqual(taskPrediction(own[t]!.tasks[0]!, expected));
        compared++;
      }
      // Columns of tasks the row did not ask for stay NaN: nothing is read from another row's pass.
      for (const task of composite.tasks.filter((_, t) => !row.tasks.includes(t))) {
        expect(Array.from(got[r]!.subarray(task.start, task.start + task.labelNames.length)).every(Number.isNaN)).toBe(true);
      }
    }
    expect(compared).toBe(8);
    [mixed, ...own].forEach((c) => c.dispose());
  });

  it('rows of one multi-task prompt file, asking for different tasks, each equal the row run alone', async (ctx) => {
    if (!gpu) return ctx.skip();
    const classifier = new PromptClassifier(model, bothFile.params, bothFile.tasks);
    const rows: MixedRow[] = texts().map((tokens, r) => ({ tokens, tasks: [r % 3 === 0 ? 1 : 0] }));
    const got = await mixedLogits(model, classifier, rows);
    for (const [r, row] of rows.entries()) {
      const task = bothFile.tasks[row.tasks[0]!]!;
      const expected = (await alone(model, classifier, row.tokens)).subarray(task.start, task.start + task.labelNames.length);
      expect(Array.from(got[r]!.subarray(task.start, task.start + task.labelNames.length)), `row ${r}`).toEqual(Array.from(expected));
    }
    classifier.dispose();
  });

  it('refuses rows that ask for no task or a task the classifier lacks, and prompt groups it lacks', async (ctx) => {
    if (!gpu) return ctx.skip();
    const classifier = new PromptClassifier(model, sentimentFile.params, sentimentFile.tasks);
    const tokens = Uint32Array.of(1, 2);
    await expect(mixedLogits(model, classifier, [{ tokens, tasks: [] }])).rejects.toThrow(/row 0 asks for no task/);
    await expect(mixedLogits(model, classifier, [{ tokens, tasks: [1] }])).rejects.toThrow(/row 0 asks for task 1, the classifier has 1/);
    const past = encode(model, tokenBatch([{ tokens, task: 0, label: 0, targets: null }], [0]));
    expect(() => noGrad(() => tidy(() => classifier.rowLogits(model, past, Uint32Array.of(1))))).toThrow(/row 0 asks for prompt group 1, the classifier has 1/);
    expect(() => noGrad(() => tidy(() => classifier.rowLogits(model, past, Uint32Array.of(0, 0))))).toThrow(/2 prompt groups for a batch of 1 rows/);
    disposePast(past);
    classifier.dispose();
  });
});

describe('taskPrediction', () => {
  it('single-label: the argmax and the softmax; multi-label: every positive logit and the sigmoids', () => {
    const single: Task = { name: 's', kind: 'single', labelNames: ['bad', 'good'], start: 1 };
    const s = taskPrediction(single, Float32Array.of(NaN, 0.5, 2));
    expect(s).toMatchObject({ label: 'good' });
    const e = Math.exp(1.5);
    expect(s.scores.good).toBeCloseTo(e / (1 + e), 6);
    expect(s.scores.bad).toBeCloseTo(1 / (1 + e), 6);
    const multi: Task = { name: 'm', kind: 'multi', labelNames: ['joy', 'love', 'fear'], start: 0 };
    const m = taskPrediction(multi, Float32Array.of(0.3, 1.2, -0.4));
    expect(m).toMatchObject({ labels: ['joy', 'love'] });
    expect(m.scores.fear).toBeCloseTo(1 / (1 + Math.exp(0.4)), 6);
  });
});
