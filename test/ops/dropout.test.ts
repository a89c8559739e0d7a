// dropout's mask: its statistics (the kept fraction within binomial bounds), that the seed
// fixes it, and that the gradient goes through the same mask with the same scale.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { tensor, tidy } from '../../src/tensor/tensor.ts';
import { dropout } from '../../src/ops/dropout.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const N = 100_003;
const ones = () => tensor(gpu, new Float32Array(N).fill(1), [N], { requiresGrad: true });

describe('dropout', () => {
  for (const p of [0.1, 0.5, 0.9]) {
    it(`keeps a fraction 1 − p of the elements for p = ${p}, within 5 binomial standard deviations, scaled by 1/(1 − p)`, async () => {
      const y = await dropout(ones(), p, { seed: 7 }).readF32();
      const scale = Math.fround(1 / (1 - p));
      const kept = y.filter((v) => v !== 0);
      expect(kept.every((v) => v === scale)).toBe(true);
      const sd = Math.sqrt(N * p * (1 - p));
      expect(Math.abs(kept.length - N * (1 - p))).toBeLessThan(5 * sd);
    });
  }

  it('keeps neighbours independently: runs of kept elements are as long as chance makes them', async () => {
    const y = await dropout(ones(), 0.5, { seed: 3 }).readF32();
    // Pairs (i, i + 1) both kept: about N/4 for independent coin flips.
    let both = 0;
    for (let i = 0; i + 1 < N; i++) if (y[i] !== 0 && y[i + 1] !== 0) both++;
    const sd = Math.sqrt(N * 0.25 * 0.75);
    expect(Math.abs(both - (N - 1) / 4)).toBeLessThan(6 * sd);
  });

  it('gives the same mask for the same seed and a different one for another seed', async () => {
    const x = ones();
    const [a, b, c] = await Promise.all([1, 1, 2].map((seed) => dropout(x, 0.5, { seed }).readF32()));
    expect(Array.from(a!)).toEqual(Array.from(b!));
    let differ = 0;
    for (let i = 0; i < N; i++) if ((a![i] === 0) !== (c![i] === 0)) differ++;
    // Independent masks disagree on half the elements.
    expect(Math.abs(differ - N / 2)).toBeLessThan(5 * Math.sqrt(N / 4));
  });

  it('sends the gradient through the same mask: dx = mask·scale·g', async () => {
    const x = ones();
    const g = Float32Array.from({ length: N }, (_, i) => (i % 7) - 3);
    const y = tidy(() => {
      const out = dropout(x, 0.3, { seed: 11 });
      out.backward(tensor(gpu, g, [N]));
      return out;
    });
    const [mask, dx] = await Promise.all([y.readF32(), x.grad!.readF32()]);
    // x is all ones, so y is the mask times the scale.
    for (let i = 0; i < N; i++) if (dx[i] !== Math.fround(mask[i]! * g[i]!)) throw new Error(`dx[${i}] = ${dx[i]}, mask·scale·g = ${mask[i]! * g[i]!}`);
  });

  it('is x itself (a view, no copy) when not training or p = 0, and zeros for p = 1', async () => {
    const x = tensor(gpu, [1, -2, 3], [3]);
    for (const y of [dropout(x, 0.5, { training: false, seed: 1 }), dropout(x, 0, { seed: 1 })]) {
      expect(y).not.toBe(x);
      expect(y.bufferRange().buffer).toBe(x.bufferRange().buffer);
    }
    expect(Array.from(await dropout(x, 1, { seed: 1 }).readF32())).toEqual([0, 0, 0]);
  });

  it('rejects a p outside [0, 1] and a seed that is not a u32', () => {
    const x = tensor(gpu, [1], [1]);
    expect(() => dropout(x, 1.5, { seed: 1 })).toThrow('dropout: probability p must be in [0, 1], got 1.5');
    expect(() => dropout(x, 0.5, { seed: -1 })).toThrow('dropout: seed -1 must be an integer in [0, 2³²)');
  });
});
