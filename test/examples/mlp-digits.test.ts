// examples/mlp-digits.ts end to end: the MLP it trains with the general API must classify the
// held-out digits as well as scikit-learn's MLP of the same shape does on the same split.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { readDigits, trainMlp, TRAIN_ROWS, PIXELS, CLASSES } from '../../examples/mlp-digits.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('examples/mlp-digits', () => {
  it('reads the README split: 1,347 training and 450 test rows, pixels in [0, 1], every digit in both', () => {
    const { train, test } = readDigits();
    expect([train.rows, test.rows]).toEqual([TRAIN_ROWS, 450]);
    expect(train.features.length).toBe(TRAIN_ROWS * PIXELS);
    expect(Math.min(...train.features, ...test.features)).toBe(0);
    expect(Math.max(...train.features, ...test.features)).toBe(1);
    for (const split of [train, test]) expect(new Set(split.labels).size).toBe(CLASSES);
  });

  it('reaches test accuracy ≥ 0.92 (scikit-learn MLPClassifier, 128 ReLU units, Adam: 0.924–0.931)', async () => {
    const result = await trainMlp(gpu, readDigits());
    expect(result.total).toBe(450);
    expect(result.trainLoss).toBeLessThan(0.05);
    expect(result.accuracy).toBeGreaterThanOrEqual(0.92);
  });
});
