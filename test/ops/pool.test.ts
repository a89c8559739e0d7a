// maxPool2d and avgPool2d beyond the op suite's PyTorch cases (test/ops/suite/nn-ops.ts): ties,
// which random data never makes, against PyTorch's rule, and shapes that do not fit.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { tensor, tidy } from '../../src/tensor/tensor.ts';
import { maxPool2d, avgPool2d } from '../../src/ops/pool.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('maxPool2d ties', () => {
  it("sends each window's gradient to its first maximum in row-major order, as PyTorch", async () => {
    // One plane [4, 5] of ties; windows 2×2 stride 1 overlap, so an element can win several windows.
    // torch.nn.functional.max_pool2d(x, 2, 1) on this x, and its gradient of sum(w·y) for w = 1..12, from PyTorch 1.13:
    const x = [1, 1, 2, 2, 0, 1, 1, 2, 2, 0, 3, 3, 3, 0, 0, 3, 3, 3, 0, 5];
    const expectedY = [1, 2, 2, 2, 3, 3, 3, 2, 3, 3, 3, 5];
    const expectedGrad = [1, 0, 5, 4, 0, 0, 0, 0, 8, 0, 14, 16, 18, 0, 0, 0, 0, 0, 0, 12];
    const w = Array.from({ length: 12 }, (_, i) => i + 1);
    const input = tensor(gpu, x, [1, 1, 4, 5], { requiresGrad: true });
    const y = tidy(() => {
      const out = maxPool2d(input, { kernelSize: 2, stride: 1 });
      out.backward(tensor(gpu, w, out.shape));
      return out;
    });
    expect(y.shape).toEqual([1, 1, 3, 4]);
    expect(Array.from(await y.readF32())).toEqual(expectedY);
    expect(Array.from(await input.grad!.readF32())).toEqual(expectedGrad);
  });

  it('pads with -inf: a window of negative values over padding takes its largest real value', async () => {
    const x = tensor(gpu, [-5, -4, -3, -2], [1, 1, 2, 2]);
    const y = maxPool2d(x, { kernelSize: 2, stride: 2, padding: 1 });
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(await y.readF32())).toEqual([-5, -4, -3, -2]);
  });
});

describe('pooling errors', () => {
  it('names the shapes that do not fit', () => {
    const x = tensor(gpu, new Float32Array(2 * 3 * 2 * 5), [2, 3, 2, 5]);
    expect(() => maxPool2d(x, { kernelSize: 3 })).toThrow('maxPool2d: a [3, 3] window with padding [0, 0] does not fit input [2, 3, 2, 5] (output would be 0×1)');
    expect(() => avgPool2d(x, { kernelSize: 2, padding: 2 })).toThrow('avgPool2d: padding [2, 2] must be at most half the kernel size [2, 2], as in PyTorch');
    expect(() => maxPool2d(x.reshape([6, 2, 5]), { kernelSize: 2 })).toThrow('maxPool2d: needs an f32 [N, C, H, W] tensor, got f32 [6, 2, 5]');
    expect(() => avgPool2d(x, { kernelSize: [2, 0] })).toThrow('avgPool2d: kernelSize must be a positive integer or a pair of them, got [2,0]');
    expect(() => avgPool2d(x, { kernelSize: 2, stride: 1.5 })).toThrow('avgPool2d: stride must be a positive integer or a pair of them, got 1.5');
  });
});
