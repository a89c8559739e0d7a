import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences, withKernelClass } from '../helpers.ts';
import { tensor, tidy, type Shape, type Tensor } from '../../src/tensor/tensor.ts';
import { permute, transpose, expand, narrow, cat, stack, pad, indexSelect, embedding, flatten, squeeze, unsqueeze, reshape } from '../../src/ops/movement.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((x, y) => x * y, 1);
const norm = (d: number, rank: number) => (d < 0 ? d + rank : d);

function unravel(i: number, shape: Shape): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return c;
}
function ravel(c: number[], shape: Shape): number {
  return c.reduce((at, v, d) => at * shape[d]! + v, 0);
}

/** A float64 reference: the output shape and, per output element, its value from the inputs. */
interface Ref {
  shape: Shape;
  at: (coords: number[], xs: Float64Array[]) => number;
}
function evaluate(ref: Ref, xs: Float64Array[]): Float64Array {
  return Float64Array.from({ length: numel(ref.shape) }, (_, i) => ref.at(unravel(i, ref.shape), xs));
}

interface Case {
  name: string;
  inputs: Shape[];
  op: (xs: Tensor[]) => Tensor;
  ref: (shapes: Shape[]) => Ref;
}

const refPermute = (dims: number[]) => ([s]: Shape[]): Ref => {
  const order = dims.map((d) => norm(d, s!.length));
  return {
    shape: order.map((d) => s![d]!),
    at: (c, [x]) => {
      const src = new Array<number>(order.length);
      order.forEach((d, i) => (src[d] = c[i]!));
      return x![ravel(src, s!)]!;
    },
  };
};
const swap = (rank: number, a: number, b: number) => {
  const [p, q] = [norm(a, rank), norm(b, rank)];
  return Array.from({ length: rank }, (_, i) => (i === p ? q : i === q ? p : i));
};
const refExpand = (target: number[]) => ([s]: Shape[]): Ref => {
  const lead = target.length - s!.length;
  const shape = target.map((n, i) => (n === -1 ? s![i - lead]! : n));
  return { shape, at: (c, [x]) => x![ravel(s!.map((n, d) => (n === 1 ? 0 : c[d + lead]!)), s!)]! };
};
const refPad = (pads: number[], value = 0) => ([s]: Shape[]): Ref => {
  const lo = s!.map(() => 0);
  const hi = s!.map(() => 0);
  for (let p = 0; p < pads.length / 2; p++) {
    lo[s!.length - 1 - p] = pads[2 * p]!;
    hi[s!.length - 1 - p] = pads[2 * p + 1]!;
  }
  return {
    shape: s!.map((n, d) => n + lo[d]! + hi[d]!),
    at: (c, [x]) => {
      const src = c.map((v, d) => v - lo[d]!);
      return src.every((v, d) => v >= 0 && v < s![d]!) ? x![ravel(src, s!)]! : value;
    },
  };
};
const refNarrow = (dim: number, start: number, length: number) => ([s]: Shape[]): Ref => {
  const d = norm(dim, s!.length);
  const from = start < 0 ? start + s![d]! : start;
  return { shape: s!.map((n, i) => (i === d ? length : n)), at: (c, [x]) => x![ravel(c.map((v, i) => (i === d ? v + from : v)), s!)]! };
};
const refCat = (dim: number) => (shapes: Shape[]): Ref => {
  const d = norm(dim, shapes[0]!.length);
  const shape = shapes[0]!.map((n, i) => (i === d ? shapes.reduce((t, s) => t + s[d]!, 0) : n));
  return {
    shape,
    at: (c, xs) => {
      let v = c[d]!;
      let k = 0;
      while (v >= shapes[k]![d]!) v -= shapes[k++]![d]!;
      return xs[k]![ravel(c.map((x, i) => (i === d ? v : x)), shapes[k]!)]!;
    },
  };
};
const refStack = (dim: number) => (shapes: Shape[]): Ref => {
  const s = shapes[0]!;
  const d = norm(dim, s.length + 1);
  return {
    shape: [...s.slice(0, d), shapes.length, ...s.slice(d)],
    at: (c, xs) => xs[c[d]!]![ravel(c.filter((_, i) => i !== d), s)]!,
  };
};
const refIndexSelect = (dim: number, ids: number[]) => ([s]: Shape[]): Ref => {
  const d = norm(dim, s!.length);
  return { shape: s!.map((n, i) => (i === d ? ids.length : n)), at: (c, [x]) => x![ravel(c.map((v, i) => (i === d ? ids[v]! : v)), s!)]! };
};

const u32 = (ids: number[]) => Uint32Array.from(ids);
const idsTensor = (ids: number[]) => tensor(gpu, ids, [ids.length], { dtype: 'u32' });

const CASES: Case[] = [
  { name: 'permute rank 1', inputs: [[7]], op: ([x]) => permute(x!, [0]), ref: refPermute([0]) },
  { name: 'permute rank 2', inputs: [[5, 7]], op: ([x]) => permute(x!, [1, 0]), ref: refPermute([1, 0]) },
  { name: 'permute rank 3, negative dims', inputs: [[3, 5, 2]], op: ([x]) => permute(x!, [-1, 0, -2]), ref: refPermute([-1, 0, -2]) },
  { name: 'permute rank 4 (heads split)', inputs: [[2, 3, 4, 5]], op: ([x]) => permute(x!, [0, 2, 1, 3]), ref: refPermute([0, 2, 1, 3]) },
  { name: 'permute rank 6', inputs: [[2, 1, 3, 2, 2, 3]], op: ([x]) => permute(x!, [5, 3, 1, 0, 4, 2]), ref: refPermute([5, 3, 1, 0, 4, 2]) },
  { name: 'transpose last two, batched', inputs: [[3, 17, 19]], op: ([x]) => transpose(x!, -1, -2), ref: refPermute(swap(3, -1, -2)) },
  { name: 'transpose outer dims, rank 4', inputs: [[2, 3, 4, 5]], op: ([x]) => transpose(x!, 0, 2), ref: refPermute(swap(4, 0, 2)) },
  { name: 'expand rank 1 to 3, -1 keeps', inputs: [[5]], op: ([x]) => expand(x!, [2, 3, -1]), ref: refExpand([2, 3, -1]) },
  { name: 'expand middle size-1 dims', inputs: [[3, 1, 4]], op: ([x]) => expand(x!, [3, 5, 4]), ref: refExpand([3, 5, 4]) },
  { name: 'expand rank 5, alternating', inputs: [[1, 3, 1, 2]], op: ([x]) => expand(x!, [2, 4, 3, 5, 2]), ref: refExpand([2, 4, 3, 5, 2]) },
  { name: 'expand to rank 10 (its gradient merges runs before sumToShape)', inputs: [[3, 1, 4]], op: ([x]) => expand(x!, [2, 1, 1, 1, 1, 1, 1, 3, 5, 4]), ref: refExpand([2, 1, 1, 1, 1, 1, 1, 3, 5, 4]) },
  { name: 'narrow rank 1', inputs: [[11]], op: ([x]) => narrow(x!, 0, 3, 5), ref: refNarrow(0, 3, 5) },
  { name: 'narrow rank 3, negative dim and start', inputs: [[3, 4, 9]], op: ([x]) => narrow(x!, -1, -6, 4), ref: refNarrow(-1, -6, 4) },
  { name: 'narrow rank 4, a middle dim', inputs: [[2, 7, 3, 2]], op: ([x]) => narrow(x!, 1, 2, 3), ref: refNarrow(1, 2, 3) },
  { name: 'pad rank 1', inputs: [[5]], op: ([x]) => pad(x!, [2, 3]), ref: refPad([2, 3]) },
  { name: 'pad rank 2, two dims, value', inputs: [[3, 4]], op: ([x]) => pad(x!, [1, 0, 2, 1], -2.5), ref: refPad([1, 0, 2, 1], -2.5) },
  { name: 'pad rank 4, negative crops', inputs: [[2, 3, 5, 6]], op: ([x]) => pad(x!, [-1, 2, 1, -2, 0, 1]), ref: refPad([-1, 2, 1, -2, 0, 1]) },
  { name: 'cat rank 1', inputs: [[3], [5], [1]], op: (xs) => cat(xs, 0), ref: refCat(0) },
  { name: 'cat rank 3, last dim', inputs: [[2, 3, 4], [2, 3, 1], [2, 3, 5]], op: (xs) => cat(xs, -1), ref: refCat(-1) },
  { name: 'cat rank 4, middle dim', inputs: [[2, 1, 3, 2], [2, 4, 3, 2]], op: (xs) => cat(xs, 1), ref: refCat(1) },
  { name: 'cat rank 2, whole vec4 rows', inputs: [[3, 4], [3, 8]], op: (xs) => cat(xs, -1), ref: refCat(-1) },
  { name: 'cat rank 3, dim 0, whole vec4 pieces', inputs: [[1, 2, 6], [3, 2, 6]], op: (xs) => cat(xs, 0), ref: refCat(0) },
  { name: 'stack rank 1 → 2', inputs: [[5], [5], [5]], op: (xs) => stack(xs, 0), ref: refStack(0) },
  { name: 'stack rank 2, whole vec4 pieces', inputs: [[2, 4], [2, 4]], op: (xs) => stack(xs, 1), ref: refStack(1) },
  { name: 'stack rank 3, new last dim', inputs: [[2, 3, 4], [2, 3, 4]], op: (xs) => stack(xs, -1), ref: refStack(-1) },
  { name: 'indexSelect rank 1, host ids with repeats', inputs: [[6]], op: ([x]) => indexSelect(x!, 0, u32([5, 0, 5, 2, 5])), ref: refIndexSelect(0, [5, 0, 5, 2, 5]) },
  { name: 'indexSelect rank 3, tensor ids, negative dim', inputs: [[2, 7, 3]], op: ([x]) => indexSelect(x!, -2, idsTensor([3, 3, 0, 6])), ref: refIndexSelect(-2, [3, 3, 0, 6]) },
  { name: 'indexSelect rank 4, host ids', inputs: [[2, 3, 4, 5]], op: ([x]) => indexSelect(x!, 2, u32([1, 3, 1])), ref: refIndexSelect(2, [1, 3, 1]) },
];

async function check(c: Case, seed: number): Promise<void> {
  const xs = c.inputs.map((s, i) => asF32(randn(numel(s), seed + i)));
  const ref = c.ref(c.inputs);
  const expected = evaluate(ref, xs);
  const w = asF32(randn(expected.length, seed + 99));
  const ts = xs.map((x, i) => tensor(gpu, x, c.inputs[i]!, { requiresGrad: true }));
  const y = tidy(() => {
    const out = c.op(ts);
    out.backward(tensor(gpu, w, out.shape));
    return out;
  });
  expect(y.shape).toEqual(ref.shape);
  expectClose(`${c.name} forward`, await y.readF32(), expected, { atol: 0, rtol: 0 });
  // Every input's gradient against central differences of Σ w·ref(xs).
  for (let k = 0; k < xs.length; k++) {
    const loss = (xk: Float64Array) => evaluate(ref, xs.map((x, i) => (i === k ? xk : x))).reduce((s, v, i) => s + v * w[i]!, 0);
    expectClose(`${c.name} grad ${k}`, await ts[k]!.grad!.readF32(), finiteDifferences(loss, xs[k]!), { atol: 1e-5, rtol: 1e-5 });
  }
  for (const t of [y, ...ts]) t.dispose();
}

describe('movement ops', () => {
  CASES.forEach((c, i) => {
    it(`${c.name}: ${c.inputs.map((s) => JSON.stringify(s)).join(' ')} forward and backward`, () => check(c, 10 * i + 1));
  });

  // The last two dims' own kernels (the GPU class's tiles, the CPU class's gather of 4 rows):
  // partial tiles and row groups, whole ones, a batch.
  for (const shape of [[33, 18], [2, 16, 16], [3, 5, 40], [1030, 3]] as Shape[]) {
    for (const kernelClass of ['cpu', 'gpu'] as const) {
      it(`${kernelClass} class: transpose ${JSON.stringify(shape)} of the last two dims`, () =>
        withKernelClass(gpu, kernelClass, () => check({ name: 'transpose', inputs: [shape], op: ([x]) => transpose(x!, -2, -1), ref: refPermute(swap(shape.length, -2, -1)) }, 7)));
    }
  }

  it('indexSelect with tensor ids reads NaN past the dim (the host cannot check them)', async () => {
    const x = tensor(gpu, [1, 2, 3], [3]);
    const y = indexSelect(x, 0, idsTensor([2, 3]));
    const got = await y.readF32();
    expect(got[0]).toBe(3);
    expect(Number.isNaN(got[1])).toBe(true);
  });

  it('rejects bad arguments, naming them', () => {
    const x = tensor(gpu, new Float32Array(6), [2, 3]);
    expect(() => permute(x, [0, 0])).toThrow(/repeat/);
    expect(() => permute(x, [0])).toThrow(/1 dims/);
    expect(() => transpose(x, 0, 2)).toThrow(/dim 2 is out of range for 2 dims/);
    expect(() => expand(x, [4, 3])).toThrow(/cannot expand \[2, 3\] to \[4, 3\]/);
    expect(() => expand(x, [3])).toThrow(/cannot expand/);
    expect(() => narrow(x, 1, 2, 2)).toThrow(/start 2, length 2/);
    expect(() => pad(x, [1])).toThrow(/pairs/);
    expect(() => pad(x, [-4, 0])).toThrow(/below zero/);
    expect(() => cat([x, tensor(gpu, new Float32Array(4), [2, 2])], 0)).toThrow(/differ outside dim 0/);
    expect(() => stack([x, tensor(gpu, new Float32Array(6), [3, 2])], 0)).toThrow(/differ/);
    expect(() => indexSelect(x, 1, u32([0, 3]))).toThrow(/index 3 \(position 1\)/);
    expect(() => indexSelect(x, 0, tensor(gpu, [0], [1]))).toThrow(/u32/);
  });

  it('embedding and indexSelect name an out-of-range host index and the size it must stay below', () => {
    const x = tensor(gpu, new Float32Array(6), [2, 3]);
    expect(() => indexSelect(x, 1, u32([0, 3]))).toThrow('indexSelect: index 3 (position 1) is out of range for dim 1 of size 3 in [2, 3]');
    expect(() => embedding(u32([1, 0, 2]), x)).toThrow('embedding: index 2 (position 2) is out of range for dim 0 of size 2 in [2, 3]');
    expect(() => embedding(tensor(gpu, [0, 1], [2]), x)).toThrow('embedding: ids must be a u32 tensor or a Uint32Array, got f32 [2]');
    expect(() => embedding(u32([0]), tensor(gpu, [1, 2], [2]))).toThrow('embedding: weight must be [V, C], got [2]');
  });

  it('embedding with u32 tensor ids reads NaN past V (the host cannot check them without waiting on the GPU)', async () => {
    const w = tensor(gpu, [1, 2, 3, 4], [2, 2]);
    const got = await embedding(tensor(gpu, new Uint32Array([1, 2]), [2, 1]), w).readF32();
    expect(Array.from(got.slice(0, 2))).toEqual([3, 4]);
    expect(got.slice(2).every(Number.isNaN)).toBe(true);
  });

  it('flatten, squeeze, unsqueeze and reshape share the Tensor method, take negative dims and reject bad ones', () => {
    const x = tensor(gpu, new Float32Array(24), [2, 1, 3, 4]);
    expect(flatten(x, -3, -2).shape).toEqual([2, 3, 4]);
    expect(flatten(tensor(gpu, [5], [])).shape).toEqual([1]);
    expect(squeeze(x, [0, 1]).shape).toEqual([2, 3, 4]);
    expect(squeeze(x, 2).shape).toEqual([2, 1, 3, 4]);
    expect(unsqueeze(x, -1).shape).toEqual([2, 1, 3, 4, 1]);
    expect(unsqueeze(x, 0).shape).toEqual([1, 2, 1, 3, 4]);
    expect(reshape(x, [-1, 4]).bufferRange().buffer).toBe(x.bufferRange().buffer);
    expect(() => flatten(x, 2, 1)).toThrow('flatten: startDim 2 comes after endDim 1 in [2, 1, 3, 4]');
    expect(() => unsqueeze(x, 5)).toThrow('unsqueeze: dim 5 is out of range for 5 dims');
    expect(() => squeeze(x, 4)).toThrow('squeeze: dim 4 is out of range for 4 dims');
    expect(() => reshape(x, [5, -1])).toThrow('cannot reshape 24 elements to [5, -1]');
  });
});
