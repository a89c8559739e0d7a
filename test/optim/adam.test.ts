import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose } from '../helpers.ts';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.ts';
import { Adam, globalGradNorm } from '../../src/optim/adam.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** float64 Adam exactly as written in the torch.optim.Adam docs. */
class RefAdam {
  m: Float64Array;
  v: Float64Array;
  t = 0;
  constructor(
    public p: Float64Array,
    readonly h: Hyper,
  ) {
    this.m = new Float64Array(p.length);
    this.v = new Float64Array(p.length);
  }
  step(g: ArrayLike<number>): void {
    const { lr, beta1, beta2, eps } = this.h;
    this.t++;
    for (let i = 0; i < this.p.length; i++) {
      this.m[i] = beta1 * this.m[i]! + (1 - beta1) * g[i]!;
      this.v[i] = beta2 * this.v[i]! + (1 - beta2) * g[i]! ** 2;
      const mHat = this.m[i]! / (1 - beta1 ** this.t);
      const vHat = this.v[i]! / (1 - beta2 ** this.t);
      this.p[i]! -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  }
}

function setGrad(p: Tensor, g: ArrayLike<number>): void {
  p.grad = tensor(gpu, g, p.shape);
}

describe('Adam', () => {
  for (const [name, hyper] of [
    ['defaults', { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }],
    ['custom lr, betas and eps', { lr: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6 }],
  ] as [string, Hyper][]) {
    it(`${name}: 5 steps on several parameters match float64 Adam`, async () => {
      const shapes = [[1], [10, 100], [3, 259]];
      const init = shapes.map((s, k) => asF32(randn(s.reduce((a, b) => a * b, 1), 10 + k)));
      const params = shapes.map((s, k) => tensor(gpu, init[k]!, s, { requiresGrad: true }));
      const refs = init.map((p) => new RefAdam(Float64Array.from(p), hyper));
      const adam = name === 'defaults' ? new Adam(params) : new Adam(params, hyper);
      for (let step = 0; step < 5; step++) {
        params.forEach((p, k) => {
          // Gradients of varied magnitude, some exactly zero.
          const g = asF32(randn(p.size, 100 * step + k, 10 ** ((step % 3) - 1)).map((v, i) => (i % 17 === 3 ? 0 : v)));
          setGrad(p, g);
          refs[k]!.step(g);
        });
        const submits = gpu.submits;
        adam.step();
        expect(gpu.submits, 'step() must not submit or read back').toBe(submits);
        adam.zeroGrad();
        expect(params.every((p) => p.grad === null)).toBe(true);
      }
      for (let k = 0; k < params.length; k++) {
        expectClose(`adam ${name} param ${k} after 5 steps`, await params[k]!.readF32(), refs[k]!.p, { atol: 2e-6, rtol: 1e-6 });
      }
      const state = await adam.state();
      expect(state.step).toBe(5);
      state.m.forEach((m, k) => expectClose(`adam ${name} m ${k}`, m, refs[k]!.m, { atol: 1e-7, rtol: 1e-5 }));
      state.v.forEach((v, k) => expectClose(`adam ${name} v ${k}`, v, refs[k]!.v, { atol: 1e-9, rtol: 1e-5 }));
      adam.dispose();
      params.forEach((p) => p.dispose());
    });
  }

  it('matches hand-derived torch numbers for one element', async () => {
    // lr 0.01, betas 0.9/0.999, eps 1e-8, p0 = 0.5, gradients 0.2 then −0.1.
    // Step 1: m = 0.02, v = 4e-5; m̂ = 0.02/0.1 = 0.2, v̂ = 4e-5/0.001 = 0.04, √v̂ = 0.2,
    //   p = 0.5 − 0.01·0.2/(0.2 + 1e-8) = 0.4900000005: a step of lr·sign(g).
    // Step 2: m = 0.018 − 0.01 = 0.008, v = 3.996e-5 + 1e-5 = 4.996e-5;
    //   m̂ = 0.008/0.19 = 0.0421052632, v̂ = 4.996e-5/0.001999 = 0.0249924962, √v̂ = 0.1580901521,
    //   p = 0.49 − 0.01·0.0421052632/0.1580901521 = 0.49 − 0.0026633697 = 0.4873366303.
    const p = tensor(gpu, [0.5], [1], { requiresGrad: true });
    const adam = new Adam([p], { lr: 0.01 });
    setGrad(p, [0.2]);
    adam.step();
    expectClose('adam hand step 1', await p.readF32(), [0.4900000005], { atol: 1e-7, rtol: 0 });
    adam.zeroGrad();
    setGrad(p, [-0.1]);
    adam.step();
    expectClose('adam hand step 2', await p.readF32(), [0.4873366303], { atol: 1e-7, rtol: 0 });
    adam.dispose();
    p.dispose();
  });

  it('the first step moves every element by lr·sign(g), whatever the gradient scale', async () => {
    const g = [1e-3, -50, 7, -1e-2, 3e4];
    const p = tensor(gpu, new Float32Array(g.length), [g.length], { requiresGrad: true });
    const adam = new Adam([p]);
    setGrad(p, g);
    adam.step();
    expectClose('adam first step is lr·sign(g)', await p.readF32(), g.map((x) => -1e-3 * Math.sign(x)), { atol: 1e-8, rtol: 1e-4 });
    adam.dispose();
    p.dispose();
  });

  it('leaves parameters without a gradient untouched, works with grads from backward inside tidy', async () => {
    const a = tensor(gpu, [1, 2, 3], [3], { requiresGrad: true });
    const b = tensor(gpu, [4, 5], [2], { requiresGrad: true });
    const adam = tidy(() => new Adam([a, b], { lr: 0.1 }));
    tidy(() => a.reshape([3, 1]).backward(tensor(gpu, [1, -1, 0.5], [3, 1])));
    adam.step();
    expectClose('adam param with grad', await a.readF32(), [0.9, 2.1, 2.9], { atol: 1e-6 });
    expectClose('adam param without grad', await b.readF32(), [4, 5], { atol: 0, rtol: 0 });
    adam.zeroGrad();
    adam.dispose();
    a.dispose();
    b.dispose();
  });

  it('state() and loadState() resume training exactly', async () => {
    const init = asF32(randn(300, 7));
    const grads = [0, 1, 2, 3].map((s) => asF32(randn(300, 50 + s)));
    const p1 = tensor(gpu, init, [300], { requiresGrad: true });
    const a1 = new Adam([p1], { lr: 0.01 });
    for (const g of grads.slice(0, 2)) {
      setGrad(p1, g);
      a1.step();
      a1.zeroGrad();
    }
    const saved = await a1.state();
    const p2 = tensor(gpu, await p1.readF32(), [300], { requiresGrad: true });
    const a2 = new Adam([p2], { lr: 0.01 });
    a2.loadState(saved);
    for (const g of grads.slice(2)) {
      for (const [p, a] of [[p1, a1], [p2, a2]] as const) {
        setGrad(p, g);
        a.step();
        a.zeroGrad();
      }
    }
    expect(Array.from(await p2.readF32())).toEqual(Array.from(await p1.readF32()));
    expect((await a2.state()).step).toBe(4);
    expect(() => a2.loadState({ step: 1, m: [new Float32Array(3)], v: [new Float32Array(300)] })).toThrow(/m\[0\] has 3 values/);
    expect(() => a2.loadState({ step: 1, m: [], v: [] })).toThrow(/0\/0 parameters/);
    for (const t of [p1, p2]) t.dispose();
    a1.dispose();
    a2.dispose();
  });

  it('AdamW: decoupled weight decay per parameter and a gradient scale match float64 torch.optim.AdamW', async () => {
    // torch.optim.AdamW: p ← p·(1 − lr·wd), then the Adam update with the scaled gradient s·g.
    const lrs = [0.02, 0.05, 0.01];
    const decays = [0.1, 0];
    const init = [asF32(randn(70, 3)), asF32(randn(33, 4))];
    const params = init.map((x) => tensor(gpu, x, [x.length], { requiresGrad: true }));
    const ref = init.map((x) => ({ p: Float64Array.from(x), m: new Float64Array(x.length), v: new Float64Array(x.length) }));
    const [beta1, beta2, eps] = [0.9, 0.95, 1e-8];
    const adam = new Adam(params, { beta1, beta2, eps, weightDecay: decays });
    for (let t = 1; t <= 3; t++) {
      const scale = t === 2 ? 0.25 : 1;
      adam.lr = lrs[t - 1]!;
      params.forEach((p, k) => {
        const g = asF32(randn(p.size, 20 * t + k));
        setGrad(p, g);
        const r = ref[k]!;
        for (let i = 0; i < p.size; i++) {
          const gi = g[i]! * scale;
          r.p[i]! *= 1 - adam.lr * decays[k]!;
          r.m[i] = beta1 * r.m[i]! + (1 - beta1) * gi;
          r.v[i] = beta2 * r.v[i]! + (1 - beta2) * gi * gi;
          r.p[i]! -= (adam.lr * (r.m[i]! / (1 - beta1 ** t))) / (Math.sqrt(r.v[i]! / (1 - beta2 ** t)) + eps);
        }
      });
      adam.step({ gradScale: scale });
      adam.zeroGrad();
    }
    for (let k = 0; k < params.length; k++) expectClose(`adamw param ${k}`, await params[k]!.readF32(), ref[k]!.p, { atol: 2e-6, rtol: 1e-6 });
    expect(() => new Adam(params, { weightDecay: [0.1] })).toThrow(/1 weight decays for 2 parameters/);
    adam.dispose();
    params.forEach((p) => p.dispose());
  });

  it('globalGradNorm: the L2 norm over every gradient, as clip_grad_norm_ measures it (sizes past one workgroup span)', async () => {
    const sizes = [1, 16385, 40000, 7];
    const grads = sizes.map((n, k) => asF32(randn(n, 90 + k, k + 1)));
    const params = sizes.map((n) => tensor(gpu, new Float32Array(n), [n], { requiresGrad: true }));
    // The third parameter has no gradient: it counts as zero.
    params.forEach((p, k) => k !== 2 && setGrad(p, grads[k]!));
    let sum = 0;
    grads.forEach((g, k) => k !== 2 && g.forEach((x) => (sum += x * x)));
    expectClose('global grad norm', [await globalGradNorm(params)], [Math.sqrt(sum)], { atol: 0, rtol: 1e-6 });
    expect(await globalGradNorm([])).toBe(0);
    params.forEach((p) => p.dispose());
  });
});
