// batchNorm beyond the op suite's PyTorch cases (forward and gradients, test/ops/suite/nn-ops.ts):
// the running statistics it updates in place, against PyTorch's (scripts/nn-ops-reference.py),
// and its errors.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, expectClose } from '../helpers.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { batchNorm } from '../../src/ops/batchnorm.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import running from './fixtures/batchnorm-running.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('batchNorm running statistics', () => {
  for (const c of running) {
    it(`training on ${JSON.stringify(c.shape)} with momentum ${c.momentum} updates them in place as PyTorch (unbiased variance)`, async () => {
      const channels = c.shape[1]!;
      const x = tensor(gpu, c.x, c.shape);
      const mean = tensor(gpu, c.runningMean, [channels]);
      const variance = tensor(gpu, c.runningVar, [channels]);
      const buffers = [mean.bufferRange().buffer, variance.bufferRange().buffer];
      batchNorm(x, mean, variance, null, null, { training: true, momentum: c.momentum });
      // The same tensors, the same buffers: updated in place.
      expect([mean.bufferRange().buffer, variance.bufferRange().buffer]).toEqual(buffers);
      expectClose('running mean', await mean.readF32(), c.newMean, { atol: 1e-6, rtol: 1e-5 });
      expectClose('running var', await variance.readF32(), c.newVar, { atol: 1e-6, rtol: 1e-5 });
    });
  }

  it('leaves them alone in evaluation, and may go without them in training', async () => {
    const c = running[0]!;
    const channels = c.shape[1]!;
    const x = tensor(gpu, c.x, c.shape);
    const mean = tensor(gpu, c.runningMean, [channels]);
    const variance = tensor(gpu, c.runningVar, [channels]);
    batchNorm(x, mean, variance, null, null, { training: false });
    expect(Array.from(await mean.readF32())).toEqual(Array.from(Float32Array.from(c.runningMean)));
    expect(Array.from(await variance.readF32())).toEqual(Array.from(Float32Array.from(c.runningVar)));
    const y = batchNorm(x, null, null, null, null, { training: true });
    // Normalised per channel: each channel's mean is 0.
    const values = await y.readF32();
    for (let ch = 0; ch < channels; ch++) {
      let s = 0;
      for (let n = 0; n < c.shape[0]!; n++) s += values[n * channels + ch]!;
      expect(Math.abs(s)).toBeLessThan(1e-5);
    }
  });
});

describe('batchNorm training with some operands absent', () => {
  it('a weight without a bias, a running mean without a running variance: each used or updated on its own', async () => {
    const [n, c, l] = [3, 2, 5];
    const xs = Array.from({ length: n * c * l }, (_, i) => Math.sin(1.7 * i) * 2 + (i % 3));
    const w = [1.5, -0.5];
    const x = tensor(gpu, xs, [n, c, l], { requiresGrad: true });
    const weight = tensor(gpu, w, [c], { requiresGrad: true });
    const mean = tensor(gpu, [0.2, -0.1], [c]);
    const y = batchNorm(x, mean, null, weight, null, { training: true, momentum: 0.25, eps: 1e-5 });
    y.backward(tensor(gpu, xs.map((v) => Math.cos(v)), [n, c, l]));
    // float64: per channel, the batch's mean and biased variance.
    const at = (b: number, ch: number, k: number) => (b * c + ch) * l + k;
    const want = new Array<number>(xs.length);
    const dWeight = [0, 0];
    const means = [0, 0];
    for (let ch = 0; ch < c; ch++) {
      const idx = Array.from({ length: n * l }, (_, j) => at(Math.floor(j / l), ch, j % l));
      const mu = idx.reduce((a, i) => a + xs[i]!, 0) / idx.length;
      const variance = idx.reduce((a, i) => a + (xs[i]! - mu) ** 2, 0) / idx.length;
      means[ch] = mu;
      for (const i of idx) {
        const xhat = (xs[i]! - mu) / Math.sqrt(variance + 1e-5);
        want[i] = xhat * w[ch]!;
        dWeight[ch] += Math.cos(xs[i]!) * xhat;
      }
    }
    expectClose('y', await y.readF32(), want, { atol: 1e-5, rtol: 1e-5 });
    expectClose('dweight', await weight.grad!.readF32(), dWeight, { atol: 1e-5, rtol: 1e-5 });
    expectClose('running mean', await mean.readF32(), [0.75 * 0.2 + 0.25 * means[0]!, 0.75 * -0.1 + 0.25 * means[1]!], { atol: 1e-6, rtol: 1e-5 });
    // dx sums to 0 over each channel (the batch mean's gradient cancels it).
    const dx = await x.grad!.readF32();
    for (let ch = 0; ch < c; ch++) {
      let total = 0;
      for (let j = 0; j < n * l; j++) total += dx[at(Math.floor(j / l), ch, j % l)]!;
      expect(Math.abs(total)).toBeLessThan(1e-5);
    }
  });
});

describe('batchNorm errors', () => {
  it('names the shapes and the missing statistics', () => {
    const x = tensor(gpu, new Float32Array(12), [4, 3]);
    const c3 = tensor(gpu, [1, 1, 1], [3]);
    const c4 = tensor(gpu, [1, 1, 1, 1], [4]);
    expect(() => batchNorm(x, c3, c4)).toThrow('batchNorm: runningVar must be f32 [3] for input [4, 3], got f32 [4]');
    expect(() => batchNorm(x, null, null)).toThrow('batchNorm: evaluation (training false) needs runningMean and runningVar');
    expect(() => batchNorm(tensor(gpu, [1, 2, 3], [1, 3]), null, null, null, null, { training: true })).toThrow(
      'batchNorm: training needs more than 1 value per channel, got input [1, 3]',
    );
    expect(() => batchNorm(tensor(gpu, [1, 2, 3], [3]), c3, c3)).toThrow('batchNorm: needs an f32 [N, C] or [N, C, ...] input, got f32 [3]');
  });
});
