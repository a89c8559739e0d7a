import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import { tensor, tidy, type Shape, type Tensor } from '../../src/tensor/tensor.ts';
import { scaledDotProductAttention } from '../../src/ops/sdpa.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((x, y) => x * y, 1);

interface Case {
  q: Shape;
  k: Shape;
  v: Shape;
  causal?: boolean;
  /** A mask's shape and kind: 'bool' a 0/1 u32 mask, 'add' an additive f32 one (its gradient checked too). */
  mask?: { shape: Shape; kind: 'bool' | 'add' };
  scale?: number;
}

/** The offset of batch coords in an operand whose batch dims (right-aligned) may be 1 (broadcast) or missing. */
function batchOffset(coords: number[], dims: Shape): number {
  const lead = coords.length - dims.length;
  return dims.reduce((at, n, i) => at * n + (n === 1 ? 0 : coords[lead + i]!), 0);
}

/** float64 attention, batch dims broadcast; masked scores are left out of the softmax. */
function refAttention(c: Case, q: Float64Array, k: Float64Array, v: Float64Array, mask?: Float64Array): { out: Float64Array; shape: number[] } {
  const [T, D] = c.q.slice(-2) as [number, number];
  const S = c.k.at(-2)!;
  const Dv = c.v.at(-1)!;
  const batches = [c.q, c.k, c.v, ...(c.mask ? [c.mask.shape] : [])].map((s, i) => (i === 3 ? s.slice(0, -2) : s.slice(0, -2)));
  const rank = Math.max(...batches.map((b) => b.length));
  const batch = Array.from({ length: rank }, (_, i) => Math.max(...batches.map((b) => b[b.length - rank + i] ?? 1)));
  const scale = c.scale ?? 1 / Math.sqrt(D);
  const out = new Float64Array(numel(batch) * T * Dv);
  const ms = c.mask?.shape ?? [];
  const maskAt = (coords: number[], i: number, j: number) => {
    const [mt, mS] = ms.length >= 2 ? (ms.slice(-2) as [number, number]) : [1, ms[0] ?? 1];
    const base = batchOffset(coords, ms.slice(0, -2)) * mt * mS;
    return mask![base + (mt === 1 ? 0 : i) * mS + (mS === 1 ? 0 : j)]!;
  };
  for (let z = 0; z < numel(batch); z++) {
    const coords = batch.map(() => 0);
    for (let d = rank - 1, rest = z; d >= 0; d--) {
      coords[d] = rest % batch[d]!;
      rest = Math.floor(rest / batch[d]!);
    }
    const qb = batchOffset(coords, c.q.slice(0, -2)) * T * D;
    const kb = batchOffset(coords, c.k.slice(0, -2)) * S * D;
    const vb = batchOffset(coords, c.v.slice(0, -2)) * S * Dv;
    for (let i = 0; i < T; i++) {
      const logits: number[] = [];
      for (let j = 0; j < S; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qb + i * D + d]! * k[kb + j * D + d]!;
        s *= scale;
        let allowed = !(c.causal && j > i);
        if (c.mask?.kind === 'bool') allowed &&= maskAt(coords, i, j) !== 0;
        if (c.mask?.kind === 'add') s += maskAt(coords, i, j);
        logits.push(allowed ? s : -Infinity);
      }
      const max = Math.max(...logits);
      const e = logits.map((l) => (l === -Infinity ? 0 : Math.exp(l - max)));
      const total = e.reduce((a, b) => a + b, 0);
      for (let dv = 0; dv < Dv; dv++) {
        let acc = 0;
        for (let j = 0; j < S; j++) acc += (e[j]! / total) * v[vb + j * Dv + dv]!;
        out[(z * T + i) * Dv + dv] = acc;
      }
    }
  }
  return { out, shape: [...batch, T, Dv] };
}

const CASES: Case[] = [
  { q: [3, 4], k: [5, 4], v: [5, 3] },
  { q: [2, 3, 5], k: [2, 3, 5], v: [2, 3, 2], causal: true },
  { q: [2, 4, 3], k: [2, 6, 3], v: [2, 6, 5], causal: true, scale: 0.7 },
  { q: [2, 3, 5, 4], k: [2, 3, 7, 4], v: [2, 3, 7, 6], mask: { shape: [5, 7], kind: 'bool' } },
  { q: [2, 1, 4, 3], k: [1, 3, 5, 3], v: [3, 5, 2], mask: { shape: [2, 1, 1, 5], kind: 'bool' } },
  { q: [2, 5, 3], k: [2, 4, 3], v: [2, 4, 3], mask: { shape: [2, 5, 4], kind: 'add' } },
  { q: [1, 2, 1, 3, 2], k: [2, 2, 2, 4, 2], v: [2, 2, 2, 4, 3], mask: { shape: [4], kind: 'add' }, scale: 2 },
];

/** A 0/1 mask in which every query keeps at least one key (torch would give NaN rows otherwise). */
function boolMask(shape: Shape, seed: number): Float64Array {
  const S = shape.at(-1)!;
  return Float64Array.from(randn(numel(shape), seed), (x, i) => (i % S === 0 || x > -0.3 ? 1 : 0));
}

function label(c: Case): string {
  const parts = [`q ${JSON.stringify(c.q)}`, `k ${JSON.stringify(c.k)}`, `v ${JSON.stringify(c.v)}`];
  if (c.causal) parts.push('causal');
  if (c.mask) parts.push(`${c.mask.kind} mask ${JSON.stringify(c.mask.shape)}`);
  if (c.scale) parts.push(`scale ${c.scale}`);
  return parts.join(', ');
}

async function check(c: Case, seed: number): Promise<void> {
  const [q, k, v] = [c.q, c.k, c.v].map((s, i) => asF32(randn(numel(s), seed + i)));
  const mask = c.mask && (c.mask.kind === 'bool' ? boolMask(c.mask.shape, seed + 3) : asF32(randn(numel(c.mask.shape), seed + 3)));
  const { out: expected, shape } = refAttention(c, q!, k!, v!, mask);
  const w = asF32(randn(expected.length, seed + 4));
  const inputs = [q!, k!, v!, ...(c.mask?.kind === 'add' ? [mask!] : [])];
  const shapes = [c.q, c.k, c.v, ...(c.mask?.kind === 'add' ? [c.mask.shape] : [])];
  const ts = inputs.map((x, i) => tensor(gpu, x, shapes[i]!, { requiresGrad: true }));
  const maskTensor: Tensor | undefined = c.mask && (c.mask.kind === 'bool' ? tensor(gpu, mask!, c.mask.shape, { dtype: 'u32' }) : ts[3]);
  const y = tidy(() => {
    const out = scaledDotProductAttention(ts[0]!, ts[1]!, ts[2]!, { causal: c.causal, mask: maskTensor, scale: c.scale });
    out.backward(tensor(gpu, w, out.shape));
    return out;
  });
  expect(y.shape).toEqual(shape);
  expectClose(`sdpa ${label(c)} forward`, await y.readF32(), expected, { atol: 1e-5, rtol: 1e-4 });
  const names = ['q', 'k', 'v', 'mask'];
  for (let n = 0; n < inputs.length; n++) {
    const loss = (x: Float64Array) => {
      const args = inputs.map((t, i) => (i === n ? x : t));
      return refAttention(c, args[0]!, args[1]!, args[2]!, c.mask?.kind === 'add' ? args[3] : mask).out.reduce((s, o, i) => s + o * w[i]!, 0);
    };
    expectClose(`sdpa ${label(c)} grad ${names[n]}`, await ts[n]!.grad!.readF32(), finiteDifferences(loss, inputs[n]!), { atol: 1e-4, rtol: 1e-3 });
  }
}

describe('scaledDotProductAttention', () => {
  CASES.forEach((c, i) => {
    it(`${label(c)}: forward and gradients`, () => check(c, 100 * i + 1));
  });

  it('gives a query that may attend to no key uniform weights (torch gives NaN), and keeps nothing but its output without autodiff', async () => {
    const q = tensor(gpu, asF32(randn(2 * 3, 1)), [2, 3]);
    const k = tensor(gpu, asF32(randn(4 * 3, 2)), [4, 3]);
    const v = tensor(gpu, asF32(randn(4 * 2, 3)), [4, 2]);
    const mask = tensor(gpu, [1, 0, 1, 0, 0, 0, 0, 0], [2, 4], { dtype: 'u32' });
    const before = gpu.memory().inUse;
    const out = scaledDotProductAttention(q, k, v, { mask });
    const got = await out.readF32();
    out.dispose();
    expect(gpu.memory().inUse).toBe(before);
    const vs = await v.readF32();
    const mean = [0, 1].map((d) => (vs[d]! + vs[2 + d]! + vs[4 + d]! + vs[6 + d]!) / 4);
    expectClose('sdpa fully masked row', got.subarray(2), mean, { atol: 1e-6 });
  });

  it('rejects bad shapes and options, naming them', () => {
    const t = (s: Shape) => tensor(gpu, new Float32Array(numel(s)), s);
    expect(() => scaledDotProductAttention(t([3, 4]), t([5, 3]), t([5, 2]))).toThrow(/different feature sizes/);
    expect(() => scaledDotProductAttention(t([3, 4]), t([5, 4]), t([6, 2]))).toThrow(/different sequence lengths/);
    expect(() => scaledDotProductAttention(t([3, 4]), t([5, 4]), t([5, 2]), { causal: true, mask: t([3, 5]) })).toThrow(/causal or mask/);
    expect(() => scaledDotProductAttention(t([3, 4]), t([5, 4]), t([5, 2]), { mask: t([4, 5]) })).toThrow(/cannot expand \[4, 5\] to \[3, 5\]/);
  });
});
