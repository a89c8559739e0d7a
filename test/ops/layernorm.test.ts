import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences, withKernelFeatures } from '../helpers.ts';
import { tensor, tidy, noGrad, type Shape } from '../../src/tensor/tensor.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { leakCheck } from '../../src/tensor/memory.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** float64 layer norm over rows of length c; also returns x̂ for the analytic gradients. */
function refLayerNorm(x: Float64Array, gamma: Float64Array, beta: Float64Array, c: number, eps = 1e-5) {
  const y = new Float64Array(x.length);
  const xhat = new Float64Array(x.length);
  const rstds = new Float64Array(x.length / c);
  for (let r = 0; r < x.length / c; r++) {
    let mean = 0;
    for (let i = 0; i < c; i++) mean += x[r * c + i]!;
    mean /= c;
    let v = 0;
    for (let i = 0; i < c; i++) v += (x[r * c + i]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / c + eps);
    rstds[r] = rstd;
    for (let i = 0; i < c; i++) {
      xhat[r * c + i] = (x[r * c + i]! - mean) * rstd;
      y[r * c + i] = xhat[r * c + i]! * gamma[i]! + beta[i]!;
    }
  }
  return { y, xhat, rstds };
}

/** Analytic float64 gradients of Σ w·y (checked against finite differences on small cases below). */
function refGrads(x: Float64Array, gamma: Float64Array, w: Float64Array, c: number) {
  const { xhat, rstds } = refLayerNorm(x, gamma, new Float64Array(c), c);
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let r = 0; r < x.length / c; r++) {
    let mg = 0;
    let mgx = 0;
    for (let i = 0; i < c; i++) {
      const g = w[r * c + i]! * gamma[i]!;
      mg += g / c;
      mgx += (g * xhat[r * c + i]!) / c;
      dgamma[i]! += w[r * c + i]! * xhat[r * c + i]!;
      dbeta[i]! += w[r * c + i]!;
    }
    for (let i = 0; i < c; i++) dx[r * c + i] = rstds[r]! * (w[r * c + i]! * gamma[i]! - mg - xhat[r * c + i]! * mgx);
  }
  return { dx, dgamma, dbeta };
}

async function run(shape: Shape, x: Float64Array, gamma: Float64Array, beta: Float64Array, w: Float64Array, on = gpu) {
  const gpu = on;
  const c = shape.at(-1)!;
  const tx = tensor(gpu, x, shape, { requiresGrad: true });
  const tg = tensor(gpu, gamma, [c], { requiresGrad: true });
  const tb = tensor(gpu, beta, [c], { requiresGrad: true });
  const y = tidy(() => {
    const out = layerNorm(tx, tg, tb);
    out.backward(tensor(gpu, w, shape));
    return out;
  });
  return {
    y: await y.readF32(),
    dx: await tx.grad!.readF32(),
    dgamma: await tg.grad!.readF32(),
    dbeta: await tb.grad!.readF32(),
  };
}

function inputs(shape: Shape, seed: number, offset = 0) {
  const c = shape.at(-1)!;
  return {
    x: asF32(randn(numel(shape), seed, 2).map((v) => v + offset)),
    gamma: asF32(randn(c, seed + 1).map((v) => 1 + 0.5 * v)),
    beta: asF32(randn(c, seed + 2, 0.5)),
    w: asF32(randn(numel(shape), seed + 3)),
  };
}

describe('layerNorm', () => {
  // C = 1 normalizes to exactly beta; the others are not multiples of any workgroup size.
  const small: Shape[] = [[1, 1], [3, 1], [1, 3], [2, 1, 33], [2, 769]];
  for (const shape of small) {
    it(`${JSON.stringify(shape)} forward and backward match float64 and finite differences`, async () => {
      const c = shape.at(-1)!;
      const { x, gamma, beta, w } = inputs(shape, 10 + numel(shape));
      const got = await run(shape, x, gamma, beta, w);
      const loss = (xx: Float64Array, gg: Float64Array, bb: Float64Array) =>
        refLayerNorm(xx, gg, bb, c).y.reduce((s, v, i) => s + v * w[i]!, 0);
      expectClose(`layerNorm forward ${shape}`, got.y, refLayerNorm(x, gamma, beta, c).y, { atol: 2e-5 });
      const tol = { atol: 1e-4, rtol: 1e-3 };
      expectClose(`layerNorm dx ${shape}`, got.dx, finiteDifferences((v) => loss(v, gamma, beta), x), tol);
      expectClose(`layerNorm dgamma ${shape}`, got.dgamma, finiteDifferences((v) => loss(x, v, beta), gamma), tol);
      expectClose(`layerNorm dbeta ${shape}`, got.dbeta, finiteDifferences((v) => loss(x, gamma, v), beta), tol);
      // The analytic reference used for the larger cases agrees with finite differences here.
      expectClose(`layerNorm analytic reference ${shape}`, refGrads(x, gamma, w, c).dx, finiteDifferences((v) => loss(v, gamma, beta), x), tol);
    });
  }

  // 300 rows span many row chunks in the dγ/dβ reduction, the last one partial.
  for (const shape of [[300, 33], [4, 768], [3, 5, 768]] as Shape[]) {
    it(`${JSON.stringify(shape)} matches the analytic float64 gradients`, async () => {
      const c = shape.at(-1)!;
      const { x, gamma, beta, w } = inputs(shape, 20 + numel(shape));
      const got = await run(shape, x, gamma, beta, w);
      const ref = refGrads(x, gamma, w, c);
      expectClose(`layerNorm forward ${shape}`, got.y, refLayerNorm(x, gamma, beta, c).y, { atol: 2e-5 });
      expectClose(`layerNorm dx ${shape}`, got.dx, ref.dx, { atol: 1e-4, rtol: 1e-3 });
      expectClose(`layerNorm dgamma ${shape}`, got.dgamma, ref.dgamma, { atol: 1e-3, rtol: 1e-4 });
      expectClose(`layerNorm dbeta ${shape}`, got.dbeta, ref.dbeta, { atol: 1e-3, rtol: 1e-4 });
    });
  }

  it('keeps its accuracy for inputs offset by 1000 (no E[x²] − E[x]² cancellation)', async () => {
    const shape: Shape = [8, 768];
    // Unit variance under a 1000 offset: E[x²] − E[x]² in f32 would be off by ~0.1 in the variance.
    const x = asF32(randn(numel(shape), 31).map((v) => v + 1000));
    const gamma = asF32(randn(768, 32).map((v) => 1 + 0.5 * v));
    const beta = asF32(randn(768, 33, 0.5));
    const w = asF32(randn(numel(shape), 34));
    const got = await run(shape, x, gamma, beta, w);
    const ref = refGrads(x, gamma, w, 768);
    expectClose('layerNorm forward offset 1000', got.y, refLayerNorm(x, gamma, beta, 768).y, { atol: 1e-3, rtol: 0 });
    expectClose('layerNorm dx offset 1000', got.dx, ref.dx, { atol: 2e-3, rtol: 1e-3 });
    expectClose('layerNorm dgamma offset 1000', got.dgamma, ref.dgamma, { atol: 2e-3, rtol: 1e-3 });
  });

  it('handles more rows than one grid dimension allows', async () => {
    const shape: Shape = [70_000, 3];
    const { x, gamma, beta } = inputs(shape, 40);
    const y = noGrad(() => layerNorm(tensor(gpu, x, shape), tensor(gpu, gamma, [3]), tensor(gpu, beta, [3])));
    expectClose('layerNorm forward 70000 rows', await y.readF32(), refLayerNorm(x, gamma, beta, 3).y, { atol: 2e-5 });
  });

  it('honours eps', async () => {
    const x = asF32(randn(64, 41));
    const ones = new Float64Array(64).fill(1);
    const y = layerNorm(tensor(gpu, x, [1, 64]), tensor(gpu, ones, [64]), tensor(gpu, new Float64Array(64), [64]), 0.5);
    expectClose('layerNorm eps 0.5', await y.readF32(), refLayerNorm(x, ones, new Float64Array(64), 64, 0.5).y);
  });

  it('frozen gamma and beta cost one backward kernel and get no gradient', async () => {
    const shape: Shape = [5, 40];
    const { x, gamma, beta, w } = inputs(shape, 50);
    const tx = tensor(gpu, x, shape, { requiresGrad: true });
    const tg = tensor(gpu, gamma, [40]);
    const tb = tensor(gpu, beta, [40]);
    const y = layerNorm(tx, tg, tb);
    const dy = tensor(gpu, w, shape);
    const before = gpu.dispatches;
    y.backward(dy);
    expect(gpu.dispatches - before).toBe(1);
    expect(tg.grad).toBeNull();
    expect(tb.grad).toBeNull();
    expectClose('layerNorm dx frozen params', await tx.grad!.readF32(), refGrads(x, gamma, w, 40).dx, { atol: 1e-4, rtol: 1e-3 });
  });

  it('frees its saved statistics when nothing will run backward', async () => {
    const { x, gamma, beta } = inputs([16, 48], 60);
    const tx = tensor(gpu, x, [16, 48]);
    const tg = tensor(gpu, gamma, [48]);
    const tb = tensor(gpu, beta, [48]);
    const before = gpu.memory().inUse;
    await leakCheck(() => layerNorm(tx, tg, tb).dispose());
    expect(gpu.memory().inUse).toBe(before);
  });

  // The reductions' subgroup variant, and its fallback on the same device.
  for (const features of [['subgroups'], []] as const) {
    for (const shape of [[2, 1, 33], [3, 5, 768], [1, 1]] as Shape[]) {
      it(`${JSON.stringify(shape)} on a subgroups device with features [${features}] matches the float64 references`, async (ctx) => {
        await withKernelFeatures(ctx, [...features], async (device) => {
          const c = shape.at(-1)!;
          const { x, gamma, beta, w } = inputs(shape, 70 + numel(shape));
          const got = await run(shape, x, gamma, beta, w, device);
          const ref = refGrads(x, gamma, w, c);
          const name = `layerNorm [${features}] ${shape}`;
          expectClose(`${name} forward`, got.y, refLayerNorm(x, gamma, beta, c).y, { atol: 2e-5 });
          expectClose(`${name} dx`, got.dx, ref.dx, { atol: 1e-4, rtol: 1e-3 });
          expectClose(`${name} dgamma`, got.dgamma, ref.dgamma, { atol: 1e-3, rtol: 1e-4 });
        });
      });
    }
  }

  it('rejects gamma or beta of the wrong shape', () => {
    const x = tensor(gpu, new Float32Array(6), [2, 3]);
    expect(() => layerNorm(x, tensor(gpu, new Float32Array(4), [4]), tensor(gpu, new Float32Array(3), [3]))).toThrow(/gamma and beta/);
  });
});
