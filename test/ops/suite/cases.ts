// The op suite's table: at least one case for every op of opCatalog(), on broadcast, odd and
// rank-1..4 shapes, each with a float64 reference of its forward (test/ops/suite/reference.ts).
// Gradients are checked against central finite differences of that reference (runner.ts), so
// no expected value comes from a GPU. Host-neutral: ops are reached through the engine object
// a host hands in (src/engine.ts in Node and Deno, the engine bundle in a page).
// A new op needs a case here: test/ops/suite.test.ts fails while a catalog op has none.
import type * as EngineModule from '../../../src/engine.ts';
import { seededRandom } from '../../../src/util/random.ts';
import { linearCases } from './linear.ts';
import { erfCases } from './erf.ts';
import { convCases } from './conv.ts';
import { dropoutCases, nnOpCases } from './nn-ops.ts';
import {
  broadcastIndex, broadcastMap, broadcastRef, broadcastShapes, coordsOf, logSumExpOf, matmulRef, normals, numel, permuteRef,
  reduceRef, sigmoid, sliceRef, softmaxRows, sumOf, sumToShapeRef, type Shape,
} from './reference.ts';

export type Engine = typeof EngineModule;
export type Tensor = EngineModule.Tensor;
export type Gpu = EngineModule.Gpu;

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface SuiteInput {
  shape: Shape;
  /** Values already rounded to f32. */
  data: Float64Array;
  /** Whether the case checks this input's gradient. */
  grad: boolean;
  /** Integer ids (embedding, indexSelect) are made as a u32 tensor; f32 otherwise. */
  dtype?: 'u32';
}

export type Family = 'creation' | 'elementwise' | 'comparison' | 'reduction' | 'movement' | 'matmul' | 'routine' | 'loss' | 'convolution';

export interface OpCase {
  /** The catalog name of the op under test. */
  op: string;
  /** Unique: the op and what is special about the case. */
  name: string;
  family: Family;
  inputs: SuiteInput[];
  /** The output's shape. */
  shape: Shape;
  /** The op on the GPU, on tensors made from `inputs`. */
  run(e: Engine, xs: Tensor[], gpu: Gpu): Tensor;
  /** The float64 forward, flat, from the inputs' data. */
  reference(xs: Float64Array[]): Float64Array;
  /**
   * Gradients computed elsewhere (PyTorch: torch.ts) of Σ outputGradient·output, used instead
   * of finite differences of `reference`.
   */
  expected?: { outputGradient: Float64Array; gradients: (Float64Array | null)[] };
  tol?: Tolerance;
  gradTol?: Tolerance;
  /** Part of the subset the Deno and Chromium host tests run. */
  hostSubset?: boolean;
}

export const FORWARD_TOLERANCE: Tolerance = { atol: 1e-5, rtol: 1e-4 };
export const GRADIENT_TOLERANCE: Tolerance = { atol: 1e-4, rtol: 1e-3 };

const f32 = (values: ArrayLike<number>) => Float64Array.from(Float32Array.from(values));

/** A seeded standard-normal input (times `scale`, then mapped by `domain`), its gradient checked unless grad is false. */
function input(shape: Shape, seed: number, opts: { domain?: (v: number) => number; grad?: boolean; scale?: number } = {}): SuiteInput {
  const raw = normals(numel(shape), seed, opts.scale ?? 1);
  return { shape, data: opts.domain ? f32(raw.map(opts.domain)) : raw, grad: opts.grad ?? true };
}

const awayFromZero = (v: number) => Math.sign(v || 1) * (0.5 + Math.abs(v));
const positive = (v: number) => 0.5 + Math.abs(v);

/** Odd shapes of rank 1 to 4 that unary cases cycle through. */
const UNARY_SHAPES: Shape[] = [[257], [3, 70], [5, 1, 33], [2, 3, 4, 5]];

const UNARY: Record<string, { f: (x: number) => number; domain?: (v: number) => number }> = {
  neg: { f: (x) => -x },
  exp: { f: Math.exp },
  log: { f: Math.log, domain: positive },
  sqrt: { f: Math.sqrt, domain: positive },
  rsqrt: { f: (x) => 1 / Math.sqrt(x), domain: positive },
  reciprocal: { f: (x) => 1 / x, domain: awayFromZero },
  abs: { f: Math.abs },
  sin: { f: Math.sin },
  cos: { f: Math.cos },
  tanh: { f: Math.tanh, domain: (v) => 3 * v },
  sigmoid: { f: sigmoid, domain: (v) => 3 * v },
  relu: { f: (x) => Math.max(x, 0) },
  silu: { f: (x) => x * sigmoid(x), domain: (v) => 3 * v },
  square: { f: (x) => x * x },
};

/** Broadcast pairs of shapes binary cases cycle through: rank 1..4, size-1 dims on either side. */
const BINARY_SHAPES: [Shape, Shape][] = [
  [[3, 70], [70]],
  [[5, 1, 33], [1, 7, 1]],
  [[2, 3, 4, 5], [3, 1, 5]],
  [[257], [257]],
  [[4, 1], [1]],
];

const BINARY: Record<string, { f: (x: number, y: number) => number; a?: (v: number) => number; b?: (v: number) => number; comparison?: boolean }> = {
  add: { f: (x, y) => x + y },
  sub: { f: (x, y) => x - y },
  mul: { f: (x, y) => x * y },
  div: { f: (x, y) => x / y, b: awayFromZero },
  pow: { f: (x, y) => x ** y, a: positive },
  maximum: { f: Math.max },
  minimum: { f: Math.min },
  // eq/ne compare rounded values, so equal pairs occur.
  eq: { f: (x, y) => Number(x === y), a: Math.round, b: Math.round, comparison: true },
  ne: { f: (x, y) => Number(x !== y), a: Math.round, b: Math.round, comparison: true },
  lt: { f: (x, y) => Number(x < y), comparison: true },
  le: { f: (x, y) => Number(x <= y), a: Math.round, b: Math.round, comparison: true },
  gt: { f: (x, y) => Number(x > y), comparison: true },
  ge: { f: (x, y) => Number(x >= y), a: Math.round, b: Math.round, comparison: true },
};

const call = (e: Engine, name: string) => (e as unknown as Record<string, (...args: unknown[]) => Tensor>)[name]!;

function elementwiseCases(): OpCase[] {
  const cases: OpCase[] = [];
  Object.entries(UNARY).forEach(([op, { f, domain }], i) => {
    const shape = UNARY_SHAPES[i % UNARY_SHAPES.length]!;
    cases.push({
      op, name: `${op} ${JSON.stringify(shape)}`, family: 'elementwise', inputs: [input(shape, 10 + i, { ...(domain ? { domain } : {}) })], shape,
      run: (e, [x]) => call(e, op)(x),
      reference: ([x]) => x!.map(f),
      hostSubset: op === 'exp',
    });
  });
  Object.entries(BINARY).forEach(([op, { f, a, b, comparison }], i) => {
    const [as, bs] = BINARY_SHAPES[i % BINARY_SHAPES.length]!;
    const shape = broadcastShapes(as, bs);
    cases.push({
      op, name: `${op} ${JSON.stringify(as)} ⊙ ${JSON.stringify(bs)}`, family: comparison ? 'comparison' : 'elementwise',
      inputs: [input(as, 30 + i, { grad: !comparison, domain: a ?? ((v) => v), scale: 2 }), input(bs, 50 + i, { grad: !comparison, domain: b ?? ((v) => v), scale: 2 })],
      shape,
      run: (e, [x, y]) => call(e, op)(x, y),
      reference: ([x, y]) => broadcastMap([{ data: x!, shape: as }, { data: y!, shape: bs }], f),
      ...(comparison ? { tol: { atol: 0, rtol: 0 } } : {}),
      hostSubset: op === 'mul',
    });
  });
  cases.push(
    {
      op: 'pow', name: 'pow [6, 7] ^ 2.5 (a number)', family: 'elementwise', inputs: [input([6, 7], 70, { domain: positive })], shape: [6, 7],
      run: (e, [x]) => e.pow(x!, 2.5),
      reference: ([x]) => x!.map((v) => v ** 2.5),
    },
    {
      op: 'where', name: 'where [2, 1, 3] ? [3] : [2, 5, 1]', family: 'comparison',
      // A condition with values other than 1 among the true ones: nonzero means true.
      inputs: [input([2, 1, 3], 71, { grad: false, domain: (v) => (v > 0 ? (v > 1 ? 2 : 1) : 0) }), input([3], 72), input([2, 5, 1], 73)],
      shape: [2, 5, 3],
      run: (e, [c, x, y]) => e.where(c!, x!, y!),
      reference: ([c, x, y]) => broadcastMap([{ data: c!, shape: [2, 1, 3] }, { data: x!, shape: [3] }, { data: y!, shape: [2, 5, 1] }], (p, q, r) => (p !== 0 ? q : r)),
    },
    {
      op: 'scale', name: 'scale [9, 31] · 2.5 − 1', family: 'elementwise', inputs: [input([9, 31], 74)], shape: [9, 31],
      run: (e, [x]) => e.scale(x!, 2.5, -1),
      reference: ([x]) => x!.map((v) => v * 2.5 - 1),
    },
    {
      op: 'gelu', name: 'gelu [3, 5, 67] approximate tanh', family: 'elementwise', inputs: [input([3, 5, 67], 75, { scale: 3 })], shape: [3, 5, 67],
      run: (e, [x]) => e.gelu(x!, { approximate: 'tanh' }),
      reference: ([x]) => x!.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))),
    },
  );
  return cases;
}

function creationCases(): OpCase[] {
  const constant = (op: string, shape: Shape, value: number, run: OpCase['run']): OpCase => ({
    op, name: `${op} ${JSON.stringify(shape)}`, family: 'creation', inputs: [], shape, run, reference: () => new Float64Array(numel(shape)).fill(value), tol: { atol: 0, rtol: 0 },
  });
  const uniform = (seed: number, n: number) => {
    const u = seededRandom(seed);
    return Float64Array.from({ length: n }, () => Math.min(u(), 1 - 2 ** -24));
  };
  return [
    constant('zeros', [3, 5], 0, (e, _, gpu) => e.zeros(gpu, [3, 5])),
    constant('zeros', [7, 3], 0, (e, _, gpu) => e.zeros(gpu, [7, 3], { dtype: 'u32' })),
    constant('ones', [2, 3, 4, 5], 1, (e, _, gpu) => e.ones(gpu, [2, 3, 4, 5])),
    constant('full', [1, 257], -1.5, (e, _, gpu) => e.full(gpu, [1, 257], -1.5)),
    {
      op: 'arange', name: 'arange(1.5, 7, 0.5)', family: 'creation', inputs: [], shape: [11],
      run: (e, _, gpu) => e.arange(gpu, 1.5, 7, 0.5),
      reference: () => Float64Array.from({ length: 11 }, (_, i) => 1.5 + 0.5 * i), tol: { atol: 0, rtol: 0 },
    },
    {
      op: 'arange', name: 'arange(2, -3, -0.7)', family: 'creation', inputs: [], shape: [8],
      run: (e, _, gpu) => e.arange(gpu, 2, -3, -0.7),
      reference: () => f32(Array.from({ length: 8 }, (_, i) => 2 - 0.7 * i)), tol: { atol: 0, rtol: 0 },
    },
    {
      op: 'rand', name: 'rand [17, 3] seed 5 (the seeded generator of src/util/random.ts)', family: 'creation', inputs: [], shape: [17, 3],
      run: (e, _, gpu) => e.rand(gpu, [17, 3], { seed: 5 }),
      reference: () => uniform(5, 51), tol: { atol: 0, rtol: 2 ** -24 },
    },
    {
      op: 'randn', name: 'randn [4, 1, 9] seed 6 (Box–Muller of that generator)', family: 'creation', inputs: [], shape: [4, 1, 9],
      run: (e, _, gpu) => e.randn(gpu, [4, 1, 9], { seed: 6 }),
      reference: () => {
        const u = seededRandom(6);
        return Float64Array.from({ length: 36 }, () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()));
      },
      tol: { atol: 1e-6, rtol: 1e-6 },
    },
  ];
}

function reductionCases(): OpCase[] {
  const max = (v: number[]) => Math.max(...v);
  const min = (v: number[]) => Math.min(...v);
  const firstMax = (v: number[]) => v.indexOf(Math.max(...v));
  const r4: Shape = [2, 3, 4, 5];
  const r3: Shape = [3, 5, 37];
  return [
    {
      op: 'sum', name: 'sum [2, 3, 4, 5] over [0, 2], keepdim', family: 'reduction', inputs: [input(r4, 100)], shape: [1, 3, 1, 5],
      run: (e, [x]) => e.sum(x!, [0, 2], true), reference: ([x]) => reduceRef(x!, r4, [0, 2], sumOf), hostSubset: true,
    },
    {
      op: 'sum', name: 'sum [257] of everything', family: 'reduction', inputs: [input([257], 101)], shape: [],
      run: (e, [x]) => e.sum(x!), reference: ([x]) => reduceRef(x!, [257], [0], sumOf),
    },
    {
      op: 'mean', name: 'mean [3, 5, 37] over -1', family: 'reduction', inputs: [input(r3, 102)], shape: [3, 5],
      run: (e, [x]) => e.mean(x!, -1), reference: ([x]) => reduceRef(x!, r3, [2], (v) => sumOf(v) / v.length),
    },
    {
      op: 'max', name: 'max [3, 5, 37] over 1', family: 'reduction', inputs: [input(r3, 103)], shape: [3, 37],
      run: (e, [x]) => e.max(x!, 1), reference: ([x]) => reduceRef(x!, r3, [1], max),
    },
    {
      op: 'min', name: 'min [2, 3, 4, 5] over [1, 3], keepdim', family: 'reduction', inputs: [input(r4, 104)], shape: [2, 1, 4, 1],
      run: (e, [x]) => e.min(x!, [1, 3], true), reference: ([x]) => reduceRef(x!, r4, [1, 3], min),
    },
    {
      op: 'logsumexp', name: 'logsumexp [7, 65] over -1, keepdim', family: 'reduction', inputs: [input([7, 65], 105, { scale: 3 })], shape: [7, 1],
      run: (e, [x]) => e.logsumexp(x!, -1, true), reference: ([x]) => reduceRef(x!, [7, 65], [1], logSumExpOf),
    },
    {
      op: 'argmax', name: 'argmax [3, 5, 37] over 1', family: 'reduction', inputs: [input(r3, 106, { grad: false })], shape: [3, 37],
      run: (e, [x]) => e.argmax(x!, 1), reference: ([x]) => reduceRef(x!, r3, [1], firstMax), tol: { atol: 0, rtol: 0 },
    },
    {
      op: 'argmax', name: 'argmax [5, 1, 33] flattened, ties resolved to the first', family: 'reduction',
      inputs: [input([5, 1, 33], 107, { grad: false, domain: (v) => Math.min(Math.round(v), 1) })], shape: [],
      run: (e, [x]) => e.argmax(x!), reference: ([x]) => Float64Array.of(firstMax([...x!])), tol: { atol: 0, rtol: 0 },
    },
  ];
}

/** The permutation that swaps d0 and d1 of a rank-r tensor. */
const swap = (r: number, d0: number, d1: number) => Array.from({ length: r }, (_, d) => (d === d0 ? d1 : d === d1 ? d0 : d));

/** pad's reference: pads in torch's order (last dim first), negative ones crop. */
function padRef(x: Float64Array, shape: Shape, pads: readonly number[], value: number): Float64Array {
  const lo = shape.map((_, d) => pads[2 * (shape.length - 1 - d)] ?? 0);
  const outShape = shape.map((n, d) => n + lo[d]! + (pads[2 * (shape.length - 1 - d) + 1] ?? 0));
  return Float64Array.from({ length: numel(outShape) }, (_, i) => {
    const c = coordsOf(i, outShape).map((v, d) => v - lo[d]!);
    return c.every((v, d) => v >= 0 && v < shape[d]!) ? x[broadcastIndex(c, shape)]! : value;
  });
}

/** Pieces of `shapes` joined along `dim` (cat), or along a new dim (stack: every shape gets a 1 there first). */
function catRef(xs: Float64Array[], shapes: Shape[], dim: number): Float64Array {
  const sizes = shapes.map((s) => s[dim]!);
  const outShape = shapes[0]!.map((n, d) => (d === dim ? sumOf(sizes) : n));
  return Float64Array.from({ length: numel(outShape) }, (_, i) => {
    const c = coordsOf(i, outShape);
    let piece = 0;
    while (c[dim]! >= sizes[piece]!) c[dim]! -= sizes[piece++]!;
    return xs[piece]![broadcastIndex(c, shapes[piece]!)]!;
  });
}

function indexSelectRef(x: Float64Array, shape: Shape, dim: number, indices: Uint32Array): Float64Array {
  const outShape = shape.map((n, d) => (d === dim ? indices.length : n));
  return Float64Array.from({ length: numel(outShape) }, (_, i) => {
    const c = coordsOf(i, outShape);
    c[dim] = indices[c[dim]!]!;
    return x[broadcastIndex(c, shape)]!;
  });
}

function movementCases(): OpCase[] {
  const r4: Shape = [2, 3, 4, 5];
  const pieces: Shape[] = [[3, 2, 5], [3, 7, 5], [3, 1, 5]];
  const stacked: Shape[] = [[4, 9], [4, 9], [4, 9]];
  const picks = Uint32Array.of(2, 0, 2, 4, 1, 2);
  const ids = Uint32Array.of(5, 0, 5, 12, 3, 3, 7);
  return [
    {
      op: 'broadcastTo', name: 'broadcastTo [3, 1, 5] → [2, 3, 4, 5]', family: 'movement', inputs: [input([3, 1, 5], 200)], shape: r4,
      run: (e, [x]) => e.broadcastTo(x!, r4), reference: ([x]) => broadcastRef(x!, [3, 1, 5], r4),
    },
    {
      op: 'sumToShape', name: 'sumToShape [2, 3, 4, 5] → [3, 1, 5]', family: 'movement', inputs: [input(r4, 201)], shape: [3, 1, 5],
      run: (e, [x]) => e.sumToShape(x!, [3, 1, 5]), reference: ([x]) => sumToShapeRef(x!, r4, [3, 1, 5]),
    },
    {
      op: 'reshape', name: 'reshape [2, 3, 4, 5] → [6, -1]', family: 'movement', inputs: [input(r4, 202)], shape: [6, 20],
      run: (_, [x]) => x!.reshape([6, -1]), reference: ([x]) => Float64Array.from(x!),
    },
    {
      op: 'permute', name: 'permute [2, 3, 4, 5] by [3, 0, 2, 1]', family: 'movement', inputs: [input(r4, 203)], shape: [5, 2, 4, 3],
      run: (e, [x]) => e.permute(x!, [3, 0, 2, 1]), reference: ([x]) => permuteRef(x!, r4, [3, 0, 2, 1]), hostSubset: true,
    },
    {
      op: 'transpose', name: 'transpose [3, 33, 17] last two dims', family: 'movement', inputs: [input([3, 33, 17], 204)], shape: [3, 17, 33],
      run: (e, [x]) => e.transpose(x!, -1, -2), reference: ([x]) => permuteRef(x!, [3, 33, 17], swap(3, 1, 2)),
    },
    {
      op: 'transpose', name: 'transpose [2, 3, 4, 5] dims 0 and 2', family: 'movement', inputs: [input(r4, 205)], shape: [4, 3, 2, 5],
      run: (e, [x]) => e.transpose(x!, 0, 2), reference: ([x]) => permuteRef(x!, r4, swap(4, 0, 2)),
    },
    {
      op: 'expand', name: 'expand [3, 1] → [2, -1, 5]', family: 'movement', inputs: [input([3, 1], 206)], shape: [2, 3, 5],
      run: (e, [x]) => e.expand(x!, [2, -1, 5]), reference: ([x]) => broadcastRef(x!, [3, 1], [2, 3, 5]),
    },
    {
      op: 'narrow', name: 'narrow [2, 3, 4, 5] dim 3 from 1, 3 long', family: 'movement', inputs: [input(r4, 207)], shape: [2, 3, 4, 3],
      run: (e, [x]) => e.narrow(x!, 3, 1, 3), reference: ([x]) => sliceRef(x!, r4, [0, 0, 0, 1], [2, 3, 4, 3]),
    },
    {
      op: 'pad', name: 'pad [3, 4, 5] by [1, 2, -1, 0, 0, 1] with 0.5', family: 'movement', inputs: [input([3, 4, 5], 208)], shape: [4, 3, 8],
      run: (e, [x]) => e.pad(x!, [1, 2, -1, 0, 0, 1], 0.5), reference: ([x]) => padRef(x!, [3, 4, 5], [1, 2, -1, 0, 0, 1], 0.5),
    },
    {
      op: 'cat', name: 'cat of [3, 2, 5], [3, 7, 5], [3, 1, 5] along 1', family: 'movement', inputs: pieces.map((s, i) => input(s, 209 + i)), shape: [3, 10, 5],
      run: (e, xs) => e.cat(xs, 1), reference: (xs) => catRef(xs, pieces, 1),
    },
    {
      op: 'stack', name: 'stack of three [4, 9] along -1', family: 'movement', inputs: stacked.map((s, i) => input(s, 212 + i)), shape: [4, 9, 3],
      run: (e, xs) => e.stack(xs, -1), reference: (xs) => catRef(xs, stacked.map(() => [4, 9, 1]), 2),
    },
    {
      op: 'indexSelect', name: 'indexSelect [3, 5, 7] dim 1, repeated indices', family: 'movement', inputs: [input([3, 5, 7], 215)], shape: [3, 6, 7],
      run: (e, [x]) => e.indexSelect(x!, 1, picks), reference: ([x]) => indexSelectRef(x!, [3, 5, 7], 1, picks),
    },
    {
      op: 'gatherRows', name: 'gatherRows of [13, 33], repeated ids', family: 'movement', inputs: [input([13, 33], 216)], shape: [7, 33],
      run: (e, [x]) => e.gatherRows(x!, ids), reference: ([x]) => indexSelectRef(x!, [13, 33], 0, ids),
    },
  ];
}

function matmulCases(): OpCase[] {
  const ref = (as: Shape, bs: Shape) => ([a, b]: Float64Array[]) => matmulRef(a!, as, b!, bs).out;
  return [
    {
      op: 'matmul', name: 'matmul [2, 3, 5, 7] × [3, 7, 4] (batch broadcast)', family: 'matmul', inputs: [input([2, 3, 5, 7], 300), input([3, 7, 4], 301)], shape: [2, 3, 5, 4],
      run: (e, [a, b]) => e.matmul(a!, b!), reference: ref([2, 3, 5, 7], [3, 7, 4]), hostSubset: true,
    },
    {
      op: 'matmul', name: 'matmul [7] × [3, 7, 5] (rank 1 on the left)', family: 'matmul', inputs: [input([7], 302), input([3, 7, 5], 303)], shape: [3, 5],
      run: (e, [a, b]) => e.matmul(a!, b!), reference: ref([7], [3, 7, 5]),
    },
    {
      op: 'matmul', name: 'matmul [33, 65] × [65] (rank 1 on the right)', family: 'matmul', inputs: [input([33, 65], 304), input([65], 305)], shape: [33],
      run: (e, [a, b]) => e.matmul(a!, b!), reference: ref([33, 65], [65]),
    },
    {
      op: 'matmul', name: 'matmul [17, 13]ᵀ × [19, 17]ᵀ + bias [19]', family: 'matmul', inputs: [input([17, 13], 306), input([19, 17], 307), input([19], 308)], shape: [13, 19],
      run: (e, [a, b, bias]) => e.matmul(a!, b!, { transA: true, transB: true, bias: bias! }),
      reference: ([a, b, bias]) => {
        const { out } = matmulRef(permuteRef(a!, [17, 13], [1, 0]), [13, 17], permuteRef(b!, [19, 17], [1, 0]), [17, 19]);
        return broadcastMap([{ data: out, shape: [13, 19] }, { data: bias!, shape: [19] }], (p, q) => p + q);
      },
    },
  ];
}

/** float64 softmax(q·kᵀ·scale + bias)·v with batch dims broadcast; a bias of -Infinity masks a key out. */
function sdpaRef(q: Float64Array, qs: Shape, k: Float64Array, ks: Shape, v: Float64Array, vs: Shape, bias?: { data: ArrayLike<number>; shape: Shape }): Float64Array {
  const kt = permuteRef(k, ks, swap(ks.length, ks.length - 1, ks.length - 2));
  const scores = matmulRef(q, qs, kt, [...ks.slice(0, -2), ks.at(-1)!, ks.at(-2)!]);
  const factor = 1 / Math.sqrt(qs.at(-1)!);
  const logits = broadcastMap([{ data: scores.out, shape: scores.shape }, bias ?? { data: [0], shape: [1] }], (s, b) => s * factor + b);
  return matmulRef(softmaxRows(logits, ks.at(-2)!), scores.shape, v, vs).out;
}

/** GPT-2's fused causal attention over qkv [B, T, 3C] (and a past of keys/values per example), heads merged back. */
function gpt2AttentionRef(qkv: Float64Array, B: number, T: number, C: number, nHead: number, newLengths: readonly number[], past?: { qkv: Float64Array; Tp: number; lengths: readonly number[] }): Float64Array {
  const D = C / nHead;
  const out = new Float64Array(B * T * C);
  const at = (src: Float64Array, rows: number, b: number, t: number, part: number, h: number, d: number) => src[(b * rows + t) * 3 * C + part * C + h * D + d]!;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHead; h++) {
      for (let t = 0; t < T; t++) {
        const keys: { k: (d: number) => number; v: (d: number) => number }[] = [];
        for (let j = 0; j < (past?.lengths[b] ?? 0); j++) keys.push({ k: (d) => at(past!.qkv, past!.Tp, b, j, 1, h, d), v: (d) => at(past!.qkv, past!.Tp, b, j, 2, h, d) });
        for (let s = 0; s <= t && s < newLengths[b]!; s++) keys.push({ k: (d) => at(qkv, T, b, s, 1, h, d), v: (d) => at(qkv, T, b, s, 2, h, d) });
        if (keys.length === 0) continue;
        const scores = keys.map((key) => sumOf(Array.from({ length: D }, (_, d) => at(qkv, T, b, t, 0, h, d) * key.k(d))) / Math.sqrt(D));
        const weights = softmaxRows(scores, scores.length);
        for (let d = 0; d < D; d++) out[(b * T + t) * C + h * D + d] = sumOf(keys.map((key, j) => weights[j]! * key.v(d)));
      }
    }
  }
  return out;
}

function routineCases(): OpCase[] {
  const r3: Shape = [3, 5, 37];
  const causalBias = (T: number, S: number) => Float64Array.from({ length: T * S }, (_, i) => (i % S <= Math.floor(i / S) ? 0 : -Infinity));
  // A boolean mask [2, 1, 5, 6] with every query row keeping at least its first key.
  const boolMask = Uint32Array.from({ length: 60 }, (_, i) => (i % 6 === 0 || seededRandom(400 + i)() > 0.4 ? 1 : 0));
  const [B, T, C, nHead, Tp] = [2, 5, 16, 2, 4];
  const pastQkv = normals(B * Tp * 3 * C, 410);
  const pastLengths = Uint32Array.of(4, 2);
  return [
    {
      op: 'softmax', name: 'softmax [3, 5, 37] over -1', family: 'routine', inputs: [input(r3, 400, { scale: 3 })], shape: r3,
      run: (e, [x]) => e.softmax(x!), reference: ([x]) => softmaxRows(x!, 37),
    },
    {
      op: 'softmax', name: 'softmax [2, 7, 3] over 1', family: 'routine', inputs: [input([2, 7, 3], 401, { scale: 3 })], shape: [2, 7, 3],
      run: (e, [x]) => e.softmax(x!, 1),
      reference: ([x]) => permuteRef(softmaxRows(permuteRef(x!, [2, 7, 3], [0, 2, 1]), 7), [2, 3, 7], [0, 2, 1]),
    },
    {
      op: 'logSoftmax', name: 'logSoftmax [4, 1, 65] over -1', family: 'routine', inputs: [input([4, 1, 65], 402, { scale: 3 })], shape: [4, 1, 65],
      run: (e, [x]) => e.logSoftmax(x!), reference: ([x]) => softmaxRows(x!, 65).map(Math.log),
    },
    {
      op: 'layerNorm', name: 'layerNorm [3, 5, 37]', family: 'routine', inputs: [input(r3, 403, { scale: 2 }), input([37], 404), input([37], 405)], shape: r3,
      run: (e, [x, g, b]) => e.layerNorm(x!, g!, b!),
      reference: ([x, g, b]) => Float64Array.from(x!, (v, i) => {
        const row = [...x!.subarray(i - (i % 37), i - (i % 37) + 37)];
        const mu = sumOf(row) / 37;
        const variance = sumOf(row.map((r) => (r - mu) ** 2)) / 37;
        return ((v - mu) / Math.sqrt(variance + 1e-5)) * g![i % 37]! + b![i % 37]!;
      }),
      hostSubset: true,
    },
    {
      op: 'rmsNorm', name: 'rmsNorm [7, 33]', family: 'routine', inputs: [input([7, 33], 406, { scale: 2 }), input([33], 407)], shape: [7, 33],
      run: (e, [x, w]) => e.rmsNorm(x!, w!, 1e-6),
      reference: ([x, w]) => Float64Array.from(x!, (v, i) => {
        const row = [...x!.subarray(i - (i % 33), i - (i % 33) + 33)];
        return (v / Math.sqrt(sumOf(row.map((r) => r * r)) / 33 + 1e-6)) * w![i % 33]!;
      }),
    },
    {
      op: 'scaledDotProductAttention', name: 'scaledDotProductAttention causal, q [2, 3, 5, 8], k/v [3, 7, 8] (T ≠ S, batch broadcast)', family: 'routine',
      inputs: [input([2, 3, 5, 8], 408), input([3, 7, 8], 409), input([3, 7, 8], 410)], shape: [2, 3, 5, 8],
      run: (e, [q, k, v]) => e.scaledDotProductAttention(q!, k!, v!, { causal: true }),
      reference: ([q, k, v]) => sdpaRef(q!, [2, 3, 5, 8], k!, [3, 7, 8], v!, [3, 7, 8], { data: causalBias(5, 7), shape: [5, 7] }),
      hostSubset: true,
    },
    {
      op: 'scaledDotProductAttention', name: 'scaledDotProductAttention with a boolean mask [2, 1, 5, 6], Dv 3', family: 'routine',
      inputs: [input([2, 4, 5, 8], 411), input([2, 4, 6, 8], 412), input([2, 4, 6, 3], 413)], shape: [2, 4, 5, 3],
      run: (e, [q, k, v], gpu) => e.scaledDotProductAttention(q!, k!, v!, { mask: e.tensor(gpu, boolMask, [2, 1, 5, 6], { dtype: 'u32' }) }),
      reference: ([q, k, v]) => sdpaRef(q!, [2, 4, 5, 8], k!, [2, 4, 6, 8], v!, [2, 4, 6, 3], { data: Float64Array.from(boolMask, (m) => (m ? 0 : -Infinity)), shape: [2, 1, 5, 6] }),
    },
    {
      op: 'scaledDotProductAttention', name: 'scaledDotProductAttention with an additive mask [5, 6] (its gradient too)', family: 'routine',
      inputs: [input([3, 5, 4], 414), input([3, 6, 4], 415), input([3, 6, 4], 416), input([5, 6], 417)], shape: [3, 5, 4],
      run: (e, [q, k, v, mask]) => e.scaledDotProductAttention(q!, k!, v!, { mask: mask! }),
      reference: ([q, k, v, mask]) => sdpaRef(q!, [3, 5, 4], k!, [3, 6, 4], v!, [3, 6, 4], { data: mask!, shape: [5, 6] }),
    },
    {
      op: 'attention', name: 'attention qkv [2, 5, 48], 2 heads, new lengths [5, 3]', family: 'routine', inputs: [input([B, T, 3 * C], 418)], shape: [B, T, C],
      run: (e, [qkv]) => e.attention(qkv!, nHead, { newLengths: Uint32Array.of(5, 3) }),
      reference: ([qkv]) => gpt2AttentionRef(qkv!, B, T, C, nHead, [5, 3]),
    },
    {
      op: 'attention', name: 'attention qkv [2, 5, 48] over a past of lengths [4, 2]', family: 'routine', inputs: [input([B, T, 3 * C], 419)], shape: [B, T, C],
      run: (e, [qkv], gpu) => e.attention(qkv!, nHead, { past: e.splitPast(e.tensor(gpu, pastQkv, [B, Tp, 3 * C]), nHead, pastLengths) }),
      reference: ([qkv]) => gpt2AttentionRef(qkv!, B, T, C, nHead, [T, T], { qkv: pastQkv, Tp, lengths: [...pastLengths] }),
    },
  ];
}

function lossCases(): OpCase[] {
  const [N, K] = [6, 11];
  const targets = Uint32Array.of(3, 0, 10, 3, 7, 1);
  const weights = f32(normals(K, 500).map(positive));
  const nll = (x: Float64Array, i: number) => logSumExpOf([...x.subarray(i * K, (i + 1) * K)]) - x[i * K + targets[i]!]!;
  const [R, L] = [5, 7];
  const labels = Float32Array.from({ length: R * L }, (_, i) => (seededRandom(510 + i)() > 0.6 ? 1 : 0));
  const posWeight = Float32Array.from(normals(L, 501).map(positive));
  const mask = Float32Array.from({ length: R * L }, (_, i) => (i % 4 === 3 ? 0 : 1));
  const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
  return [
    {
      op: 'crossEntropy', name: 'crossEntropy [6, 11], host targets', family: 'loss', inputs: [input([N, K], 502, { scale: 2 })], shape: [1],
      run: (e, [x]) => e.crossEntropy(x!, targets), reference: ([x]) => Float64Array.of(sumOf([...targets].map((_, i) => nll(x!, i))) / N), hostSubset: true,
    },
    {
      op: 'crossEntropy', name: 'crossEntropy [6, 11] with class weights', family: 'loss', inputs: [input([N, K], 503, { scale: 2 })], shape: [1],
      run: (e, [x]) => e.crossEntropy(x!, targets, { weights: Float32Array.from(weights) }),
      reference: ([x]) => Float64Array.of(sumOf([...targets].map((y, i) => weights[y]! * nll(x!, i))) / sumOf([...targets].map((y) => weights[y]!))),
    },
    {
      op: 'bceWithLogits', name: 'bceWithLogits [5, 7] with pos_weight and a mask', family: 'loss', inputs: [input([R, L], 504, { scale: 2 })], shape: [1],
      run: (e, [x]) => e.bceWithLogits(x!, labels, { posWeight, mask }),
      reference: ([x]) => {
        const terms = [...x!].map((v, i) => mask[i]! * (posWeight[i % L]! * labels[i]! * softplus(-v) + (1 - labels[i]!) * softplus(v)));
        return Float64Array.of(sumOf(terms) / sumOf([...mask]));
      },
    },
    {
      op: 'mseLoss', name: 'mseLoss [3, 5, 7]', family: 'loss', inputs: [input([3, 5, 7], 505), input([3, 5, 7], 506)], shape: [],
      run: (e, [a, b]) => e.mseLoss(a!, b!), reference: ([a, b]) => Float64Array.of(sumOf([...a!].map((v, i) => (v - b![i]!) ** 2)) / a!.length),
    },
  ];
}

/** Every case of the suite. */
export function suiteCases(): OpCase[] {
  return [
    ...creationCases(), ...elementwiseCases(), ...reductionCases(), ...movementCases(), ...matmulCases(), ...routineCases(), ...lossCases(),
    // From PyTorch fixtures (torch.ts).
    ...linearCases(),
    ...erfCases(),
    ...convCases(),
    ...nnOpCases(),
    ...dropoutCases(),
  ];
}

/** The cases the Deno and Chromium host tests run: a few of each op family. */
export function hostSubset(): OpCase[] {
  return suiteCases().filter((c) => c.hostSubset);
}
