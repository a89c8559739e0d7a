import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences, withKernelFeatures } from '../helpers.ts';
import { tensor, tidy, noGrad, type Shape } from '../../src/tensor/tensor.ts';
import { softmax } from '../../src/ops/softmax.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);

function refSoftmax(x: Float64Array, n: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[r * n + i]!);
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(x[r * n + i]! - m);
    for (let i = 0; i < n; i++) y[r * n + i] = Math.exp(x[r * n + i]! - m) / s;
  }
  return y;
}

/** dx = y ⊙ (dy − Σ dy·y), in float64 (checked against finite differences below). */
function refBackward(x: Float64Array, dy: Float64Array, n: number): Float64Array {
  const y = refSoftmax(x, n);
  const dx = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += dy[r * n + i]! * y[r * n + i]!;
    for (let i = 0; i < n; i++) dx[r * n + i] = y[r * n + i]! * (dy[r * n + i]! - s);
  }
  return dx;
}

async function run(x: Float64Array, w: Float64Array, shape: Shape, on = gpu) {
  const gpu = on;
  const tx = tensor(gpu, x, shape, { requiresGrad: true });
  const y = tidy(() => {
    const out = softmax(tx);
    out.backward(tensor(gpu, w, shape));
    return out;
  });
  return { y: await y.readF32(), dx: await tx.grad!.readF32() };
}

describe('softmax', () => {
  // Rows of 1, 5, 257 and 1000: none a multiple of the workgroup size but 1.
  for (const shape of [[3, 1], [1, 5], [2, 3, 5], [2, 257], [2, 1000]] as Shape[]) {
    it(`${JSON.stringify(shape)} forward and backward match float64 and finite differences`, async () => {
      const n = shape.at(-1)!;
      const x = asF32(randn(numel(shape), numel(shape), 3));
      const w = asF32(randn(numel(shape), numel(shape) + 1));
      const got = await run(x, w, shape);
      expectClose(`softmax forward ${shape}`, got.y, refSoftmax(x, n), { atol: 1e-6 });
      const fd = finiteDifferences((v) => refSoftmax(v, n).reduce((s, yi, i) => s + yi * w[i]!, 0), x);
      expectClose(`softmax backward ${shape}`, got.dx, fd, { atol: 1e-6, rtol: 1e-4 });
      expectClose(`softmax analytic reference ${shape}`, refBackward(x, w, n), fd, { atol: 1e-8 });
    });
  }

  // The reductions' subgroup variant, and its fallback on the same device; ±1e4 logits check the max.
  for (const features of [['subgroups'], []] as const) {
    for (const shape of [[2, 3, 5], [2, 1000], [3, 1]] as Shape[]) {
      it(`${JSON.stringify(shape)} on a subgroups device with features [${features}] matches float64`, async (ctx) => {
        await withKernelFeatures(ctx, [...features], async (device) => {
          const n = shape.at(-1)!;
          const x = asF32(randn(numel(shape), 7 * numel(shape), 1e4));
          const w = asF32(randn(numel(shape), 7 * numel(shape) + 1));
          const got = await run(x, w, shape, device);
          expectClose(`softmax [${features}] forward ${shape}`, got.y, refSoftmax(x, n), { atol: 1e-6 });
          expectClose(`softmax [${features}] backward ${shape}`, got.dx, refBackward(x, w, n), { atol: 1e-6, rtol: 1e-4 });
        });
      });
    }
  }

  it('subtracts the max: logits ±1e4 that overflow (or underflow) a naive exp', async () => {
    const shape: Shape = [4, 257];
    // Rows around +1e4 and −1e4 with a spread of a few units, so probabilities and gradients are not one-hot.
    const x = asF32(randn(numel(shape), 5, 3).map((v, i) => v + (i < 2 * 257 ? 1e4 : -1e4)));
    const w = asF32(randn(numel(shape), 6));
    const got = await run(x, w, shape);
    expect(got.y.every(Number.isFinite)).toBe(true);
    expectClose('softmax forward 1e4', got.y, refSoftmax(x, 257), { atol: 1e-6 });
    expectClose('softmax backward 1e4', got.dx, refBackward(x, w, 257), { atol: 1e-6 });
  });

  it('gives masked (−∞) entries zero probability', async () => {
    const x = asF32([1, -Infinity, 2, -Infinity, 0.5]);
    const y = await noGrad(() => softmax(tensor(gpu, x, [1, 5]))).readF32();
    expectClose('softmax masked', y, refSoftmax(x, 5), { atol: 1e-7 });
  });

  it('handles more rows than one grid dimension allows', async () => {
    const shape: Shape = [66_000, 2];
    const x = asF32(randn(numel(shape), 8, 3));
    const y = await noGrad(() => softmax(tensor(gpu, x, shape))).readF32();
    expectClose('softmax 66000 rows', y, refSoftmax(x, 2), { atol: 1e-6 });
  });
});
