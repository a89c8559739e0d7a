import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import { tensor, tidy, type Shape, type Tensor } from '../../src/tensor/tensor.ts';
import { sum, mean, max, min, logsumexp, argmax, type Dims } from '../../src/ops/reduce.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);

function normalized(shape: Shape, dim: Dims): number[] {
  if (dim === undefined) return shape.map((_, i) => i);
  return (typeof dim === 'number' ? [dim] : [...dim]).map((d) => (d < 0 ? d + shape.length : d));
}

/** The reduced elements of x for each output element (keepdim order), each group in index order. */
function groups(x: Float64Array, shape: Shape, dims: number[]): number[][] {
  const outShape = shape.map((d, i) => (dims.includes(i) ? 1 : d));
  const out: number[][] = Array.from({ length: numel(outShape) }, () => []);
  for (let i = 0; i < x.length; i++) {
    let rest = i;
    let j = 0;
    let stride = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      if (!dims.includes(d)) j += c * stride;
      stride *= outShape[d]!;
    }
    out[j]!.push(x[i]!);
  }
  return out;
}

const refs: Record<string, { op: (x: Tensor, dim?: Dims, keepdim?: boolean) => Tensor; f: (v: number[]) => number }> = {
  sum: { op: sum, f: (v) => v.reduce((a, b) => a + b, 0) },
  mean: { op: mean, f: (v) => v.reduce((a, b) => a + b, 0) / v.length },
  max: { op: max, f: (v) => Math.max(...v) },
  min: { op: min, f: (v) => Math.min(...v) },
  logsumexp: {
    op: logsumexp,
    f: (v) => {
      const m = Math.max(...v);
      return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0));
    },
  },
};

// Rows (last dim), columns (a leading dim, lengths off the 8-row slices and 32-column tiles),
// several dims at once (adjacent and not), all dims, negative dims, rank 6.
const cases: [Shape, Dims][] = [
  [[257], undefined],
  [[3, 70], -1],
  [[130, 3], 0],
  [[3, 300], 1],
  [[37, 45], 0],
  [[5, 1, 33], [0, 2]],
  [[2, 3, 4, 5], [1, 3]],
  [[2, 3, 4, 5], -3],
  [[4, 6, 5, 3], [0, 1, 2, 3]],
  [[3, 4, 5], [-1, -2]],
  [[2, 1, 3, 1, 2, 3], [1, 4]],
  [[2, 2, 3, 1, 2, 3], [0, 5]],
];

describe('reductions', () => {
  for (const [name, { op, f }] of Object.entries(refs)) {
    cases.forEach(([shape, dim], k) => {
      const keepdim = k % 2 === 0;
      it(`${name} ${JSON.stringify(shape)} dim ${JSON.stringify(dim)} keepdim ${keepdim}: forward and backward`, async () => {
        const dims = normalized(shape, dim);
        const outShape = shape.flatMap((d, i) => (dims.includes(i) ? (keepdim ? [1] : []) : [d]));
        const x = asF32(randn(numel(shape), 20 + k, 2));
        const w = asF32(randn(numel(outShape), 40 + k));
        const ref = (v: Float64Array) => Float64Array.from(groups(v, shape, dims), f);
        const tx = tensor(gpu, x, shape, { requiresGrad: true });
        const out = tidy(() => {
          const y = op(tx, dim, keepdim);
          y.backward(tensor(gpu, w, outShape));
          return y;
        });
        expect(out.shape).toEqual(outShape);
        expectClose(`${name} forward`, await out.readF32(), ref(x), { atol: 1e-5, rtol: 1e-5 });
        const loss = (v: Float64Array) => ref(v).reduce((s, q, i) => s + q * w[i]!, 0);
        expectClose(`${name} grad`, await tx.grad!.readF32(), finiteDifferences(loss, x), { atol: 1e-4, rtol: 1e-3 });
      });
    });
  }

  it('reduces all dims to shape [] (torch), and backward starts from it', async () => {
    const x = asF32(randn(100, 3));
    const tx = tensor(gpu, x, [4, 25], { requiresGrad: true });
    const y = mean(tx);
    expect(y.shape).toEqual([]);
    y.backward();
    expectClose('mean all', await y.readF32(), [x.reduce((a, b) => a + b, 0) / 100]);
    expectClose('mean all grad', await tx.grad!.readF32(), new Float64Array(100).fill(0.01));
  });

  it('max and min share the gradient equally among ties (torch.amax)', async () => {
    const x = [3, 1, 3, 2, 0, 0, 0, -1];
    for (const [op, pick] of [[max, 3], [min, -1]] as const) {
      const tx = tensor(gpu, x, [2, 4], { requiresGrad: true });
      const y = tidy(() => {
        const out = op(tx, -1);
        out.backward(tensor(gpu, [6, 10], [2]));
        return out;
      });
      const grad = await tx.grad!.readF32();
      if (pick === 3) {
        expect(Array.from(await y.readF32())).toEqual([3, 0]);
        expect(Array.from(grad)).toEqual([3, 0, 3, 0, 10 / 3, 10 / 3, 10 / 3, 0].map(Math.fround));
      } else {
        expect(Array.from(await y.readF32())).toEqual([1, -1]);
        expect(Array.from(grad)).toEqual([0, 6, 0, 0, 0, 0, 0, 10]);
      }
    }
  });

  it('logsumexp is stable for large values and exact for rows of −∞', async () => {
    const y = await logsumexp(tensor(gpu, [1000, 1000, -Infinity, -Infinity, 88, -88], [3, 2]), 1).readF32();
    expectClose('large', [y[0]!], [1000 + Math.log(2)]);
    expect(y[1]).toBe(-Infinity);
    expectClose('mixed', [y[2]!], [88 + Math.log1p(Math.exp(-176))]);
  });

  const argmaxCases: [Shape, number | undefined][] = [
    [[70], undefined],
    [[3, 70], -1],
    [[3, 70], 0],
    [[130, 3], 0],
    [[4, 5, 6], 1],
    [[4, 5, 6], undefined],
    [[2, 1, 3, 1, 2, 3], -1],
  ];
  argmaxCases.forEach(([shape, dim], k) => {
    it(`argmax ${JSON.stringify(shape)} dim ${dim}: first index on ties`, async () => {
      // Few distinct values, so most rows have ties.
      const x = asF32(randn(numel(shape), 60 + k).map((v) => Math.round(v)));
      const dims = dim === undefined ? shape.map((_, i) => i) : normalized(shape, dim);
      const expected = groups(x, shape, dims).map((v) => v.indexOf(Math.max(...v)));
      const out = argmax(tensor(gpu, x, shape), dim, k % 2 === 0);
      expect(out.dtype).toBe('u32');
      expect(out.shape).toEqual(dim === undefined ? (k % 2 === 0 ? shape.map(() => 1) : []) : shape.flatMap((d, i) => (i === dims[0] ? (k % 2 === 0 ? [1] : []) : [d])));
      expect(Array.from(await out.read())).toEqual(expected);
    });
  });

  it('rejects bad dims by name', () => {
    const x = tensor(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => sum(x, 2)).toThrow(/sum: dim 2 is out of range for shape \[2, 3\]/);
    expect(() => max(x, -3)).toThrow(/max: dim -3 is out of range/);
    expect(() => mean(x, [1, -1])).toThrow(/repeats a dim/);
    expect(() => argmax(x, 5)).toThrow(/argmax: dim 5/);
  });
});
