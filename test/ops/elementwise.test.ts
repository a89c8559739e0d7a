import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import { tensor, tidy, type Shape } from '../../src/tensor/tensor.ts';
import { add, mul, scale, sumToShape, broadcastShape, broadcastTo, where, maximum, minimum, pow, UNARY_OPS, BINARY_OPS, type UnaryOpName, type BinaryOpName } from '../../src/ops/elementwise.ts';
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
  [[2, 1, 3, 1, 2, 3], [3, 2, 1]],
  [[3], [2, 1, 1, 1, 1, 3]],
  // Rows of vec4s (the rows4 entry): b repeated over rows, a splat along rows, b splat.
  [[5, 256], [256]],
  [[8, 1], [8, 260]],
  [[4, 8], [4, 1]],
];

/** Each binary op's float64 reference and the inputs it is tested on (a, b from standard normals). */
const binaryRefs: Record<BinaryOpName, { f: (x: number, y: number) => number; a?: (v: number) => number; b?: (v: number) => number }> = {
  add: { f: (x, y) => x + y },
  sub: { f: (x, y) => x - y },
  mul: { f: (x, y) => x * y },
  // Divisors away from zero.
  div: { f: (x, y) => x / y, b: (v) => Math.sign(v || 1) * (1 + Math.abs(v)) },
  pow: { f: (x, y) => x ** y, a: (v) => 0.5 + Math.abs(v), b: (v) => v },
  maximum: { f: Math.max },
  minimum: { f: Math.min },
  eq: { f: (x, y) => Number(x === y), b: (v) => Math.round(v) },
  ne: { f: (x, y) => Number(x !== y), b: (v) => Math.round(v) },
  lt: { f: (x, y) => Number(x < y) },
  le: { f: (x, y) => Number(x <= y) },
  gt: { f: (x, y) => Number(x > y) },
  ge: { f: (x, y) => Number(x >= y) },
};
const comparisons = new Set<BinaryOpName>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

describe('elementwise', () => {
  for (const name of Object.keys(BINARY_OPS) as BinaryOpName[]) {
    const op = BINARY_OPS[name];
    const { f, a: domainA = (v: number) => v, b: domainB = (v: number) => v } = binaryRefs[name];
    for (const [as, bs] of cases) {
      it(`${name} ${JSON.stringify(as)} ⊙ ${JSON.stringify(bs)} forward and backward`, async () => {
        // eq/ne compare against rounded values: a is rounded too, so there are equal pairs.
        const a = asF32(randn(numel(as), 1, 2).map((v) => (name === 'eq' || name === 'ne' ? Math.round(v) : domainA(v))));
        const b = asF32(randn(numel(bs), 2, 2).map(domainB));
        const os = broadcastShape(as, bs);
        if (comparisons.has(name)) {
          const out = op(tensor(gpu, a, as, { requiresGrad: true }), tensor(gpu, b, bs));
          expect(out.requiresGrad).toBe(false);
          expectClose(`${name} forward`, await out.readF32(), refBinary(a, as, b, bs, f), { atol: 0, rtol: 0 });
          return;
        }
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
        expectClose(`${name} forward`, await out.readF32(), refBinary(a, as, b, bs, f), { atol: 1e-5, rtol: name === 'pow' ? 1e-4 : 1e-5 });
        expectClose(`${name} grad a`, await ga.readF32(), finiteDifferences((x) => loss(x, b), a), { atol: 1e-4, rtol: 1e-3 });
        expectClose(`${name} grad b`, await gb.readF32(), finiteDifferences((y) => loss(a, y), b), { atol: 1e-4, rtol: 1e-3 });
      });
    }
    it(`${name} with a number as b`, async () => {
      const shape: Shape = [5, 13];
      const a = asF32(randn(numel(shape), 4).map(domainA));
      const b = Math.fround(domainB(name === 'eq' || name === 'ne' ? a[7]! : 0.75));
      const ta = tensor(gpu, a, shape, { requiresGrad: true });
      const out = tidy(() => {
        const y = op(ta, b);
        if (!comparisons.has(name)) y.backward(tensor(gpu, new Float32Array(y.size).fill(1), shape));
        return y;
      });
      expectClose(`${name} scalar forward`, await out.readF32(), a.map((x) => f(x, b)), { atol: 1e-5, rtol: 1e-4 });
      if (comparisons.has(name)) return;
      const loss = (x: Float64Array) => x.reduce((s, v) => s + f(v, b), 0);
      expectClose(`${name} scalar grad`, await ta.grad!.readF32(), finiteDifferences(loss, a), { atol: 1e-4, rtol: 1e-3 });
    });
  }

  it('scale computes x·s + t and its gradient', async () => {
    const x = asF32(randn(1000, 4));
    const t = tensor(gpu, x, [10, 100], { requiresGrad: true });
    const y = scale(t, 2.5, -1);
    y.backward(tensor(gpu, new Float32Array(1000).fill(1), [10, 100]));
    expectClose('scale forward', await y.readF32(), x.map((v) => v * 2.5 - 1));
    expectClose('scale grad', await t.grad!.readF32(), new Float64Array(1000).fill(2.5));
  });

  it('broadcasts by rows over more rows than one grid dimension holds', async () => {
    const [as, bs]: [Shape, Shape] = [[70_001, 4], [4]];
    const a = asF32(randn(numel(as), 5));
    const b = asF32(randn(numel(bs), 6));
    const out = add(tensor(gpu, a, as), tensor(gpu, b, bs));
    expectClose('add [70001, 4] + [4]', await out.readF32(), refBinary(a, as, b, bs, (x, y) => x + y), { atol: 1e-6, rtol: 1e-6 });
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

  it('rejects more than 8 dims, and non-f32 operands, by name', () => {
    const nine = tensor(gpu, [1], [1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(() => add(nine, tensor(gpu, [1, 2], [2]))).toThrow(/up to 8 dims/);
    expect(() => mul(tensor(gpu, [1], [1], { dtype: 'u32' }), 2)).toThrow(/mul: a must be an f32 tensor, got u32/);
  });

  it('maximum and minimum split the gradient equally at ties, as torch', async () => {
    const a = [1, 2, 3, 4, 2, 0];
    const b = [1, 3, 2, 4, 5, 0];
    for (const [op, pick] of [[maximum, (x: number, y: number) => x > y], [minimum, (x: number, y: number) => x < y]] as const) {
      const ta = tensor(gpu, a, [6], { requiresGrad: true });
      const tb = tensor(gpu, b, [6], { requiresGrad: true });
      const g = [1, 2, 3, 4, 5, 6];
      tidy(() => op(ta, tb).backward(tensor(gpu, g, [6])));
      const share = (mine: (i: number) => boolean) => g.map((v, i) => (a[i] === b[i] ? v / 2 : mine(i) ? v : 0));
      expectClose('tie grad a', await ta.grad!.readF32(), share((i) => pick(a[i]!, b[i]!)), { atol: 0, rtol: 0 });
      expectClose('tie grad b', await tb.grad!.readF32(), share((i) => pick(b[i]!, a[i]!)), { atol: 0, rtol: 0 });
    }
  });

  it('pow follows torch on a negative base (integer exponents only) and at 0^0', async () => {
    const a = [-2, -2, -2, 0, 0, 3];
    const b = [2, 3, 0.5, 0, 2, -1];
    const got = await pow(tensor(gpu, a, [6]), tensor(gpu, b, [6])).readF32();
    expect(Array.from(got.slice(0, 2))).toEqual([4, -8]);
    expect(got[2]).toBeNaN();
    expectClose('pow edge cases', got.slice(3), [1, 0, 1 / 3]);
  });

  const whereCases: [Shape, Shape, Shape][] = [
    [[37], [37], [37]],
    [[4, 1], [1, 9], [9]],
    [[2, 1, 3], [3], [2, 5, 1]],
    [[1, 2, 1, 3, 1, 2], [2, 3, 1, 1], [2, 1, 3, 4, 1]],
  ];
  for (const [cs, as, bs] of whereCases) {
    it(`where ${JSON.stringify(cs)} ? ${JSON.stringify(as)} : ${JSON.stringify(bs)} forward and backward`, async () => {
      // A mask with values other than 1 among the true ones: nonzero means true.
      const cond = asF32(randn(numel(cs), 5).map((v) => (v > 0 ? (v > 1 ? 2 : 1) : 0)));
      const a = asF32(randn(numel(as), 6));
      const b = asF32(randn(numel(bs), 7));
      const os = broadcastShape(broadcastShape(cs, as), bs);
      const w = asF32(randn(numel(os), 8));
      // where(c, a, b) = c·a + (1 − c)·b for a 0/1 mask c: built from the binary reference.
      const c01 = cond.map((v) => (v !== 0 ? 1 : 0));
      const ref = (x: Float64Array, y: Float64Array) => {
        const ca = refBinary(c01, cs, x, as, (c, v) => c * v);
        const cb = refBinary(c01, cs, y, bs, (c, v) => (1 - c) * v);
        return refBinary(ca, broadcastShape(cs, as), cb, broadcastShape(cs, bs), (p, q) => p + q);
      };
      const loss = (x: Float64Array, y: Float64Array) => ref(x, y).reduce((s, v, i) => s + v * w[i]!, 0);
      const ta = tensor(gpu, a, as, { requiresGrad: true });
      const tb = tensor(gpu, b, bs, { requiresGrad: true });
      const out = tidy(() => {
        const y = where(tensor(gpu, cond, cs), ta, tb);
        y.backward(tensor(gpu, w, os));
        return y;
      });
      expectClose('where forward', await out.readF32(), ref(a, b), { atol: 0, rtol: 0 });
      expectClose('where grad a', await ta.grad!.readF32(), finiteDifferences((x) => loss(x, b), a), { atol: 1e-4, rtol: 1e-3 });
      expectClose('where grad b', await tb.grad!.readF32(), finiteDifferences((y) => loss(a, y), b), { atol: 1e-4, rtol: 1e-3 });
    });
  }

  it('where takes numbers for a and b', async () => {
    const got = await where(tensor(gpu, [1, 0, 3], [3]), 5, tensor(gpu, [7, 8, 9], [3])).readF32();
    expect(Array.from(got)).toEqual([5, 8, 5]);
  });

  it('broadcastTo a rank-6 shape and back (sumToShape) through autodiff', async () => {
    const xs: Shape = [3, 1, 2];
    const target: Shape = [2, 1, 2, 3, 4, 2];
    const x = asF32(randn(numel(xs), 9));
    const w = asF32(randn(numel(target), 10));
    const tx = tensor(gpu, x, xs, { requiresGrad: true });
    const out = tidy(() => {
      const y = broadcastTo(tx, target);
      y.backward(tensor(gpu, w, target));
      return y;
    });
    const zero = new Float64Array(numel(target));
    const ref = (v: Float64Array) => refBinary(zero, target, v, xs, (_, q) => q);
    expectClose('broadcastTo forward', await out.readF32(), ref(x), { atol: 0, rtol: 0 });
    const loss = (v: Float64Array) => ref(v).reduce((s, q, i) => s + q * w[i]!, 0);
    expectClose('broadcastTo grad', await tx.grad!.readF32(), finiteDifferences(loss, x), { atol: 1e-4, rtol: 1e-3 });
  });

  /**
   * erf in float64: its Maclaurin series below |x| = 2.5 (terms stay under e^6.25, so float64
   * keeps 13 digits), the continued fraction of erfc above, evaluated from its 60th term.
   */
  function erfRef(x: number): number {
    const a = Math.abs(x);
    if (a < 2.5) {
      let term = x;
      let sum = x;
      for (let n = 1; n < 60; n++) {
        term *= (-x * x) / n;
        sum += term / (2 * n + 1);
      }
      return (2 / Math.sqrt(Math.PI)) * sum;
    }
    let fraction = a;
    for (let k = 60; k >= 1; k--) fraction = a + k / 2 / fraction;
    return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / fraction);
  }

  /** Each unary op's float64 reference and derivative, and the inputs it is defined on. */
  const unaryRefs: Record<UnaryOpName, { f: (x: number) => number; domain?: (v: number) => number; tol?: number }> = {
    neg: { f: (x) => -x },
    exp: { f: Math.exp },
    log: { f: Math.log, domain: (v) => 0.2 + Math.abs(v) },
    sqrt: { f: Math.sqrt, domain: (v) => 0.2 + Math.abs(v) },
    rsqrt: { f: (x) => 1 / Math.sqrt(x), domain: (v) => 0.2 + Math.abs(v) },
    reciprocal: { f: (x) => 1 / x, domain: (v) => Math.sign(v || 1) * (0.5 + Math.abs(v)) },
    // Away from the kink at 0 (the gradient there, 0, is checked below).
    abs: { f: Math.abs, domain: (v) => Math.sign(v || 1) * (0.1 + Math.abs(v)) },
    // WGSL allows sin/cos an absolute error of 2^-11 on [-π, π].
    sin: { f: Math.sin, tol: 2 ** -11 },
    cos: { f: Math.cos, tol: 2 ** -11 },
    tanh: { f: Math.tanh },
    sigmoid: { f: (x) => 1 / (1 + Math.exp(-x)) },
    relu: { f: (x) => Math.max(x, 0), domain: (v) => Math.sign(v || 1) * (0.1 + Math.abs(v)) },
    silu: { f: (x) => x / (1 + Math.exp(-x)) },
    square: { f: (x) => x * x },
    erf: { f: erfRef },
  };
  const unaryShapes: Shape[] = [[1], [7], [257], [3, 68], [2, 3, 4, 5], [2, 1, 3, 1, 2, 3]];
  for (const name of Object.keys(UNARY_OPS) as UnaryOpName[]) {
    const { f, domain = (v: number) => v, tol = 0 } = unaryRefs[name];
    for (const shape of unaryShapes) {
      it(`${name} ${JSON.stringify(shape)} forward and backward`, async () => {
        const x = asF32(randn(numel(shape), 11, 1.5).map(domain));
        const w = asF32(randn(numel(shape), 12));
        const tx = tensor(gpu, x, shape, { requiresGrad: true });
        const out = tidy(() => {
          const y = UNARY_OPS[name](tx);
          y.backward(tensor(gpu, w, shape));
          return y;
        });
        expectClose(`${name} forward`, await out.readF32(), x.map(f), { atol: 1e-6 + tol, rtol: 2e-6 });
        // Elementwise, so the finite difference of each element alone is the gradient of Σ w·f(x).
        const fd = x.map((v, i) => (w[i]! * (f(v + 1e-6) - f(v - 1e-6))) / 2e-6);
        expectClose(`${name} grad`, await tx.grad!.readF32(), fd, { atol: 1e-5 + 4 * tol, rtol: 1e-4 });
      });
    }
  }

  it('unary ops stay finite at extreme inputs, and abs and relu have gradient 0 at 0', async () => {
    const x = tensor(gpu, [-100, 100, 0], [3], { requiresGrad: true });
    expect(Array.from(await UNARY_OPS.tanh(x).readF32())).toEqual([-1, 1, 0]);
    expect(Array.from(await UNARY_OPS.sigmoid(x).readF32())).toEqual([0, 1, 0.5]);
    expectClose('silu extremes', await UNARY_OPS.silu(x).readF32(), [0, 100, 0]);
    for (const op of [UNARY_OPS.abs, UNARY_OPS.relu]) {
      x.grad?.dispose();
      x.grad = null;
      tidy(() => op(x).backward(tensor(gpu, [1, 1, 1], [3])));
      expect((await x.grad!.readF32())[2]).toBe(0);
    }
  });
});
