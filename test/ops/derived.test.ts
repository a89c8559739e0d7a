import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import { tensor, tidy, type Shape, type Tensor } from '../../src/tensor/tensor.ts';
import { logSoftmax, rmsNorm, mseLoss } from '../../src/ops/derived.ts';
import { softmax } from '../../src/ops/softmax.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** f applied to every line of x along `dim` (each line a float64 array, result of the same length). */
function alongDim(x: Float64Array, shape: Shape, dim: number, f: (line: number[]) => number[]): Float64Array {
  const d = dim < 0 ? dim + shape.length : dim;
  const inner = numel(shape.slice(d + 1));
  const n = shape[d]!;
  const out = new Float64Array(x.length);
  for (let o = 0; o < x.length / (n * inner); o++) {
    for (let i = 0; i < inner; i++) {
      const idx = Array.from({ length: n }, (_, k) => (o * n + k) * inner + i);
      const y = f(idx.map((j) => x[j]!));
      idx.forEach((j, k) => (out[j] = y[k]!));
    }
  }
  return out;
}

function refLogSoftmax(line: number[]): number[] {
  const m = Math.max(...line);
  const lse = m + Math.log(line.reduce((s, v) => s + Math.exp(v - m), 0));
  return line.map((v) => v - lse);
}

const perDim: { name: string; op: (x: Tensor, dim: number) => Tensor; f: (line: number[]) => number[] }[] = [
  { name: 'logSoftmax', op: logSoftmax, f: refLogSoftmax },
  { name: 'softmax', op: softmax, f: (line) => refLogSoftmax(line).map(Math.exp) },
];
const dimCases: [Shape, number][] = [
  [[37], -1],
  [[3, 5, 7], -1],
  [[3, 5, 7], 1],
  [[3, 5, 7], 0],
  [[3, 5, 7], -3],
  [[2, 1, 3, 2, 1, 4], 3],
];

describe('derived ops', () => {
  for (const { name, op, f } of perDim) {
    for (const [shape, dim] of dimCases) {
      it(`${name} ${JSON.stringify(shape)} dim ${dim}: forward and backward`, async () => {
        const x = asF32(randn(numel(shape), 1, 3));
        const w = asF32(randn(numel(shape), 2));
        const tx = tensor(gpu, x, shape, { requiresGrad: true });
        const out = tidy(() => {
          const y = op(tx, dim);
          y.backward(tensor(gpu, w, shape));
          return y;
        });
        const ref = (v: Float64Array) => alongDim(v, shape, dim, f);
        expectClose(`${name} forward`, await out.readF32(), ref(x), { atol: 1e-5, rtol: 1e-5 });
        const loss = (v: Float64Array) => ref(v).reduce((s, q, i) => s + q * w[i]!, 0);
        expectClose(`${name} grad`, await tx.grad!.readF32(), finiteDifferences(loss, x), { atol: 1e-4, rtol: 1e-3 });
      });
    }
  }

  const rmsCases: Shape[] = [[8], [5, 13], [2, 3, 8]];
  for (const shape of rmsCases) {
    it(`rmsNorm ${JSON.stringify(shape)}: forward and both gradients`, async () => {
      const n = shape.at(-1)!;
      const eps = 1e-5;
      const x = asF32(randn(numel(shape), 3));
      const weight = asF32(randn(n, 4).map((v) => 1 + 0.5 * v));
      const w = asF32(randn(numel(shape), 5));
      const ref = (v: Float64Array, g: Float64Array) =>
        alongDim(v, shape, -1, (line) => {
          const r = 1 / Math.sqrt(line.reduce((s, q) => s + q * q, 0) / n + eps);
          return line.map((q, k) => q * r * g[k]!);
        });
      const tx = tensor(gpu, x, shape, { requiresGrad: true });
      const tw = tensor(gpu, weight, [n], { requiresGrad: true });
      const out = tidy(() => {
        const y = rmsNorm(tx, tw, eps);
        y.backward(tensor(gpu, w, shape));
        return y;
      });
      expectClose('rmsNorm forward', await out.readF32(), ref(x, weight), { atol: 1e-5, rtol: 1e-5 });
      const loss = (v: Float64Array, g: Float64Array) => ref(v, g).reduce((s, q, i) => s + q * w[i]!, 0);
      expectClose('rmsNorm grad x', await tx.grad!.readF32(), finiteDifferences((v) => loss(v, weight), x), { atol: 1e-4, rtol: 1e-3 });
      expectClose('rmsNorm grad weight', await tw.grad!.readF32(), finiteDifferences((g) => loss(x, g), weight), { atol: 1e-4, rtol: 1e-3 });
    });
  }

  it('rmsNorm rejects a weight that does not match the last dim', () => {
    expect(() => rmsNorm(tensor(gpu, [1, 2, 3, 4], [2, 2]), tensor(gpu, [1, 2, 3], [3]))).toThrow(/rmsNorm: weight \[3\] must be \[2\]/);
  });

  for (const shape of [[7], [4, 9], [2, 3, 5]] as Shape[]) {
    it(`mseLoss ${JSON.stringify(shape)}: a scalar, and gradients to both inputs`, async () => {
      const a = asF32(randn(numel(shape), 6));
      const b = asF32(randn(numel(shape), 7));
      const ref = (p: Float64Array, q: Float64Array) => p.reduce((s, v, i) => s + (v - q[i]!) ** 2, 0) / p.length;
      const ta = tensor(gpu, a, shape, { requiresGrad: true });
      const tb = tensor(gpu, b, shape, { requiresGrad: true });
      const out = tidy(() => {
        const y = mseLoss(ta, tb);
        y.backward();
        return y;
      });
      expect(out.shape).toEqual([]);
      expectClose('mse forward', await out.readF32(), [ref(a, b)]);
      expectClose('mse grad a', await ta.grad!.readF32(), finiteDifferences((p) => ref(p, b), a), { atol: 1e-5, rtol: 1e-3 });
      expectClose('mse grad b', await tb.grad!.readF32(), finiteDifferences((q) => ref(a, q), b), { atol: 1e-5, rtol: 1e-3 });
    });
  }
});
