import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.js';
import { randomWeights } from '../gpt2/reference.js';
import { GPT2 } from '../../src/gpt2/model.js';
import type { GPT2Config } from '../../src/gpt2/config.js';
import { PromptClassifier, initialParams, type Task } from '../../src/prompt/classifier.js';
import { train, PastCache, lengthBuckets, mixedBuckets, tokenBatch, batchLoss, encode, disposePast, type Example } from '../../src/prompt/train.js';
import { tidy, noGrad } from '../../src/engine/tensor.js';
import { seededRandom } from '../../src/util/random.js';
import type { Gpu } from '../../src/gpu/context.js';

let gpu: Gpu;
let model: GPT2;
const config: GPT2Config = { vocabSize: 200, nPositions: 48, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEps: 1e-5, activation: 'gelu_new' };

beforeAll(async () => {
  gpu = await testGpu();
  model = new GPT2(gpu, config, randomWeights(config, 5, 0.2));
});

function examples(n: number, seed: number, task = 0, multi = false): Example[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const len = Math.floor(random() * 20);
    const label = random() < 0.5 ? 0 : 1;
    return {
      tokens: Uint32Array.from({ length: len }, () => Math.floor(random() * 100) + label * 100),
      task,
      label,
      targets: multi ? Float32Array.of(label, 1 - label, random() < 0.5 ? 1 : 0) : null,
    };
  });
}

const singleTask: Task = { name: 's', kind: 'single', labelNames: ['a', 'b'], start: 0 };

function classifier(tasks: Task[], seed: number): PromptClassifier {
  const random = seededRandom(seed);
  const K = tasks.reduce((n, t) => n + t.labelNames.length, 0);
  const prompt = Float32Array.from({ length: 3 * config.nEmbd }, () => random() - 0.5);
  return new PromptClassifier(model, initialParams(prompt, config.nEmbd, K, random), tasks);
}

describe('training loop', () => {
  it('caching the past on the GPU, in host memory, or recomputing it gives identical training', async () => {
    const data = examples(37, 1);
    const results: Float32Array[] = [];
    const losses: number[][] = [];
    for (const [gpuBytes, hostBytes] of [[Infinity, 0], [0, Infinity], [0, 0]]) {
      const c = classifier([singleTask], 2);
      const seen: number[] = [];
      const opt = await train(model, c, data, { epochs: 3, batchSize: 8, lr: 1e-2, seed: 3, losses: [{}], cacheBytes: gpuBytes!, hostCacheBytes: hostBytes!, onStep: ({ loss }) => seen.push(loss) });
      results.push((await c.params()).prompt);
      losses.push(seen);
      opt.dispose();
      c.dispose();
    }
    expect(losses[1]).toEqual(losses[0]);
    expect(losses[2]).toEqual(losses[0]);
    expect(Array.from(results[1]!)).toEqual(Array.from(results[0]!));
    expect(Array.from(results[2]!)).toEqual(Array.from(results[0]!));
    // It learns: the last epoch's mean loss is below the first's.
    const perEpoch = 5;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses[0]!.slice(-perEpoch))).toBeLessThan(mean(losses[0]!.slice(0, perEpoch)));
  });

  it('the cache keeps batches within each tier\'s budget', async () => {
    const data = examples(24, 4);
    const batches = lengthBuckets(data.map((e) => e.tokens.length), 8);
    const sizes = batches.map((b) => model.pastBytes(b.length, tokenBatch(data, b).width));
    const cache = new PastCache(model, sizes[0]!, sizes[1]!);
    for (let i = 0; i < batches.length; i++) {
      const { past, owned } = await cache.get(i, () => tokenBatch(data, batches[i]!));
      if (owned) disposePast(past);
    }
    expect(cache.stats).toMatchObject({ gpuBatches: 1, hostBatches: 1 });
    // A host-cached past uploaded again equals a fresh encode.
    const { past } = await cache.get(1, () => tokenBatch(data, batches[1]!));
    const fresh = encode(model, tokenBatch(data, batches[1]!));
    expect(Array.from(await past.layers[1]!.v.readF32())).toEqual(Array.from(await fresh.layers[1]!.v.readF32()));
    disposePast(past);
    disposePast(fresh);
    cache.dispose();
  });

  it('buckets group similar lengths; mixed buckets give every batch an equal share of each task', () => {
    const lengths = [5, 1, 9, 3, 7, 2];
    expect(lengthBuckets(lengths, 4)).toEqual([[1, 5, 3, 0], [4, 2]]);
    const data = [...examples(10, 5, 0), ...examples(4, 6, 1, true)];
    const mixed = mixedBuckets(data, 2, 4);
    expect(mixed).toHaveLength(5);
    for (const b of mixed) expect(b.map((i) => data[i]!.task).sort()).toEqual([0, 0, 1, 1]);
    expect(new Set(mixed.flat().filter((i) => data[i]!.task === 0)).size).toBe(10);
  });

  it('a multi-task batch loss is the tasks\' own losses weighted by their share of the batch', async () => {
    const tasks: Task[] = [singleTask, { name: 'm', kind: 'multi', labelNames: ['x', 'y', 'z'], start: 2 }];
    const data = [...examples(3, 7, 0), ...examples(2, 8, 1, true)];
    const c = classifier(tasks, 9);
    const lossOf = async (indices: number[]) => {
      const past = encode(model, tokenBatch(data, indices));
      const loss = noGrad(() => tidy(() => batchLoss(c.logits(model, past), data, indices, tasks, [{}, { posWeight: Float32Array.of(2, 1, 0.5) }])));
      disposePast(past);
      return (await loss.readF32())[0]!;
    };
    const mixed = await lossOf([0, 1, 2, 3, 4]);
    const single = await lossOf([0, 1, 2]);
    const multi = await lossOf([3, 4]);
    expect(single).toBeGreaterThan(0);
    expect(multi).toBeGreaterThan(0);
    expect(Math.abs(mixed - (0.6 * single + 0.4 * multi))).toBeLessThan(1e-6);
    c.dispose();
  });
});
