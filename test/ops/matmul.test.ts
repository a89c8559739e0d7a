import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, featureTestGpu, randn, asF32, expectClose, finiteDifferences, withKernelClass } from '../helpers.ts';
import { tensor, tidy, type Shape } from '../../src/tensor/tensor.ts';
import { matmul, type MatmulKernel } from '../../src/ops/matmul.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { leakCheck } from '../../src/tensor/memory.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/** The kernel entry points that `run` dispatches. */
function entriesOf(device: Gpu, run: () => void): string[] {
  const entries: string[] = [];
  const dispatch = device.dispatch;
  device.dispatch = (d) => {
    entries.push(d.entry);
    dispatch.call(device, d);
  };
  try {
    tidy(run);
  } finally {
    device.dispatch = dispatch;
  }
  return entries;
}

const numel = (s: Shape) => s.reduce((x, y) => x * y, 1);

interface Case {
  a: Shape;
  b: Shape;
  transA?: boolean;
  transB?: boolean;
  bias?: boolean;
}

/** torch.matmul's view of a case: 1-D operands as a row / a column, batch dims broadcast. */
function layout(c: Case) {
  const a = c.a.length === 1 ? [1, c.a[0]!] : c.a;
  const b = c.b.length === 1 ? [c.b[0]!, 1] : c.b;
  const [ar, ac] = a.slice(-2) as [number, number];
  const [br, bc] = b.slice(-2) as [number, number];
  const [M, K] = c.transA ? [ac, ar] : [ar, ac];
  const N = c.transB ? br : bc;
  const aBatch = a.slice(0, -2);
  const bBatch = b.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const align = (s: Shape) => [...new Array<number>(rank - s.length).fill(1), ...s];
  const [pa, pb] = [align(aBatch), align(bBatch)];
  const batch = pa.map((n, i) => Math.max(n, pb[i]!));
  let shape = [...batch, M, N];
  if (c.b.length === 1) shape = shape.slice(0, -1);
  if (c.a.length === 1) shape = [...shape.slice(0, -(c.b.length === 1 ? 1 : 2)), ...(c.b.length === 1 ? [] : [N])];
  return { M, N, K, batch, pa, pb, shape };
}

function outShape(c: Case): number[] {
  return layout(c).shape;
}

/** Visits every (output, a, b) index triple of op(a)·op(b), batch dims broadcast. */
function forEachTerm(c: Case, visit: (out: number, ai: number, bi: number) => void): number[] {
  const { M, N, K, batch, pa, pb, shape } = layout(c);
  // The batch offset of an operand: broadcast dims (size 1) do not advance it.
  const offset = (coords: number[], dims: number[]) => coords.reduce((at, v, i) => at * dims[i]! + (dims[i] === 1 ? 0 : v), 0);
  for (let z = 0; z < numel(batch); z++) {
    const coords = batch.map(() => 0);
    for (let d = batch.length - 1, rest = z; d >= 0; d--) {
      coords[d] = rest % batch[d]!;
      rest = Math.floor(rest / batch[d]!);
    }
    const aBase = offset(coords, pa) * M * K;
    const bBase = offset(coords, pb) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          visit((z * M + m) * N + n, aBase + (c.transA ? k * M + m : m * K + k), bBase + (c.transB ? n * K + k : k * N + n));
        }
      }
    }
  }
  return shape;
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
  // torch.matmul's broadcasting: batch dims of different ranks and sizes 1, and 1-D operands.
  { a: [2, 1, 5, 4], b: [3, 4, 6] },
  { a: [2, 1, 5, 4], b: [3, 6, 4], transB: true, bias: true },
  { a: [1, 3, 5, 7], b: [3, 7, 2] },
  { a: [1, 1, 5, 8], b: [2, 3, 8, 4] },
  { a: [4, 1, 3, 5], b: [1, 2, 5, 3], transA: false },
  { a: [3, 1, 6, 5], b: [1, 1, 6, 4], transA: true },
  { a: [2, 1, 2, 1, 3, 4], b: [2, 1, 2, 4, 5] },
  { a: [7], b: [7] },
  { a: [7], b: [2, 7, 3] },
  { a: [2, 3, 7], b: [7] },
  { a: [5], b: [5, 4], bias: true },
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

  it('keeps no views or copies of a broadcast or 1-D product once nothing records it for autodiff', async () => {
    const t = (s: Shape) => tensor(gpu, new Float32Array(numel(s)).fill(1), s);
    const operands = [t([2, 1, 5, 4]), t([3, 4, 6]), t([1, 3, 4, 6]), t([4])];
    const before = gpu.memory().inUse;
    await leakCheck(() => {
      const products = [matmul(operands[0]!, operands[1]!), matmul(operands[0]!, operands[2]!), matmul(operands[3]!, operands[1]!)];
      for (const p of products) p.dispose();
    });
    expect(gpu.memory().inUse).toBe(before);
    for (const x of operands) x.dispose();
  });

  it('rejects a forced tiled kernel where rows are not whole vec4s, and a bad split', () => {
    const t = (s: Shape) => tensor(gpu, new Float32Array(numel(s)), s);
    expect(() => matmul(t([3, 5]), t([5, 8]), { kernel: { tile: '64x64' } })).toThrow(/multiples of 4 \(M 3, N 8, K 5\)/);
    expect(() => matmul(t([3, 4]), t([4, 8]), { kernel: { tile: '64x64', splits: 0 } })).toThrow(/splits must be a positive integer/);
  });

  it('rejects mismatched shapes, naming both', () => {
    const t = (s: Shape) => tensor(gpu, new Float32Array(numel(s)), s);
    expect(() => matmul(t([3, 4]), t([5, 6]))).toThrow(RangeError);
    expect(() => matmul(t([3, 4]), t([5, 6]))).toThrow(/\[3, 4\].*\[5, 6\]/);
    expect(() => matmul(t([3, 4]), t([4, 6]), { transB: true })).toThrow(/inner dimensions/);
    expect(() => matmul(t([2, 3, 4]), t([3, 4, 5]))).toThrow(/batch dims \[2\] and \[3\]/);
    expect(() => matmul(t([3, 4]), t([4, 5]), { bias: t([4]) })).toThrow(/bias must be \[5\]/);
    expect(() => matmul(t([2, 2, 3, 4]), t([3, 4, 5]))).toThrow(/batch dims \[2, 2\] and \[3\] do not broadcast/);
    expect(() => matmul(t([4]), t([4, 5]), { transA: true })).toThrow(/2 to be transposed/);
  });
});

// The GPU family's tiled kernel, forced on this (CPU) adapter: every tile and layout, K split
// or not, batched and shared operands, fused bias, sizes off every tile (1, odd, primes where the
// layout allows: only op(A)'s and op(B)'s contiguous dimensions and N must be multiples of 4).
interface TiledCase extends Case {
  kernel: MatmulKernel;
}

const tiledCases: TiledCase[] = [
  { a: [37, 20], b: [20, 68], bias: true, kernel: { tile: '64x64' } },
  { a: [37, 20], b: [20, 68], kernel: { tile: '128x64' } },
  { a: [131, 20], b: [20, 132], bias: true, kernel: { tile: '128x128' } },
  { a: [1, 36], b: [132, 36], transB: true, bias: true, kernel: { tile: '64x64' } },
  { a: [67, 36], b: [20, 36], transB: true, kernel: { tile: '128x64' } },
  { a: [5, 36], b: [136, 36], transB: true, kernel: { tile: '128x128', splits: 2 } },
  { a: [13, 44], b: [13, 20], transA: true, bias: true, kernel: { tile: '64x64' } },
  { a: [29, 8], b: [29, 68], transA: true, kernel: { tile: '128x64', splits: 3 } },
  { a: [7, 132], b: [7, 4], transA: true, kernel: { tile: '128x128' } },
  { a: [12, 68], b: [8, 12], transA: true, transB: true, bias: true, kernel: { tile: '64x64' } },
  { a: [20, 4], b: [72, 20], transA: true, transB: true, kernel: { tile: '128x64' } },
  { a: [100, 8], b: [8, 100], transA: true, transB: true, bias: true, kernel: { tile: '128x128', splits: 3 } },
  { a: [33, 100], b: [100, 8], bias: true, kernel: { tile: '64x64', splits: 3 } },
  { a: [3, 5, 24], b: [3, 24, 12], bias: true, kernel: { tile: '64x64' } },
  { a: [3, 5, 24], b: [24, 12], kernel: { tile: '128x64', splits: 2 } },
  { a: [2, 9, 40], b: [2, 12, 40], transB: true, bias: true, kernel: { tile: '64x64', splits: 2 } },
  { a: [24, 12], b: [2, 24, 8], transA: true, kernel: { tile: '64x64' } },
  // Split K a chunk of rows at a time (tall matrices bound the partials' memory that way).
  { a: [40, 132], b: [40, 20], transA: true, bias: true, kernel: { tile: '64x64', splits: 2, rowsPerChunk: 64 } },
  { a: [2, 67, 40], b: [2, 40, 12], bias: true, kernel: { tile: '128x64', splits: 3, rowsPerChunk: 16 } },
];

/** Lavapipe compiles slowly: there one case per layout, each tile and K split at least once. */
const LAVAPIPE_CASES = [2, 7, 11, 15];

async function checkForward(device: Gpu, c: TiledCase, seed: number): Promise<number> {
  const a = asF32(randn(numel(c.a), seed));
  const b = asF32(randn(numel(c.b), seed + 1));
  const N = c.transB ? c.b.at(-2)! : c.b.at(-1)!;
  const K = c.transA ? c.a.at(-2)! : c.a.at(-1)!;
  const bias = c.bias ? asF32(randn(N, seed + 2)) : undefined;
  const { out: expected, shape } = refMatmul(a, b, c, bias);
  const y = matmul(tensor(device, a, c.a), tensor(device, b, c.b), {
    transA: c.transA,
    transB: c.transB,
    bias: bias && tensor(device, bias, [N]),
    kernel: c.kernel,
  });
  expect(y.shape).toEqual(shape);
  const split = c.kernel.splits ? `, K in ${c.kernel.splits}` : '';
  return expectClose(`matmul tiled ${c.kernel.tile}${split} ${label(c)} on ${device.adapterName}`, await y.readF32(), expected, {
    atol: 1e-5 * Math.max(1, Math.sqrt(K)),
    rtol: 1e-4,
  });
}

describe('matmul, the GPU family forced on a CPU adapter', () => {
  tiledCases.forEach((c, i) => {
    const split = c.kernel.splits ? `, K in ${c.kernel.splits}` : '';
    it(`tiled ${c.kernel.tile}${split}: ${label(c)}`, () => checkForward(gpu, c, 100 + 10 * i));
  });

  it('tiled on a Vulkan adapter too (lavapipe): each layout, tile and split', async (ctx) => {
    const vulkan = await featureTestGpu();
    if (!vulkan || vulkan === gpu) return ctx.skip('no second (Vulkan) adapter here (scripts/software-vulkan.sh installs lavapipe)');
    for (const i of LAVAPIPE_CASES) await checkForward(vulkan, tiledCases[i]!, 100 + 10 * i);
  });

  it('neither the tile nor the chunk of rows changes a result, bit for bit (each output sums k in order)', async () => {
    const a = tensor(gpu, asF32(randn(70 * 36, 5)), [70, 36]);
    const b = tensor(gpu, asF32(randn(36 * 72, 6)), [36, 72]);
    const kernels: MatmulKernel[] = [{ tile: '64x64' }, { tile: '128x64' }, { tile: '128x128' }];
    const [first, ...rest] = await Promise.all(kernels.map((kernel) => matmul(a, b, { kernel }).readF32()));
    for (const other of rest) expect(other).toEqual(first);
    const split = await matmul(a, b, { kernel: { tile: '128x128', splits: 2 } }).readF32();
    for (const kernel of [{ tile: '64x64', splits: 2, rowsPerChunk: 8 }, { tile: '128x64', splits: 2, rowsPerChunk: 68 }] as MatmulKernel[]) {
      expect(await matmul(a, b, { kernel }).readF32()).toEqual(split);
    }
    expect(() => matmul(a, b, { kernel: { tile: '64x64', splits: 2, rowsPerChunk: 6 } })).toThrow(/rowsPerChunk must be a positive multiple of 4, not 6/);
  });

  it('chooses the tiled kernel on a GPU, splitting K by N and K only, so rows do not depend on the batch', async () => {
    const [K, N] = [2048, 64];
    const x = asF32(randn(70 * K, 11));
    const w = asF32(randn(K * N, 12, 0.05));
    const bias = asF32(randn(N, 13));
    const tw = tensor(gpu, w, [K, N]);
    const tb = tensor(gpu, bias, [N]);
    await withKernelClass(gpu, 'gpu', async () => {
      const tall = tensor(gpu, x, [70, K]);
      const short = tensor(gpu, x.subarray(0, 3 * K), [3, K]);
      expect(entriesOf(gpu, () => matmul(tall, tw, { bias: tb }))).toEqual(['mm_tiled', 'mm_split_sum']);
      const got = await matmul(tall, tw, { bias: tb }).readF32();
      expectClose('matmul GPU class, split K [70, 2048] × [2048, 64] + bias', got, refMatmul(x, w, { a: [70, K], b: [K, N] }, bias).out, { atol: 1e-4, rtol: 1e-4 });
      expect(await matmul(short, tw, { bias: tb }).readF32()).toEqual(got.subarray(0, 3 * N));
      // Rows that are not whole vec4s fall back to the register-blocked kernel.
      expect(entriesOf(gpu, () => matmul(tensor(gpu, new Float32Array(6), [2, 3]), tensor(gpu, new Float32Array(15), [3, 5])))).toEqual(['mm_general_8x8']);
    });
    // The CPU class keeps its register-blocked kernels.
    await withKernelClass(gpu, 'cpu', async () => {
      expect(entriesOf(gpu, () => matmul(tensor(gpu, x, [70, K]), tw, { bias: tb }))).toEqual(['mm_nn_16x16']);
    });
  });

  // Forward and backward with the GPU class's own choices (tiled where rows are whole vec4s, the
  // 8×8 register kernels elsewhere), against finite differences.
  const gradCases = [3, 5, 7, 8, 9, 16, 18, 19, 23, 26, 28, 31, 34, 35, 37, 38, 40, 42].map((i) => cases[i]!);
  gradCases.forEach((c, i) => {
    it(`GPU class: ${label(c)} forward and backward`, () => withKernelClass(gpu, 'gpu', () => check(c, 1000 + 10 * i)));
  });
});
