// SGD and AdamW against float64 torch.optim (fixture by scripts/optim-reference.py), global-norm
// clipping against float64 in JS, and captured steps against plain ones, bit for bit.
import { readFileSync } from 'node:fs';
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose } from '../helpers.ts';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.ts';
import { AdamW } from '../../src/optim/adam.ts';
import { SGD, clipGradNorm, clipCoefficient, globalGradNorm, type Optimizer } from '../../src/optim/optim.ts';
import { CapturedStep } from '../../src/tensor/capture.ts';
import { mul, sumToShape } from '../../src/ops/elementwise.ts';
import { matmul } from '../../src/ops/matmul.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

interface TorchCase {
  name: string;
  optimizer: 'SGD' | 'AdamW';
  options: { lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weight_decay?: number; betas?: [number, number]; eps?: number };
  clip: number | null;
  shapes: number[][];
  init: number[][];
  grads: number[][][];
  after: number[][][];
  norms: number[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/optim-reference.json', import.meta.url), 'utf8')) as { cases: TorchCase[] };

function build(c: TorchCase, params: Tensor[]): Optimizer {
  const o = c.options;
  if (c.optimizer === 'SGD') return new SGD(params, { lr: o.lr, momentum: o.momentum, dampening: o.dampening, nesterov: o.nesterov, weightDecay: o.weight_decay });
  return new AdamW(params, { lr: o.lr, beta1: o.betas?.[0], beta2: o.betas?.[1], eps: o.eps, weightDecay: o.weight_decay });
}

describe('optimizers against float64 torch.optim', () => {
  expect(fixture.cases.length).toBeGreaterThanOrEqual(8);
  for (const c of fixture.cases) {
    it(`${c.name}: ${c.after.length} steps`, async () => {
      const params = c.shapes.map((s, k) => tensor(gpu, c.init[k]!, s, { requiresGrad: true }));
      const opt = build(c, params);
      for (let step = 0; step < c.grads.length; step++) {
        params.forEach((p, k) => (p.grad = tensor(gpu, c.grads[step]![k]!, p.shape)));
        if (c.clip === null) {
          opt.step();
        } else if (c.optimizer === 'SGD') {
          // In place, as torch.nn.utils.clip_grad_norm_.
          const norm = await clipGradNorm(params, c.clip);
          expectClose(`${c.name} norm ${step}`, [norm], [c.norms[step]!], { atol: 0, rtol: 1e-6 });
          opt.step();
        } else {
          // Folded into the update.
          const norm = await globalGradNorm(params);
          expectClose(`${c.name} norm ${step}`, [norm], [c.norms[step]!], { atol: 0, rtol: 1e-6 });
          opt.step({ gradScale: clipCoefficient(norm, c.clip) });
        }
        opt.zeroGrad();
        for (let k = 0; k < params.length; k++) {
          expectClose(`${c.name} param ${k} after step ${step + 1}`, await params[k]!.readF32(), c.after[step]![k]!, { atol: 2e-6, rtol: 2e-6 });
        }
      }
      expect(opt.stepCount).toBe(c.grads.length);
      opt.dispose();
      params.forEach((p) => p.dispose());
    });
  }

  it('AdamW defaults to torch’s weight decay 0.01; SGD checks its options', () => {
    const p = tensor(gpu, [1, 2], [2], { requiresGrad: true });
    const adamw = new AdamW([p]);
    expect(adamw.weightDecay).toEqual([0.01]);
    adamw.dispose();
    expect(() => new SGD([p], { nesterov: true })).toThrow(/nesterov needs momentum > 0/);
    expect(() => new SGD([p], { momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/dampening 0/);
    expect(() => new SGD([p], { momentum: -1 })).toThrow(/momentum -1/);
    expect(() => new SGD([p], { weightDecay: [0.1, 0.2] })).toThrow(/2 weight decays for 1 parameters/);
    expect(() => new SGD([p], { lr: Number.NaN })).toThrow(/learning rate NaN/);
    const sgd = new SGD([p]);
    expect(() => sgd.step({ gradScale: -1 })).toThrow(/gradScale -1/);
    sgd.dispose();
    p.dispose();
  });

  it('SGD state() and loadState() resume momentum exactly', async () => {
    const init = asF32(randn(40, 5));
    const grads = [0, 1, 2, 3].map((s) => asF32(randn(40, 70 + s)));
    const p1 = tensor(gpu, init, [40], { requiresGrad: true });
    const s1 = new SGD([p1], { lr: 0.1, momentum: 0.9, dampening: 0.2 });
    for (const g of grads.slice(0, 2)) {
      p1.grad = tensor(gpu, g, [40]);
      s1.step();
      s1.zeroGrad();
    }
    const p2 = tensor(gpu, await p1.readF32(), [40], { requiresGrad: true });
    const s2 = new SGD([p2], { lr: 0.1, momentum: 0.9, dampening: 0.2 });
    s2.loadState(await s1.state());
    for (const g of grads.slice(2)) {
      for (const [p, s] of [[p1, s1], [p2, s2]] as const) {
        p.grad = tensor(gpu, g, [40]);
        s.step();
        s.zeroGrad();
      }
    }
    expect(Array.from(await p2.readF32())).toEqual(Array.from(await p1.readF32()));
    expect(() => s2.loadState({ step: 1, momentum: [] })).toThrow(/0 momentum buffers/);
    for (const t of [p1, p2]) t.dispose();
    s1.dispose();
    s2.dispose();
  });
});

describe('clipGradNorm', () => {
  it('scales every gradient by min(1, maxNorm / (norm + 1e-6)) in place, as torch.nn.utils.clip_grad_norm_ (float64 reference)', async () => {
    const sizes = [1, 16385, 300, 7];
    const grads = sizes.map((n, k) => asF32(randn(n, 40 + k, k + 1)));
    const params = sizes.map((n) => tensor(gpu, new Float32Array(n), [n], { requiresGrad: true }));
    // The third parameter has no gradient: it counts as zero and stays without one.
    params.forEach((p, k) => k !== 2 && (p.grad = tensor(gpu, grads[k]!, p.shape)));
    let sum = 0;
    grads.forEach((g, k) => k !== 2 && g.forEach((x) => (sum += x * x)));
    const norm = Math.sqrt(sum);
    const maxNorm = norm / 3;
    const factor = maxNorm / (norm + 1e-6);
    expectClose('clipGradNorm returns the norm before clipping', [await clipGradNorm(params, maxNorm)], [norm], { atol: 0, rtol: 1e-6 });
    for (const k of [0, 1, 3]) expectClose(`clipped gradient ${k}`, await params[k]!.grad!.readF32(), grads[k]!.map((g) => g * factor), { atol: 1e-7, rtol: 1e-6 });
    expect(params[2]!.grad).toBeNull();

    // Below the limit nothing changes, bit for bit.
    const before = await params[1]!.grad!.readF32();
    await clipGradNorm(params, 1e6);
    expect(Array.from(await params[1]!.grad!.readF32())).toEqual(Array.from(before));
    await expect(clipGradNorm(params, 0)).rejects.toThrow(/maxNorm 0/);
    expect(clipCoefficient(3, 6)).toBe(1);
    expect(clipCoefficient(4, 2)).toBeCloseTo(2 / (4 + 1e-6), 15);
    params.forEach((p) => p.dispose());
  });
});

describe('captured optimizer steps', () => {
  const makers: [string, (params: Tensor[]) => Optimizer][] = [
    ['SGD with momentum, Nesterov and weight decay', (p) => new SGD(p, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 0.01 })],
    ['SGD without momentum', (p) => new SGD(p, { lr: 0.01 })],
    ['AdamW', (p) => new AdamW(p, { lr: 0.05 })],
  ];
  for (const [name, make] of makers) {
    it(`${name}: replays bit for bit what the plain step gives`, async () => {
      const run = async (captured: boolean) => {
        const w = tensor(gpu, randn(6 * 4, 9, 0.5), [6, 4], { requiresGrad: true });
        const x = tensor(gpu, randn(5 * 6, 10), [5, 6]);
        const opt = make([w]);
        const loss = () => {
          const y = matmul(x, w);
          const l = sumToShape(mul(y, y), [1]);
          l.backward();
          return l;
        };
        const capture = new CapturedStep(gpu, () => {
          const l = loss();
          opt.update();
          opt.zeroGrad();
          return l;
        });
        const losses: number[] = [];
        for (let s = 0; s < 5; s++) {
          let l: Tensor;
          if (captured) {
            // A schedule and a clipping factor that change every step reach the replay through prepare().
            opt.lr = 0.01 * (s + 1);
            opt.prepare({ gradScale: 1 - 0.1 * s });
            l = capture.run();
          } else {
            l = tidy(loss);
            opt.lr = 0.01 * (s + 1);
            opt.step({ gradScale: 1 - 0.1 * s });
            opt.zeroGrad();
          }
          losses.push((await l.readF32())[0]!);
          l.dispose();
        }
        if (captured) expect(capture.replayed).toBeGreaterThanOrEqual(3);
        const weights = await w.readF32();
        capture.dispose();
        opt.dispose();
        w.dispose();
        x.dispose();
        return { losses, weights };
      };
      const plain = await run(false);
      const replayed = await run(true);
      expect(replayed.losses).toEqual(plain.losses);
      expect(Array.from(replayed.weights)).toEqual(Array.from(plain.weights));
    });
  }
});
