import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { testGpu, expectClose } from '../helpers.ts';
import { referenceHidden, randomWeights } from './reference.ts';
import { GPT2, type ModelPast } from '../../src/gpt2/model.ts';
import type { GPT2Config } from '../../src/gpt2/config.ts';
import { tensor, tidy, noGrad } from '../../src/tensor/tensor.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const small: GPT2Config = { vocabSize: 300, nPositions: 40, nEmbd: 24, nLayer: 3, nHead: 3, layerNormEps: 1e-5, activation: 'gelu_new' };

function idsOf(n: number, seed: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % vocab);
}

/** Runs texts as one right-padded batch; returns hidden [B, T, C] on the host and the past. */
function encodeBatch(model: GPT2, texts: number[][], width = Math.max(1, ...texts.map((t) => t.length))) {
  const ids = new Uint32Array(texts.length * width).fill(50256 % model.config.vocabSize);
  texts.forEach((t, b) => ids.set(t, b * width));
  const lengths = Uint32Array.from(texts, (t) => t.length);
  return noGrad(() => tidy(() => model.encodePast({ ids, lengths, width })));
}

describe('GPT-2 model', () => {
  const weights = randomWeights(small, 3, 0.1);

  it('matches a float64 reference at every real position of a padded batch', async () => {
    const model = new GPT2(gpu, small, weights);
    const texts = [idsOf(17, 1, 300), idsOf(1, 2, 300), idsOf(9, 3, 300)];
    const { hidden, past } = encodeBatch(model, texts);
    const got = await hidden.readF32();
    const C = small.nEmbd;
    texts.forEach((t, b) => {
      const ref = referenceHidden(small, weights, t);
      expectClose(`hidden of example ${b}`, got.subarray(b * 17 * C, (b * 17 + t.length) * C), ref, { atol: 2e-5, rtol: 1e-4 });
    });
    expect(past.layers).toHaveLength(3);
    model.dispose();
  });

  it('forwardWithPast equals a full forward over the concatenated sequence', async () => {
    const model = new GPT2(gpu, small, weights);
    const texts = [idsOf(12, 4, 300), idsOf(3, 5, 300), [] as number[]];
    const extra = [idsOf(4, 6, 300), idsOf(4, 7, 300), idsOf(4, 8, 300)];
    const { past, hidden } = encodeBatch(model, texts);
    hidden.dispose();
    const C = small.nEmbd;
    // The new vectors are the token embeddings of the extra tokens: [B, P, C].
    const vectors = noGrad(() => model.wte.forward(Uint32Array.from(extra.flat())).reshape([3, 4, C]));
    const out = await noGrad(() => model.forwardWithPast(past, vectors)).readF32();
    for (let b = 0; b < 3; b++) {
      const full = referenceHidden(small, weights, [...texts[b]!, ...extra[b]!]);
      const n = texts[b]!.length;
      expectClose(`example ${b} (past ${n}) with past vs full`, out.subarray(b * 4 * C, (b + 1) * 4 * C), full.subarray(n * C, (n + 4) * C), { atol: 2e-5, rtol: 1e-4 });
    }
    model.dispose();
  });

  it("an example's outputs are identical alone and in any batch with any padding", async () => {
    const model = new GPT2(gpu, small, weights);
    const prompt = tensor(gpu, Float32Array.from({ length: 5 * small.nEmbd }, (_, i) => Math.sin(i)), [5, small.nEmbd]);
    const target = idsOf(7, 9, 300);
    const run = async (texts: number[][], width?: number, at = 0) => {
      const { past, hidden } = encodeBatch(model, texts, width);
      hidden.dispose();
      const out = await noGrad(() => model.forwardWithPast(past as ModelPast, prompt)).readF32();
      const C = small.nEmbd;
      return out.slice(at * 5 * C, (at + 1) * 5 * C);
    };
    const alone = await run([target]);
    const inBatch = await run([idsOf(30, 1, 300), target, [], idsOf(2, 2, 300)], undefined, 1);
    const padded = await run([target], 35);
    const last = await run([idsOf(3, 3, 300), idsOf(25, 4, 300), target], 31, 2);
    expect(Array.from(inBatch)).toEqual(Array.from(alone));
    expect(Array.from(padded)).toEqual(Array.from(alone));
    expect(Array.from(last)).toEqual(Array.from(alone));
    model.dispose();
  });

  it('pastOf gives the same past as encodePast, bit for bit, with a fraction of the last block', async () => {
    const model = new GPT2(gpu, small, weights);
    const texts = [idsOf(11, 9, 300), idsOf(4, 10, 300)];
    const { past, hidden } = encodeBatch(model, texts);
    hidden.dispose();
    // The same ids encodeBatch runs, padding included.
    const ids = new Uint32Array(2 * 11).fill(50256 % 300);
    texts.forEach((t, b) => ids.set(t, b * 11));
    const batch = { ids, lengths: Uint32Array.of(11, 4), width: 11 };
    const before = gpu.dispatches;
    const only = noGrad(() => tidy(() => model.pastOf(batch)));
    const pastOfDispatches = gpu.dispatches - before;
    const full = noGrad(() => tidy(() => model.encodePast(batch)));
    // The last block's attention, projections, MLP and the final norm are skipped.
    expect(pastOfDispatches).toBeLessThan(gpu.dispatches - before - pastOfDispatches);
    full.hidden.dispose();
    for (const [l, layer] of only.layers.entries()) {
      expect(Array.from(await layer.k.readF32())).toEqual(Array.from(await past.layers[l]!.k.readF32()));
      expect(Array.from(await layer.v.readF32())).toEqual(Array.from(await past.layers[l]!.v.readF32()));
    }
    model.dispose();
  });

  it('lmLogits is the final hidden state times the tied embedding', async () => {
    const model = new GPT2(gpu, small, weights);
    const ids = idsOf(6, 12, 300);
    const { hidden } = encodeBatch(model, [ids]);
    const logits = await model.lmLogits(noGrad(() => hidden.reshape([6, small.nEmbd])));
    const ref = referenceHidden(small, weights, ids);
    const C = small.nEmbd;
    const expected = new Float64Array(6 * small.vocabSize);
    for (let t = 0; t < 6; t++) {
      for (let v = 0; v < small.vocabSize; v++) {
        let dot = 0;
        for (let c = 0; c < C; c++) dot += ref[t * C + c]! * weights.wte[v * C + c]!;
        expected[t * small.vocabSize + v] = dot;
      }
    }
    expectClose('lm logits', logits, expected, { atol: 1e-4, rtol: 1e-4 });
    model.dispose();
  });

  it('refuses sequences longer than n_positions', () => {
    const model = new GPT2(gpu, small, weights);
    expect(() => encodeBatch(model, [idsOf(41, 1, 300)])).toThrow(/41 positions exceeds the model's n_positions of 40/);
    model.dispose();
  });

  it('runs GPT-2 small (124M, random weights) with wte split across storage bindings', async () => {
    const config: GPT2Config = { vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, layerNormEps: 1e-5, activation: 'gelu_new' };
    const w = randomWeights(config, 11);
    const model = new GPT2(gpu, config, w);
    // 154 MB of wte: split wherever the adapter's binding limit is below that (128 MiB on the software adapter).
    const wteBytes = 50257 * 768 * 4;
    const shards = model.wte.shards;
    expect(shards.length).toBe(Math.ceil(wteBytes / gpu.limits.maxStorageBufferBindingSize));
    if (gpu.limits.maxStorageBufferBindingSize <= 128 * 2 ** 20) expect(shards.length).toBeGreaterThan(1);
    // One parameter [V, C] in one buffer, its row ranges in order, each within one binding.
    expect(model.stateDict().get('wte.weight')!.shape).toEqual([50257, 768]);
    expect(shards.reduce((n, s) => n + s.shape[0]!, 0)).toBe(50257);
    const whole = model.wte.weight.bufferRange();
    let offset = whole.offset;
    for (const s of shards) {
      const range = s.bufferRange();
      expect(range.buffer).toBe(whole.buffer);
      expect(range.offset).toBe(offset);
      expect(range.size).toBeLessThanOrEqual(gpu.limits.maxStorageBufferBindingSize);
      offset += range.size;
    }
    // Ids from both ends of the vocabulary, so every shard is read.
    const ids = [50256, 3, 40000, 25128, 25130, 7];
    const { hidden } = encodeBatch(model, [ids]);
    const got = await hidden.readF32();
    expectClose('GPT-2 small hidden', got, referenceHidden(config, w, ids), { atol: 1e-4, rtol: 1e-3 });
    const logits = await model.lmLogits(noGrad(() => hidden.reshape([ids.length, 768])));
    expect(logits.length).toBe(ids.length * 50257);
    expect(logits.every(Number.isFinite)).toBe(true);
    model.dispose();
    gpu.pool.trim();
  });
});

describe('golden fixture', () => {
  it('the golden command (npm run golden) matches ../shared/fixtures/tiny-gpt2 within tolerance', () => {
    // What `npm run golden` runs, without needing npm on the PATH (GPU machines may lack it).
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/golden.ts', '../shared/fixtures/tiny-gpt2'], { encoding: 'utf8', timeout: 120_000 });
    const line = run.stdout.trim().split('\n').at(-1);
    if (!line) throw new Error(`golden printed nothing; stderr:\n${run.stderr}`);
    const result = JSON.parse(line) as { maxAbsError: Record<string, number>; failed: string[] };
    expect(result.failed).toEqual([]);
    for (const name of ['hidden', 'past_k_layer0', 'past_v_last', 'ce.logits', 'bce.logits', 'ce.grad_prompt', 'bce.losses', 'ce.prompt_after']) {
      expect(result.maxAbsError[name], name).toBeLessThan(1e-4);
    }
    expect(run.status).toBe(0);
  });
});
