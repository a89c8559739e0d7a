// float64 references for the op suite, in plain JS and independent of the engine (no engine
// function computes an expected value): shapes, NumPy broadcasting, reductions, permutes and
// batched matmul over flat row-major Float64Arrays.
import { randn, asF32 } from '../../numeric.ts';

export type Shape = readonly number[];

export const numel = (shape: Shape): number => shape.reduce((a, b) => a * b, 1);

/** n standard normals (Box–Muller) times `scale`, rounded to f32 as the GPU will hold them. */
export function normals(n: number, seed: number, scale = 1): Float64Array {
  return asF32(randn(n, seed, scale));
}

export function coordsOf(flat: number, shape: Shape): number[] {
  const coords = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    coords[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return coords;
}

/** The flat index in `shape` (right-aligned, size-1 dims broadcast) of coords of a larger shape. */
export function broadcastIndex(coords: readonly number[], shape: Shape): number {
  const lead = coords.length - shape.length;
  let at = 0;
  for (let d = 0; d < shape.length; d++) at = at * shape[d]! + (shape[d] === 1 ? 0 : coords[lead + d]!);
  return at;
}

export function broadcastShapes(...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, i) => Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)));
}

/** f applied elementwise over operands broadcast together. */
export function broadcastMap(operands: { data: ArrayLike<number>; shape: Shape }[], f: (...values: number[]) => number): Float64Array {
  const shape = broadcastShapes(...operands.map((o) => o.shape));
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < out.length; i++) {
    const coords = coordsOf(i, shape);
    out[i] = f(...operands.map((o) => o.data[broadcastIndex(coords, o.shape)]!));
  }
  return out;
}

/** x repeated to `shape` (x right-aligned, its size-1 dims broadcast). */
export function broadcastRef(x: ArrayLike<number>, xs: Shape, shape: Shape): Float64Array {
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = x[broadcastIndex(coordsOf(i, shape), xs)]!;
  return out;
}

/** g summed down to `shape`, which it was broadcast from. */
export function sumToShapeRef(g: ArrayLike<number>, gs: Shape, shape: Shape): Float64Array {
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < g.length; i++) out[broadcastIndex(coordsOf(i, gs), shape)]! += g[i]!;
  return out;
}

/**
 * Reduces `dims` of x: each output element gets `finish(values)` of the values it covers, in
 * order. The output keeps the reduced dims as 1 (reshape for keepdim = false).
 */
export function reduceRef(x: ArrayLike<number>, shape: Shape, dims: readonly number[], finish: (values: number[]) => number): Float64Array {
  const kept = shape.map((n, d) => (dims.includes(d) ? 1 : n));
  const groups = Array.from({ length: numel(kept) }, () => [] as number[]);
  for (let i = 0; i < x.length; i++) groups[broadcastIndex(coordsOf(i, shape), kept)]!.push(x[i]!);
  return Float64Array.from(groups, finish);
}

export const sumOf = (v: number[]): number => v.reduce((a, b) => a + b, 0);
export const logSumExpOf = (v: number[]): number => {
  const m = Math.max(...v);
  return m + Math.log(sumOf(v.map((x) => Math.exp(x - m))));
};

/** permute(x, dims): output dim d is input dim dims[d]. */
export function permuteRef(x: ArrayLike<number>, shape: Shape, dims: readonly number[]): Float64Array {
  const outShape = dims.map((d) => shape[d]!);
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    const oc = coordsOf(i, outShape);
    const ic = new Array<number>(shape.length);
    dims.forEach((d, k) => (ic[d] = oc[k]!));
    out[i] = x[broadcastIndex(ic, shape)]!;
  }
  return out;
}

/** The block of x (of `shape`) that starts at `start` and has shape `size`. */
export function sliceRef(x: ArrayLike<number>, shape: Shape, start: readonly number[], size: Shape): Float64Array {
  const out = new Float64Array(numel(size));
  for (let i = 0; i < out.length; i++) {
    const c = coordsOf(i, size).map((v, d) => v + start[d]!);
    out[i] = x[broadcastIndex(c, shape)]!;
  }
  return out;
}

/** torch.matmul in float64: ranks ≥ 1, batch dims broadcast. */
export function matmulRef(a: ArrayLike<number>, as: Shape, b: ArrayLike<number>, bs: Shape): { out: Float64Array; shape: number[] } {
  const a2 = as.length === 1 ? [1, as[0]!] : as;
  const b2 = bs.length === 1 ? [bs[0]!, 1] : bs;
  const [M, K] = a2.slice(-2) as [number, number];
  const N = b2.at(-1)!;
  if (b2.at(-2) !== K) throw new Error(`matmulRef: ${as} × ${bs}`);
  const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2));
  const out = new Float64Array(numel(batch) * M * N);
  for (let bi = 0; bi < numel(batch); bi++) {
    const coords = coordsOf(bi, batch);
    const ao = broadcastIndex(coords, a2.slice(0, -2)) * M * K;
    const bo = broadcastIndex(coords, b2.slice(0, -2)) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ao + m * K + k]! * b[bo + k * N + n]!;
        out[(bi * M + m) * N + n] = s;
      }
    }
  }
  const shape = [...batch, ...(as.length === 1 ? [] : [M]), ...(bs.length === 1 ? [] : [N])];
  return { out, shape };
}

/** softmax along the last dim of rows of length n. */
export function softmaxRows(x: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    const row = Array.from({ length: n }, (_, j) => x[r * n + j]!);
    const lse = logSumExpOf(row);
    row.forEach((v, j) => (out[r * n + j] = Math.exp(v - lse)));
  }
  return out;
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** PCG's RXS-M-XS hash of a 32-bit word, as kernels/dropout.wgsl states it. */
function pcgHash(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Whether dropout with probability p and this seed keeps element i: the hash of (seed, i) reaches round(p·2³²). */
export function dropoutKeeps(i: number, p: number, seed: number): boolean {
  return (pcgHash(pcgHash(i) ^ pcgHash(seed)) >>> 0) >= Math.min(Math.round(p * 2 ** 32), 0xffffffff);
}
