// examples/cnn-digits.ts end to end, the full recipe (15 epochs of Adam, seed 1): the CNN built
// from nn modules must classify the held-out digits as well as a PyTorch CNN of the same shape
// does on the same split (0.94–0.97 over three seeds), and a fresh model loaded from the saved
// safetensors file must classify them exactly as the trained one did.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { readDigits } from '../../examples/mlp-digits.ts';
import { digitsCnn, digitsBatch, trainCnn } from '../../examples/cnn-digits.ts';
import { tensor } from '../../src/index.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('examples/cnn-digits', () => {
  it('maps [N, 1, 8, 8] digits to [N, 10] logits with PyTorch-named state', () => {
    const { test } = readDigits();
    const model = digitsCnn(gpu).eval();
    const { x } = digitsBatch(test, [0, 1, 2]);
    expect(model.forward(tensor(gpu, x, [3, 1, 8, 8])).shape).toEqual([3, 10]);
    expect([...model.stateDict().keys()].filter((k) => k.startsWith('1.'))).toEqual(['1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']);
    model.dispose();
  });

  it('reaches test accuracy ≥ 0.95, and the reloaded model scores the same, leaving no tensor behind', async () => {
    await gpu.sync();
    const inUse = gpu.memory().inUse;
    const result = await trainCnn(gpu, readDigits());
    await gpu.sync();
    expect(gpu.memory().inUse).toBe(inUse);
    expect(result.total).toBe(450);
    expect(result.trainLoss).toBeLessThan(0.1);
    expect(result.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(result.reloadedCorrect).toBe(result.correct);
  }, 120_000);
});
