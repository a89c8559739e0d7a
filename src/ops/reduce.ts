// Reductions over one or more dims (torch's sum, mean, amax, amin, logsumexp, argmax), with
// keepdim, negative dims, and all dims when `dim` is omitted (giving shape [], as torch).
// Kernels in kernels/reduce.wgsl; gradients composed from elementwise ops.
import { grid } from '../gpu/params.ts';
import { Tensor, numel, record, shapeString, type Shape } from '../tensor/tensor.ts';
import { broadcastTo, div, eq, exp, mul, scale, sub } from './elementwise.ts';

/** One dim, several, or (undefined) all. Negative dims count from the end. */
export type Dims = number | readonly number[] | undefined;

const enum ReduceOp {
  Sum = 0,
  Max = 1,
  Min = 2,
  LogSumExp = 3,
  ArgMax = 4,
}

/** Frozen per op: the engine then finds each pipeline by identity. */
const CONSTANTS = [0, 1, 2, 3, 4].map((op) => Object.freeze({ RED_OP: op, RED_WG: 64 }));
const COLS = 32;

const words = new Uint32Array(8);
const values = new Float32Array(words.buffer);

/** The dims to reduce, non-negative, ascending and distinct, or a clear error. */
export function normalizeDims(op: string, shape: Shape, dim: Dims): number[] {
  if (dim === undefined) return shape.map((_, i) => i);
  const rank = shape.length;
  const dims = (typeof dim === 'number' ? [dim] : [...dim]).map((d) => {
    if (!Number.isInteger(d) || d < -rank || d >= Math.max(rank, 1)) {
      throw new RangeError(`${op}: dim ${d} is out of range for shape ${shapeString(shape)} (rank ${rank})`);
    }
    return d < 0 ? d + rank : d;
  });
  const sorted = [...new Set(dims)].sort((a, b) => a - b);
  if (sorted.length !== dims.length) throw new RangeError(`${op}: dim ${JSON.stringify(dim)} repeats a dim`);
  return sorted.filter((d) => d < rank);
}

/** `shape` with the reduced dims set to 1 (keepdim) or removed. */
function reducedShape(shape: Shape, dims: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** One launch: x viewed as [outer, r, inner] reduced over r. */
function launch(x: Tensor, op: ReduceOp, outer: number, r: number, inner: number, post: number, outShape: Shape): Tensor {
  const gpu = x.gpu;
  const out = Tensor.empty(gpu, outShape, op === ReduceOp.ArgMax ? 'u32' : 'f32', 'reduce');
  words[0] = outer;
  words[1] = r;
  words[2] = inner;
  values[3] = -Infinity;
  values[4] = post;
  const rows = inner === 1;
  gpu.dispatch({
    kernel: 'reduce',
    entry: rows ? 'reduce_rows' : 'reduce_cols',
    constants: CONSTANTS[op],
    params: words,
    bindings: [x.binding(), out.binding()],
    workgroups: grid(rows ? outer : outer * Math.ceil(inner / COLS), 1),
  });
  return out;
}

/**
 * x reduced over `dims` (ascending), in keepdim shape, with no autodiff: one launch per run of
 * adjacent reduced dims (size-1 dims join any run), last run first.
 */
function reduceRaw(x: Tensor, dims: readonly number[], op: ReduceOp, mean: boolean): Tensor {
  const shape = [...x.shape];
  let current = x;
  let hi = shape.length - 1;
  for (;;) {
    while (hi >= 0 && !dims.includes(hi)) hi--;
    if (hi < 0) break;
    let lo = hi;
    while (lo > 0 && (dims.includes(lo - 1) || shape[lo - 1] === 1)) lo--;
    const outer = numel(shape.slice(0, lo));
    const r = numel(shape.slice(lo, hi + 1));
    const inner = numel(shape.slice(hi + 1));
    for (let d = lo; d <= hi; d++) shape[d] = 1;
    const next = launch(current, op, outer, r, inner, mean ? 1 / r : 1, [...shape]);
    if (current !== x) current.dispose();
    current = next;
    hi = lo - 1;
  }
  if (current === x) {
    // Nothing but size-1 dims to reduce: still one launch, so the result is a new tensor (argmax: indices 0).
    return launch(x, op, x.size, 1, 1, 1, reducedShape(x.shape, dims, true));
  }
  return current.reshape(reducedShape(x.shape, dims, true));
}

type ReductionGrad = (g: Tensor, x: Tensor, y: Tensor, dims: readonly number[], count: number) => Tensor;

/** g and y are in keepdim shape. */
const GRADS: Record<'sum' | 'mean' | 'max' | 'min' | 'logsumexp', ReductionGrad> = {
  sum: (g, x) => broadcastTo(g, x.shape),
  mean: (g, x, _y, _dims, count) => scale(broadcastTo(g, x.shape), 1 / count),
  // torch.amax: ties share the gradient equally.
  max: (g, x, y, dims) => tiesGrad(g, x, y, dims),
  min: (g, x, y, dims) => tiesGrad(g, x, y, dims),
  logsumexp: (g, x, y) => mul(exp(sub(x, y)), g),
};

function tiesGrad(g: Tensor, x: Tensor, y: Tensor, dims: readonly number[]): Tensor {
  const mask = eq(x, y);
  const ties = reduceRaw(mask, dims, ReduceOp.Sum, false);
  return mul(mask, div(g, ties));
}

const OPS = { sum: ReduceOp.Sum, mean: ReduceOp.Sum, max: ReduceOp.Max, min: ReduceOp.Min, logsumexp: ReduceOp.LogSumExp } as const;

function reduction(name: keyof typeof OPS, x: Tensor, dim: Dims, keepdim: boolean): Tensor {
  if (x.dtype !== 'f32') throw new TypeError(`${name}: x must be an f32 tensor, got ${x.dtype} ${shapeString(x.shape)}`);
  const dims = normalizeDims(name, x.shape, dim);
  const count = dims.reduce((n, d) => n * x.shape[d]!, 1);
  if (count === 0 && name !== 'sum') throw new RangeError(`${name}: cannot reduce an empty dim of shape ${shapeString(x.shape)}`);
  const kept = reduceRaw(x, dims, OPS[name], name === 'mean');
  const out = keepdim ? kept : kept.reshape(reducedShape(x.shape, dims, false));
  const grad = GRADS[name];
  return record(out, [x], (g) => [grad(g.reshape(kept.shape), x, kept, dims, count)]);
}

/** Σ over dims (all when omitted). */
export function sum(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return reduction('sum', x, dim, keepdim);
}

export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return reduction('mean', x, dim, keepdim);
}

/** The largest values (torch.amax): the gradient is shared equally among tied maxima. */
export function max(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return reduction('max', x, dim, keepdim);
}

/** The smallest values (torch.amin): the gradient is shared equally among tied minima. */
export function min(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return reduction('min', x, dim, keepdim);
}

/** log Σ exp over dims, computed stably (the max is taken out first). */
export function logsumexp(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return reduction('logsumexp', x, dim, keepdim);
}

/**
 * The index (u32) of the largest value along `dim`, the first on ties; without `dim`, the index
 * into the flattened tensor (shape []). No gradient.
 */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  if (x.dtype !== 'f32') throw new TypeError(`argmax: x must be an f32 tensor, got ${x.dtype} ${shapeString(x.shape)}`);
  if (x.size === 0) throw new RangeError(`argmax: cannot reduce an empty tensor of shape ${shapeString(x.shape)}`);
  if (dim === undefined) {
    const flat = launch(x, ReduceOp.ArgMax, 1, x.size, 1, 1, [1]);
    return flat.reshape(keepdim ? x.shape.map(() => 1) : []);
  }
  const [d] = normalizeDims('argmax', x.shape, dim);
  if (d === undefined) throw new RangeError(`argmax: dim ${dim} is out of range for shape ${shapeString(x.shape)}`);
  const shape = x.shape;
  const out = launch(x, ReduceOp.ArgMax, numel(shape.slice(0, d)), shape[d]!, numel(shape.slice(d + 1)), 1, reducedShape(shape, [d], true));
  return keepdim ? out : out.reshape(reducedShape(shape, [d], false));
}
