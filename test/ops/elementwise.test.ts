import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import { tensor, tidy, type Shape } from '../../src/engine/tensor.ts';
import { add, sub, mul, div, scale, sumToShape, broadcastShape } from '../../src/ops/elementwise.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** float64 broadcasting reference. */
function refBinary(a: Float64Array, as: Shape, b: Float64Array, bs: Shape, f: (x: number, y: number) => number): Float64Array {
  const os = broadcastShape(as, bs);
  const out = new Float64Array(numel(os));
  const index = (flat: number, s: Shape) => {
    let idx = 0;
    let rem = flat;
    const coords: number[] = [];
    for (let d = os.length - 1; d >= 0; d--) {
      coords[d] = rem % os[d]!;
      rem = Math.floor(rem / os[d]!);
    }
    const off = os.length - s.length;
    for (let d = 0; d < s.length; d++) idx = idx * s[d]! + (s[d] === 1 ? 0 : coords[d + off]!);
    return idx;
  };
  for (let i = 0; i < out.length; i++) out[i] = f(a[index(i, as)]!, b[index(i, bs)]!);
  return out;
}

const cases: [Shape, Shape][] = [
  [[1], [1]],
  [[257], [257]],
  [[3, 70], [70]],
  [[5, 1, 33], [1, 7, 1]],
  [[2, 3, 4, 5], [3, 1, 5]],
  [[4, 1], [1]],
];

const ops = {
  add: { op: add, f: (x: number, y: number) => x + y },
  sub: { op: sub, f: (x: number, y: number) => x - y },
  mul: { op: mul, f: (x: number, y: number) => x * y },
  div: { op: div, f: (x: number, y: number) => x / y },
};

describe('elementwise', () => {
  for (const [name, { op, f }] of Object.entries(ops)) {
    for (const [as, bs] of cases) {
      it(`${name} ${JSON.stringify(as)} ⊙ ${JSON.stringify(bs)} forward and backward`, async () => {
        const a = asF32(randn(numel(as), 1));
        // Keep divisors away from zero.
        const b = asF32(randn(numel(bs), 2).map((v) => (name === 'div' ? Math.sign(v || 1) * (1 + Math.abs(v)) : v)));
        const os = broadcastShape(as, bs);
        const w = asF32(randn(numel(os), 3));
        const loss = (x: Float64Array, y: Float64Array) => refBinary(x, as, y, bs, f).reduce((s, v, i) => s + v * w[i]!, 0);
        const ta = tensor(gpu, a, as, { requiresGrad: true });
        const tb = tensor(gpu, b, bs, { requiresGrad: true });
        const out = tidy(() => {
          const y = op(ta, tb);
          y.backward(tensor(gpu, w, os));
          return y;
        });
        const [ga, gb] = [ta.grad!, tb.grad!];
        expectClose(`${name} forward`, await out.readF32(), refBinary(a, as, b, bs, f));
        expectClose(`${name} grad a`, await ga.readF32(), finiteDifferences((x) => loss(x, b), a), { atol: 1e-4, rtol: 1e-3 });
        expectClose(`${name} grad b`, await gb.readF32(), finiteDifferences((y) => loss(a, y), b), { atol: 1e-4, rtol: 1e-3 });
      });
    }
  }

  it('scale computes x·s + t and its gradient', async () => {
    const x = asF32(randn(1000, 4));
    const t = tensor(gpu, x, [10, 100], { requiresGrad: true });
    const y = scale(t, 2.5, -1);
    y.backward(tensor(gpu, new Float32Array(1000).fill(1), [10, 100]));
    expectClose('scale forward', await y.readF32(), x.map((v) => v * 2.5 - 1));
    expectClose('scale grad', await t.grad!.readF32(), new Float64Array(1000).fill(2.5));
  });

  it('sumToShape reduces every broadcast dim', async () => {
    const full: Shape = [3, 4, 5, 6];
    const x = asF32(randn(numel(full), 5));
    for (const target of [[3, 1, 5, 1], [1, 4, 1, 6], [6], [5, 1], [1, 1, 1, 1]] as Shape[]) {
      const ref = new Float64Array(numel(target));
      const t4 = [...Array(4 - target.length).fill(1), ...target];
      for (let i = 0; i < x.length; i++) {
        const c = [Math.floor(i / 120), Math.floor(i / 30) % 4, Math.floor(i / 6) % 5, i % 6];
        let j = 0;
        for (let d = 0; d < 4; d++) j = j * t4[d]! + (t4[d] === 1 ? 0 : c[d]!);
        ref[j]! += x[i]!;
      }
      const got = await sumToShape(tensor(gpu, x, full), target).readF32();
      expectClose(`sumToShape ${JSON.stringify(target)}`, got, ref, { atol: 1e-4 });
    }
  });

  it('rejects shapes that do not broadcast', () => {
    expect(() => add(tensor(gpu, [1, 2, 3], [3]), tensor(gpu, [1, 2], [2]))).toThrow(/do not broadcast/);
  });
});
