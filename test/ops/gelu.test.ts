import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import { tensor, tidy, type Shape } from '../../src/tensor/tensor.ts';
import { gelu, GELU_TANH } from '../../src/ops/gelu.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const K = Math.sqrt(2 / Math.PI);
const refGelu = (x: number) => 0.5 * x * (1 + Math.tanh(K * (x + 0.044715 * x ** 3)));
function refSlope(x: number): number {
  const t = Math.tanh(K * (x + 0.044715 * x ** 3));
  // Once tanh has saturated to ±1 the second term is 0; evaluating it for huge x would give 0·∞ = NaN.
  const inner = t * t === 1 ? 0 : 0.5 * x * (1 - t * t) * K * (1 + 3 * 0.044715 * x * x);
  return 0.5 * (1 + t) + inner;
}

async function run(x: Float64Array, w: Float64Array, shape: Shape) {
  const tx = tensor(gpu, x, shape, { requiresGrad: true });
  const y = tidy(() => {
    const out = gelu(tx, GELU_TANH);
    out.backward(tensor(gpu, w, shape));
    return out;
  });
  return { y: await y.readF32(), dx: await tx.grad!.readF32() };
}

describe('gelu', () => {
  // 1000 and [4, 768] take the vec4 kernels, the others the scalar ones.
  for (const shape of [[1], [3], [1, 1001], [1000], [4, 768]] as Shape[]) {
    it(`${JSON.stringify(shape)} forward and backward match float64 and finite differences`, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = asF32(randn(n, n, 3));
      const w = asF32(randn(n, n + 1));
      const got = await run(x, w, shape);
      expectClose(`gelu forward ${shape}`, got.y, x.map(refGelu), { atol: 2e-6 });
      const loss = (v: Float64Array) => v.reduce((s, xi, i) => s + refGelu(xi) * w[i]!, 0);
      const fd = n <= 1001 ? finiteDifferences(loss, x) : x.map((v, i) => refSlope(v) * w[i]!);
      expectClose(`gelu backward ${shape}`, got.dx, fd, { atol: 1e-5, rtol: 1e-4 });
    });
  }

  it('stays finite and exact for large |x| (tanh saturates without NaN)', async () => {
    const x = asF32([-1e30, -1e20, -1e4, -100, -30, -10, -5, 5, 10, 30, 100, 1e4, 1e20, 1e30, 0, -0.1, 0.1, 2]);
    const w = asF32(randn(x.length, 7));
    const got = await run(x, w, [x.length]);
    expect(got.y.every(Number.isFinite)).toBe(true);
    expect(got.dx.every(Number.isFinite)).toBe(true);
    expectClose('gelu forward large |x|', got.y, x.map(refGelu), { atol: 1e-6 });
    expectClose('gelu backward large |x|', got.dx, x.map((v, i) => refSlope(v) * w[i]!), { atol: 1e-6, rtol: 1e-4 });
  });
});
