import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, expectClose } from '../helpers.ts';
import type { Shape } from '../../src/tensor/tensor.ts';
import { zeros, ones, full, arange, rand, randn } from '../../src/ops/creation.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);

describe('creation', () => {
  // Sizes off the 256-wide workgroup, rank 0 and rank 6; the device poisons new buffers, so unwritten elements show.
  const shapes: Shape[] = [[], [1], [257], [3, 70], [2, 1, 3, 1, 2, 3]];
  const fills: [string, (s: Shape) => ReturnType<typeof zeros>, number][] = [
    ['zeros', (s) => zeros(gpu, s), 0],
    ['ones', (s) => ones(gpu, s), 1],
    ['full', (s) => full(gpu, s, -2.5), -2.5],
  ];
  for (const [name, make, value] of fills) {
    for (const shape of shapes) {
      it(`${name} ${JSON.stringify(shape)}`, async () => {
        const t = make(shape);
        expect(t.shape).toEqual(shape);
        expect(Array.from(await t.readF32())).toEqual(new Array(numel(shape)).fill(value));
      });
    }
  }

  it('full makes u32 tensors, and options set requiresGrad and the label', async () => {
    const u = full(gpu, [5], 7, { dtype: 'u32' });
    expect(u.dtype).toBe('u32');
    expect(Array.from(await u.read())).toEqual([7, 7, 7, 7, 7]);
    const big = full(gpu, [2], 0xfffffffe, { dtype: 'u32' });
    expect(Array.from(await big.read())).toEqual([0xfffffffe, 0xfffffffe]);
    const g = zeros(gpu, [3], { requiresGrad: true, label: 'bias' });
    expect(g.requiresGrad).toBe(true);
    expect(g.label).toBe('bias');
    expect(() => full(gpu, [2], 1.5, { dtype: 'u32' })).toThrow(/u32 tensor needs an integer/);
    expect(() => full(gpu, [2], 1, { dtype: 'f16' })).toThrow(/f16/);
    expect(() => zeros(gpu, [2, -1])).toThrow(/shape \[2, -1\]/);
  });

  const aranges: [number, number | undefined, number | undefined, number[]][] = [
    [5, undefined, undefined, [0, 1, 2, 3, 4]],
    [2, 7, undefined, [2, 3, 4, 5, 6]],
    [1, 2, 0.3, [1, 1.3, 1.6, 1.9]],
    [5, 1, -1.5, [5, 3.5, 2]],
    [0, 0, undefined, []],
  ];
  for (const [start, end, step, expected] of aranges) {
    it(`arange(${start}, ${end}, ${step}) as torch.arange`, async () => {
      const t = arange(gpu, start, end, step);
      expect(t.shape).toEqual([expected.length]);
      expectClose('arange', await t.readF32(), Float64Array.from(Float32Array.from(expected)), { atol: 0, rtol: 0 });
    });
  }

  it('arange rejects a zero step or one moving away from end', () => {
    expect(() => arange(gpu, 0, 5, 0)).toThrow(/step nonzero/);
    expect(() => arange(gpu, 0, 5, -1)).toThrow(/moves away/);
  });

  it('rand is uniform in [0, 1), the same for the same seed and different for another', async () => {
    const shape: Shape = [40, 50];
    const a = await rand(gpu, shape, { seed: 7 }).readF32();
    const b = await rand(gpu, shape, { seed: 7 }).readF32();
    const c = await rand(gpu, shape, { seed: 8 }).readF32();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(a.every((v) => v >= 0 && v < 1)).toBe(true);
    const m = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length;
    // 2000 samples: the mean's standard error is 0.0065, the variance's about 0.0013.
    expect(Math.abs(m - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.006);
  });

  it('randn is standard normal, the same for the same seed', async () => {
    const t = randn(gpu, [4000], { seed: 3, requiresGrad: true });
    expect(t.requiresGrad).toBe(true);
    const a = await t.readF32();
    expect(Array.from(a)).toEqual(Array.from(await randn(gpu, [4000], { seed: 3 }).readF32()));
    const m = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length;
    expect(Math.abs(m)).toBeLessThan(0.07);
    expect(Math.abs(variance - 1)).toBeLessThan(0.1);
    // About 4.6% of normal samples lie beyond ±2.
    const tails = a.filter((v) => Math.abs(v) > 2).length / a.length;
    expect(tails).toBeGreaterThan(0.03);
    expect(tails).toBeLessThan(0.065);
  });
});
