import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.js';
import { tensor, tidy, type Shape } from '../../src/engine/tensor.js';
import { matmul } from '../../src/ops/matmul.js';
import type { Gpu } from '../../src/gpu/context.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const numel = (s: Shape) => s.reduce((x, y) => x * y, 1);

interface Case {
  a: Shape;
  b: Shape;
  transA?: boolean;
  transB?: boolean;
  bias?: boolean;
}

function outShape(c: Case): number[] {
  const M = c.transA ? c.a.at(-1)! : c.a.at(-2)!;
  const N = c.transB ? c.b.at(-2)! : c.b.at(-1)!;
  return [...(c.a.length > 2 ? c.a.slice(0, -2) : c.b.slice(0, -2)), M, N];
}

/** Visits every (output, a, b) index triple of op(a)·op(b): batched, or one operand 2-D and shared. */
function forEachTerm(c: Case, visit: (out: number, ai: number, bi: number) => void): number[] {
  const [ar, ac] = c.a.slice(-2) as [number, number];
  const [br, bc] = c.b.slice(-2) as [number, number];
  const [M, K] = c.transA ? [ac, ar] : [ar, ac];
  const N = c.transB ? br : bc;
  const batchShape = c.a.length > 2 ? c.a.slice(0, -2) : c.b.slice(0, -2);
  const aStride = c.a.length > 2 ? M * K : 0;
  const bStride = c.b.length > 2 ? K * N : 0;
  for (let z = 0; z < numel(batchShape); z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          visit((z * M + m) * N + n, z * aStride + (c.transA ? k * M + m : m * K + k), z * bStride + (c.transB ? n * K + k : k * N + n));
        }
      }
    }
  }
  return [...batchShape, M, N];
}

/** float64 reference of the forward. */
function refMatmul(a: Float64Array, b: Float64Array, c: Case, bias?: Float64Array): { out: Float64Array; shape: number[] } {
  const out = new Float64Array(numel(outShape(c)));
  const shape = forEachTerm(c, (o, ai, bi) => (out[o]! += a[ai]! * b[bi]!));
  if (bias) out.forEach((v, i) => (out[i] = v + bias[i % bias.length]!));
  return { out, shape };
}

/** Analytic float64 gradients of sum(w · (op(a)·op(b) + bias)). */
function refGrads(a: Float64Array, b: Float64Array, c: Case, w: Float64Array, nBias: number): Float64Array[] {
  const ga = new Float64Array(a.length);
  const gb = new Float64Array(b.length);
  const gbias = new Float64Array(nBias);
  forEachTerm(c, (o, ai, bi) => {
    ga[ai]! += w[o]! * b[bi]!;
    gb[bi]! += w[o]! * a[ai]!;
  });
  w.forEach((v, i) => (gbias[i % nBias]! += v));
  return [ga, gb, gbias];
}

function label(c: Case): string {
  const t = (s: Shape, tr?: boolean) => `${JSON.stringify(s)}${tr ? 'ᵀ' : ''}`;
  return `${t(c.a, c.transA)} × ${t(c.b, c.transB)}${c.bias ? ' + bias' : ''}`;
}

async function check(c: Case, seed: number): Promise<void> {
  const a = asF32(randn(numel(c.a), seed));
  const b = asF32(randn(numel(c.b), seed + 1));
  const N = c.transB ? c.b.at(-2)! : c.b.at(-1)!;
  const bias = c.bias ? asF32(randn(N, seed + 2)) : undefined;
  const { out: expected, shape } = refMatmul(a, b, c, bias);
  const w = asF32(randn(numel(shape), seed + 3));
  const loss = (x: Float64Array, y: Float64Array, z?: Float64Array) => refMatmul(x, y, c, z).out.reduce((s, v, i) => s + v * w[i]!, 0);

  const ta = tensor(gpu, a, c.a, { requiresGrad: true });
  const tb = tensor(gpu, b, c.b, { requiresGrad: true });
  const tbias = bias ? tensor(gpu, bias, [N], { requiresGrad: true }) : undefined;
  const out = tidy(() => {
    const y = matmul(ta, tb, { transA: c.transA, transB: c.transB, bias: tbias });
    y.backward(tensor(gpu, w, shape));
    return y;
  });
  expect(out.shape).toEqual(shape);
  const name = `matmul ${label(c)}`;
  const K = c.transA ? c.a.at(-2)! : c.a.at(-1)!;
  // f32 accumulation error grows with the length of the dot products.
  const tol = { atol: 1e-5 * Math.max(1, Math.sqrt(K)), rtol: 1e-4 };
  expectClose(`${name} forward`, await out.readF32(), expected, tol);
  // Finite differences where they are cheap, the analytic gradient (same maths, one pass) elsewhere.
  const cheap = (a.length + b.length) * expected.length * K < 2e6;
  const [ga, gb, gbias] = cheap
    ? [finiteDifferences((x) => loss(x, b, bias), a), finiteDifferences((y) => loss(a, y, bias), b), bias && finiteDifferences((z) => loss(a, b, z), bias)]
    : refGrads(a, b, c, w, N);
  const gradTol = { atol: 1e-4, rtol: 1e-3 };
  expectClose(`${name} grad a`, await ta.grad!.readF32(), ga!, gradTol);
  expectClose(`${name} grad b`, await tb.grad!.readF32(), gb!, gradTol);
  if (bias) expectClose(`${name} grad bias`, await tbias!.grad!.readF32(), gbias!, gradTol);
}

// Covers the fast vec4 paths (K, N multiples of 4) and the general path (odd sizes, transA),
// each in 16×16 blocks (CPU adapters, once M ≥ 32 and N ≥ 64) and 8×8, with partial blocks,
// all transpose combinations, batches and shared operands.
const cases: Case[] = [
  { a: [1, 1], b: [1, 1] },
  { a: [1, 1], b: [1, 1], transA: true, transB: true, bias: true },
  { a: [7, 13], b: [13, 5], bias: true },
  { a: [65, 33], b: [33, 17] },
  { a: [33, 65], b: [33, 17], transA: true, bias: true },
  { a: [65, 33], b: [17, 33], transB: true },
  { a: [33, 65], b: [17, 33], transA: true, transB: true, bias: true },
  { a: [33, 32], b: [32, 68], bias: true },
  { a: [33, 32], b: [68, 32], transB: true, bias: true },
  { a: [32, 33], b: [32, 68], transA: true },
  { a: [1, 8], b: [8, 132], bias: true },
  { a: [1, 8], b: [132, 8], transB: true },
  { a: [5, 1], b: [1, 3], bias: true },
  { a: [1, 5], b: [3, 1], transA: true, transB: true },
  { a: [70, 4], b: [4, 4] },
  { a: [70, 12], b: [12, 260], bias: true },
  { a: [70, 12], b: [260, 12], transB: true },
  { a: [2, 40, 8], b: [2, 8, 132] },
  { a: [2, 40, 8], b: [2, 132, 8], transB: true, bias: true },
  { a: [3, 20, 16], b: [16, 72], bias: true },
  { a: [40, 8], b: [8, 64], bias: true },
  { a: [70, 13], b: [13, 100], bias: true },
  { a: [13, 40], b: [13, 66], transA: true, bias: true },
  { a: [2, 40, 9], b: [2, 70, 9], transB: true },
  { a: [2, 40, 8], b: [2, 64, 8], transB: true },
  { a: [2, 3, 5, 8], b: [2, 3, 8, 12] },
  { a: [2, 3, 8, 5], b: [2, 3, 12, 8], transA: true, transB: true, bias: true },
  { a: [2, 3, 5, 7], b: [2, 3, 6, 7], transB: true },
  { a: [2, 5, 8], b: [8, 12], bias: true },
  { a: [3, 9, 7], b: [7, 6], bias: true },
  { a: [2, 8, 5], b: [8, 12], transA: true },
  { a: [2, 9, 8], b: [12, 8], transB: true, bias: true },
  { a: [9, 7], b: [3, 7, 6] },
  { a: [7, 9], b: [3, 6, 7], transA: true, transB: true },
];

describe('matmul', () => {
  cases.forEach((c, i) => {
    it(`${label(c)} forward and backward`, () => check(c, 10 * i + 1));
  });

  it('matches a GPT-2-sized projection on sampled rows (K = 768, bias)', async () => {
    const [M, K, N] = [37, 768, 200];
    const a = asF32(randn(M * K, 7));
    const b = asF32(randn(K * N, 8, 0.05));
    const bias = asF32(randn(N, 9));
    const got = await matmul(tensor(gpu, a, [M, K]), tensor(gpu, b, [K, N]), { bias: tensor(gpu, bias, [N]) }).readF32();
    const ref = refMatmul(a, b, { a: [M, K], b: [K, N] }, bias).out;
    expectClose('matmul [37, 768] × [768, 200] + bias', got, ref, { atol: 1e-4, rtol: 1e-4 });
  });

  it('computes no gradient for frozen operands', () => {
    const x = tensor(gpu, asF32(randn(6 * 8, 1)), [2, 3, 8], { requiresGrad: true });
    const weight = tensor(gpu, asF32(randn(8 * 12, 2)), [8, 12]);
    const bias = tensor(gpu, asF32(randn(12, 3)), [12]);
    tidy(() => {
      const y = matmul(x, weight, { bias });
      const before = gpu.dispatches;
      y.backward(tensor(gpu, new Float32Array(6 * 12).fill(1), [2, 3, 12]));
      // Only dX = dY·Wᵀ: no dW, no dBias.
      expect(gpu.dispatches - before).toBe(1);
    });
    expect(weight.grad).toBeNull();
    expect(bias.grad).toBeNull();
    expect(x.grad?.shape).toEqual([2, 3, 8]);
  });

  it('rejects mismatched shapes, naming both', () => {
    const t = (s: Shape) => tensor(gpu, new Float32Array(numel(s)), s);
    expect(() => matmul(t([3, 4]), t([5, 6]))).toThrow(RangeError);
    expect(() => matmul(t([3, 4]), t([5, 6]))).toThrow(/\[3, 4\].*\[5, 6\]/);
    expect(() => matmul(t([3, 4]), t([4, 6]), { transB: true })).toThrow(/inner dimensions/);
    expect(() => matmul(t([2, 3, 4]), t([3, 4, 5]))).toThrow(/batch dims \[2\] and \[3\]/);
    expect(() => matmul(t([3, 4]), t([4, 5]), { bias: t([4]) })).toThrow(/bias must be \[5\]/);
    expect(() => matmul(t([4]), t([4, 5]))).toThrow(/at least 2 dims/);
  });
});
