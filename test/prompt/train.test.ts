import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { randomWeights } from '../gpt2/reference.ts';
import { GPT2 } from '../../src/gpt2/model.ts';
import type { GPT2Config } from '../../src/gpt2/config.ts';
import { PromptClassifier, initialParams, type Task } from '../../src/prompt/classifier.ts';
import { train, PastCache, lengthBuckets, mixedBuckets, tokenBatch, batchLoss, encode, disposePast, type Example } from '../../src/prompt/train.ts';
import { tidy, noGrad } from '../../src/tensor/tensor.ts';
import { seededRandom } from '../../src/util/random.ts';
import type { Gpu } from '../../src/gpu/context.ts';

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
  /** Step losses and the final prompt of one training run of 3 epochs. */
  async function trainRun(data: Example[], cache: { cacheBytes: number; hostCacheBytes: number; cacheF16?: boolean }): Promise<{ losses: number[]; prompt: Float32Array }> {
    const c = classifier([singleTask], 2);
    const losses: number[] = [];
    const opt = await train(model, c, data, { epochs: 3, batchSize: 8, lr: 1e-2, seed: 3, losses: [{}], ...cache, onStep: ({ loss }) => losses.push(loss) });
    const { prompt } = await c.params();
    opt.dispose();
    c.dispose();
    return { losses, prompt };
  }

  // Per precision of the past: the three ways of getting it must train bit for bit alike.
  for (const cacheF16 of [false, true]) {
    it(`caching the ${cacheF16 ? 'f16' : 'f32'} past on the GPU, in host memory, or recomputing it gives identical training`, async () => {
      const data = examples(37, 1);
      const runs: { losses: number[]; prompt: Float32Array }[] = [];
      for (const [cacheBytes, hostCacheBytes] of [[Infinity, 0], [0, Infinity], [0, 0]]) runs.push(await trainRun(data, { cacheBytes: cacheBytes!, hostCacheBytes: hostCacheBytes!, cacheF16 }));
      for (const run of runs.slice(1)) {
        expect(run.losses).toEqual(runs[0]!.losses);
        expect(Array.from(run.prompt)).toEqual(Array.from(runs[0]!.prompt));
      }
      // It learns: the last epoch's mean loss is below the first's.
      const perEpoch = 5;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const { losses } = runs[0]!;
      expect(mean(losses.slice(-perEpoch))).toBeLessThan(mean(losses.slice(0, perEpoch)));
      if (!cacheF16) return;
      // Rounding the past to halves moves the losses, but only slightly.
      const f32 = await trainRun(data, { cacheBytes: Infinity, hostCacheBytes: 0 });
      const relative = losses.map((l, i) => Math.abs(l - f32.losses[i]!) / Math.abs(f32.losses[i]!));
      expect(Math.max(...relative)).toBeLessThan(1e-2);
      expect(Math.max(...relative)).toBeGreaterThan(0);
    });
  }

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

  it('an f16 cache holds twice the batches in the same budgets, and its host copies keep the halves as they are', async () => {
    // Texts of one length, so every batch's past has the same size.
    const data = examples(48, 10).map((e, i) => ({ ...e, tokens: Uint32Array.from({ length: 12 }, (_, t) => (i * 7 + t) % 200) }));
    const batches = lengthBuckets(data.map((e) => e.tokens.length), 8);
    const f32Bytes = model.pastBytes(8, 12);
    expect(model.pastBytes(8, 12, { pastF16: true })).toBe(f32Bytes / 2);
    const fill = async (cache: PastCache) => {
      for (let i = 0; i < batches.length; i++) {
        const { past, owned } = await cache.get(i, () => tokenBatch(data, batches[i]!));
        if (owned) disposePast(past);
      }
      return cache.stats;
    };
    const f32 = new PastCache(model, 2 * f32Bytes, f32Bytes);
    const f16 = new PastCache(model, 2 * f32Bytes, f32Bytes, { pastF16: true });
    expect(await fill(f32)).toEqual({ gpuBatches: 2, hostBatches: 1, gpuBytes: 2 * f32Bytes, hostBytes: f32Bytes });
    expect(await fill(f16)).toEqual({ gpuBatches: 4, hostBatches: 2, gpuBytes: 2 * f32Bytes, hostBytes: f32Bytes });
    // Batch 5 is held on the host: uploaded again it is the f16 past a fresh encode gives, bit for bit.
    const { past, owned } = await f16.get(5, () => tokenBatch(data, batches[5]!));
    expect(owned).toBe(true);
    const fresh = encode(model, tokenBatch(data, batches[5]!), { pastF16: true });
    expect(past.layers[1]!.k.dtype).toBe('f16');
    expect(Array.from(await past.layers[1]!.k.readRaw())).toEqual(Array.from(await fresh.layers[1]!.k.readRaw()));
    expect(Array.from(await past.layers[0]!.v.readRaw())).toEqual(Array.from(await fresh.layers[0]!.v.readRaw()));
    disposePast(past);
    disposePast(fresh);
    f32.dispose();
    f16.dispose();
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
