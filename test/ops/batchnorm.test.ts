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
