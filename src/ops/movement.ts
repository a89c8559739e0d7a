// Movement ops with PyTorch's names and semantics (negative dims count from the end). Tensors
// are contiguous, so everything but a pure reshape copies through kernels/movement.wgsl.
import { packParams, f32, grid } from '../gpu/params.ts';
import { Tensor, record, tensor, numel, sameShape, shapeString, type Shape } from '../tensor/tensor.ts';
import { sumToShape, MAX_RANK as ELEMENTWISE_MAX_RANK } from './elementwise.ts';

const WG = 256;
/** Dims the strided kernels index after merging neighbouring dims that move together. */
const MAX_RANK = 8;

/** A dim in [-rank, rank) as its index, or a clear error naming the op. */
function normalizeDim(op: string, dim: number, rank: number): number {
  if (!Number.isInteger(dim) || dim < -rank || dim >= rank) throw new RangeError(`${op}: dim ${dim} is out of range for ${rank} dims`);
  return dim < 0 ? dim + rank : dim;
}

function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}

function checkF32(op: string, x: Tensor): void {
  if (x.dtype !== 'f32') throw new TypeError(`${op}: needs an f32 tensor, got ${x.dtype} ${shapeString(x.shape)}`);
}

/** One output dim of a strided read: its size, the input's stride, where the input starts (negative crops) and the input's size. */
interface ReadDim {
  size: number;
  stride: number;
  lo: number;
  inDim: number;
}

/** Neighbouring dims that read consecutive input elements with no window merge into one, so most copies index only a few dims. */
function mergeReadDims(dims: ReadDim[]): ReadDim[] {
  const merged: ReadDim[] = [];
  for (const d of dims) {
    if (d.size === 1 && d.lo === 0 && d.inDim === 1) continue;
    const last = merged.at(-1);
    const plain = (x: ReadDim) => x.lo === 0 && x.inDim === x.size;
    if (last && plain(last) && plain(d) && last.stride === d.stride * d.size) {
      merged[merged.length - 1] = { size: last.size * d.size, stride: d.stride, lo: 0, inDim: last.size * d.size };
    } else merged.push({ ...d });
  }
  return merged.length ? merged : [{ size: 1, stride: 0, lo: 0, inDim: 1 }];
}

/** Right-aligns per-dim values into the kernels' 8-slot arrays. */
function slots(values: number[], pad: number): number[] {
  return [...new Array<number>(MAX_RANK - values.length).fill(pad), ...values];
}

/** out (contiguous, `shape`) from x read through `dims`, with `fill` outside x's window. */
function stridedRead(op: string, x: Tensor, shape: Shape, dims: ReadDim[], base = 0, fill = 0): Tensor {
  const out = Tensor.empty(x.gpu, shape, 'f32', op);
  if (out.size === 0) return out;
  const m = mergeReadDims(dims);
  if (m.length > MAX_RANK) throw new RangeError(`${op}: ${shapeString(x.shape)} → ${shapeString(shape)} needs ${m.length} dims of indexing; at most ${MAX_RANK} are supported`);
  x.gpu.dispatch({
    kernel: 'movement',
    entry: 'strided_read',
    params: packParams(
      out.size,
      base,
      f32(fill),
      m.length,
      ...slots(m.map((d) => d.size), 1),
      ...slots(m.map((d) => d.stride), 0),
      ...slots(m.map((d) => d.lo >>> 0), 0),
      ...slots(m.map((d) => d.inDim), 1),
    ),
    bindings: [x.binding(), out.binding()],
    workgroups: grid(out.size, WG),
  });
  return out;
}

/** x's dims reordered: output dim i is input dim order[i]. */
function permuteRaw(x: Tensor, order: number[]): Tensor {
  const strides = contiguousStrides(x.shape);
  const shape = order.map((d) => x.shape[d]!);
  const rank = order.length;
  const gpu = x.gpu;
  // Swapping the last two dims: a kernel of its own (on llvmpipe 2× the strided read's speed
  // through tiles, and twice that again by gathering).
  const lastTwo = rank >= 2 && order.every((d, i) => (i < rank - 2 ? d === i : d === (i === rank - 2 ? rank - 1 : rank - 2)));
  if (lastTwo && x.size > 0) {
    const rows = x.shape[rank - 2]!;
    const cols = x.shape[rank - 1]!;
    const batch = x.size / Math.max(rows * cols, 1);
    const maxGroups = gpu.device.limits.maxComputeWorkgroupsPerDimension;
    if (rows > 1 && cols > 1 && batch <= maxGroups) {
      const out = Tensor.empty(gpu, shape, 'f32', 'transpose');
      // CPU adapters gather (their barriers cost more than scattered reads); GPUs go through tiles.
      const gather = gpu.kernelClass === 'cpu' && cols <= maxGroups;
      gpu.dispatch({
        kernel: 'movement',
        entry: gather ? 'transpose_gather4' : 'transpose_tiled',
        params: packParams(rows, cols),
        bindings: [x.binding(), out.binding()],
        workgroups: gather ? [Math.ceil(rows / 4 / WG), cols, batch] : [Math.ceil(cols / 16), Math.ceil(rows / 16), batch],
      });
      return out;
    }
  }
  return stridedRead('permute', x, shape, order.map((d) => ({ size: x.shape[d]!, stride: strides[d]!, lo: 0, inDim: x.shape[d]! })));
}

/** torch.permute: output dim i is x's dim dims[i]. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  checkF32('permute', x);
  const rank = x.shape.length;
  if (dims.length !== rank) throw new RangeError(`permute: ${dims.length} dims [${dims.join(', ')}] given for a tensor of ${rank} dims ${shapeString(x.shape)}`);
  const order = dims.map((d) => normalizeDim('permute', d, rank));
  if (new Set(order).size !== rank) throw new RangeError(`permute: dims [${dims.join(', ')}] repeat a dim`);
  if (order.every((d, i) => d === i)) return x.reshape(x.shape);
  const inverse = new Array<number>(rank);
  order.forEach((d, i) => (inverse[d] = i));
  return record(permuteRaw(x, order), [x], (g) => [permuteRaw(g, inverse)]);
}

/** torch.transpose: dims d0 and d1 swapped. */
export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const rank = x.shape.length;
  const a = normalizeDim('transpose', d0, rank);
  const b = normalizeDim('transpose', d1, rank);
  const order = Array.from({ length: rank }, (_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, order);
}

/**
 * Sums g (the gradient of x broadcast to g's shape) back to x's shape. sumToShape merges
 * neighbouring dims that move together itself; only a g of more dims than it takes has its runs
 * of all-broadcast or all-kept dims merged first (expand's forward allows no more runs than that).
 */
function sumToShapeAnyRank(g: Tensor, shape: Shape): Tensor {
  if (g.size === numel(shape)) return g.reshape(shape);
  if (g.shape.length <= ELEMENTWISE_MAX_RANK) return sumToShape(g, shape);
  const lead = g.shape.length - shape.length;
  const gDims: number[] = [];
  const xDims: number[] = [];
  let lastKept: boolean | null = null;
  g.shape.forEach((n, i) => {
    const xd = i < lead ? 1 : shape[i - lead]!;
    const kept = xd === n;
    if (kept === lastKept) {
      gDims[gDims.length - 1]! *= n;
      xDims[xDims.length - 1]! *= xd;
    } else {
      gDims.push(n);
      xDims.push(xd);
    }
    lastKept = kept;
  });
  const view = g.reshape(gDims);
  const sum = sumToShape(view, xDims);
  view.dispose();
  const out = sum.reshape(shape);
  sum.dispose();
  return out;
}

/** torch.Tensor.expand: size-1 dims (and new leading ones) repeated to `shape`; -1 keeps a dim. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  checkF32('expand', x);
  const lead = shape.length - x.shape.length;
  const bad = () => new RangeError(`expand: cannot expand ${shapeString(x.shape)} to ${shapeString(shape)}`);
  if (lead < 0) throw bad();
  const target = shape.map((n, i) => {
    const xd = i < lead ? undefined : x.shape[i - lead]!;
    if (n === -1) {
      if (xd === undefined) throw bad();
      return xd;
    }
    if (!Number.isInteger(n) || n < 0 || (xd !== undefined && xd !== 1 && xd !== n)) throw bad();
    return n;
  });
  if (sameShape(target, x.shape)) return x.reshape(x.shape);
  const strides = contiguousStrides(x.shape);
  const dims = target.map((n, i) => {
    const xd = i < lead ? 1 : x.shape[i - lead]!;
    return { size: n, stride: xd === 1 ? 0 : strides[i - lead]!, lo: 0, inDim: n };
  });
  return record(stridedRead('expand', x, target, dims), [x], (g) => [sumToShapeAnyRank(g, x.shape)]);
}

/**
 * torch.nn.functional.pad (constant mode): pads = [before, after] pairs from the last dim
 * backwards. Negative amounts crop, as in torch.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  checkF32('pad', x);
  const rank = x.shape.length;
  if (pads.length % 2 !== 0 || pads.length / 2 > rank || !pads.every(Number.isInteger)) {
    throw new RangeError(`pad: pads [${pads.join(', ')}] must be integer (before, after) pairs for at most ${rank} dims of ${shapeString(x.shape)}`);
  }
  const lo = new Array<number>(rank).fill(0);
  const hi = new Array<number>(rank).fill(0);
  for (let p = 0; p < pads.length / 2; p++) {
    lo[rank - 1 - p] = pads[2 * p]!;
    hi[rank - 1 - p] = pads[2 * p + 1]!;
  }
  const shape = x.shape.map((n, d) => n + lo[d]! + hi[d]!);
  if (shape.some((n) => n < 0)) throw new RangeError(`pad: pads [${pads.join(', ')}] crop ${shapeString(x.shape)} below zero size`);
  return padRaw(x, lo, shape, value);
}

/** x placed with its first element at output coordinates lo (negative crops), `value` elsewhere. */
function padRaw(x: Tensor, lo: number[], shape: number[], value: number): Tensor {
  if (lo.every((l) => l === 0) && sameShape(shape, x.shape)) return x.reshape(x.shape);
  const strides = contiguousStrides(x.shape);
  const dims = shape.map((n, d) => ({ size: n, stride: strides[d]!, lo: lo[d]!, inDim: x.shape[d]! }));
  const out = stridedRead('pad', x, shape, dims, 0, value);
  return record(out, [x], (g) => [
    padRaw(
      g,
      lo.map((l) => -l),
      [...x.shape],
      0,
    ),
  ]);
}

/** torch.narrow: `length` elements of dim from `start` (negative start counts from the end). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  checkF32('narrow', x);
  const d = normalizeDim('narrow', dim, x.shape.length);
  const n = x.shape[d]!;
  const from = start < 0 ? start + n : start;
  if (!Number.isInteger(start) || !Number.isInteger(length) || from < 0 || length < 0 || from + length > n) {
    throw new RangeError(`narrow: start ${start}, length ${length} do not fit dim ${dim} of ${shapeString(x.shape)}`);
  }
  const lo = x.shape.map((_, i) => (i === d ? -from : 0));
  const shape = x.shape.map((s, i) => (i === d ? length : s));
  return padRaw(x, lo, shape, 0);
}

/** Pieces of `lengths[i]` entries along dim d, written one after another into a new tensor of `shape`. */
function joinPieces(op: string, xs: readonly Tensor[], lengths: number[], d: number, shape: number[]): Tensor {
  const out = Tensor.empty(xs[0]!.gpu, shape, 'f32', op);
  // Each piece is [outer, length·inner] inside out's [outer, total·inner]: a 2-D window.
  const outer = numel(shape.slice(0, d));
  const inner = numel(shape.slice(d + 1));
  const row = shape[d]! * inner;
  let offset = 0;
  xs.forEach((x, i) => {
    const cols = lengths[i]! * inner;
    if (x.size > 0 && cols % 4 === 0 && row % 4 === 0 && (offset * inner) % 4 === 0) {
      x.gpu.dispatch({
        kernel: 'movement',
        entry: 'copy_rows4',
        params: packParams(x.size / 4, cols / 4, row / 4, (offset * inner) / 4),
        bindings: [x.binding(), out.binding()],
        workgroups: grid(x.size / 4, WG),
      });
    } else if (x.size > 0) {
      x.gpu.dispatch({
        kernel: 'movement',
        entry: 'strided_write',
        params: packParams(x.size, offset * inner, 2, 0, ...slots([outer, cols], 1), ...slots([row, 1], 0)),
        bindings: [x.binding(), out.binding()],
        workgroups: grid(x.size, WG),
      });
    }
    offset += lengths[i]!;
  });
  return out;
}

/** Where each piece starts along the joined dim. */
function starts(lengths: number[]): number[] {
  let s = 0;
  return lengths.map((n) => (s += n) - n);
}

/** torch.cat: xs joined along dim; all other dims must agree. */
export function cat(xs: readonly Tensor[], dim: number): Tensor {
  if (xs.length === 0) throw new RangeError('cat: needs at least one tensor');
  const first = xs[0]!;
  const rank = first.shape.length;
  const d = normalizeDim('cat', dim, rank);
  for (const x of xs) {
    checkF32('cat', x);
    if (x.shape.length !== rank || x.shape.some((n, i) => i !== d && n !== first.shape[i])) {
      throw new RangeError(`cat: shapes ${xs.map((t) => shapeString(t.shape)).join(', ')} differ outside dim ${dim}`);
    }
  }
  if (xs.length === 1) return first.reshape(first.shape);
  const lengths = xs.map((x) => x.shape[d]!);
  const shape = first.shape.map((n, i) => (i === d ? lengths.reduce((s, l) => s + l, 0) : n));
  const from = starts(lengths);
  return record(joinPieces('cat', xs, lengths, d, shape), xs, (g, needs) => lengths.map((length, i) => (needs[i] ? narrow(g, d, from[i]!, length) : null)));
}

/** torch.stack: xs (all the same shape) joined along a new dim. */
export function stack(xs: readonly Tensor[], dim: number): Tensor {
  if (xs.length === 0) throw new RangeError('stack: needs at least one tensor');
  const first = xs[0]!;
  for (const x of xs) {
    checkF32('stack', x);
    if (!sameShape(x.shape, first.shape)) throw new RangeError(`stack: shapes ${xs.map((t) => shapeString(t.shape)).join(', ')} differ`);
  }
  const d = normalizeDim('stack', dim, first.shape.length + 1);
  const shape = [...first.shape.slice(0, d), xs.length, ...first.shape.slice(d)];
  const out = joinPieces('stack', xs, xs.map(() => 1), d, shape);
  return record(out, xs, (g, needs) =>
    xs.map((x, i) => {
      if (!needs[i]) return null;
      const slice = narrow(g, d, i, 1);
      const gx = slice.reshape(x.shape);
      slice.dispose();
      return gx;
    }),
  );
}

/**
 * torch.index_select: the entries `indices` of dim, in that order (repeats allowed). indices:
 * a u32 tensor (an index past the dim reads NaN: it cannot be checked without waiting on the
 * GPU) or host ids (checked). The gradient sums every pick of a row, deterministically.
 */
export function indexSelect(x: Tensor, dim: number, indices: Tensor | Uint32Array): Tensor {
  return selectIndices('indexSelect', x, dim, indices);
}

/** indexSelect as `op` (embedding), which its errors name. */
function selectIndices(op: string, x: Tensor, dim: number, indices: Tensor | Uint32Array): Tensor {
  checkF32(op, x);
  const d = normalizeDim(op, dim, x.shape.length);
  const n = x.shape[d]!;
  // The caller may reuse its id array; backward needs the ids of this call.
  const host = indices instanceof Uint32Array ? indices.slice() : null;
  if (host) {
    const bad = host.findIndex((i) => i >= n);
    if (bad >= 0) throw new RangeError(`${op}: index ${host[bad]} (position ${bad}) is out of range for dim ${dim} of size ${n} in ${shapeString(x.shape)}`);
  } else {
    const t = indices as Tensor;
    if (t.dtype !== 'u32' || t.shape.length !== 1) throw new TypeError(`${op}: indices must be a 1-D u32 tensor, got ${t.dtype} ${shapeString(t.shape)}`);
  }
  const m = host ? host.length : (indices as Tensor).size;
  const inner = numel(x.shape.slice(d + 1));
  const shape = x.shape.map((s, i) => (i === d ? m : s));
  const out = Tensor.empty(x.gpu, shape, 'f32', op);
  if (out.size > 0) {
    const ids = host ? tensor(x.gpu, host, [m], { dtype: 'u32', label: 'indexSelect ids' }) : (indices as Tensor);
    x.gpu.dispatch({
      kernel: 'movement',
      entry: 'index_select',
      params: packParams(out.size, n, m, inner, f32(NaN)),
      bindings: [x.binding(), ids.binding(), out.binding()],
      workgroups: grid(out.size, WG),
    });
    // Safe before the dispatch runs: any later use of the buffer is encoded after it (pool.ts).
    if (host) ids.dispose();
  }
  return record(out, [x], (g) => {
    const dx = Tensor.empty(g.gpu, x.shape, 'f32', 'indexSelect dx');
    if (dx.size === 0) return [dx];
    if (m === 0) {
      dx.write(new Float32Array(dx.size));
      return [dx];
    }
    const index = host ? tensor(g.gpu, invertIds(host, n), [n + 1 + m], { dtype: 'u32', label: 'indexSelect inverse' }) : (indices as Tensor);
    g.gpu.dispatch({
      kernel: 'movement',
      entry: host ? 'index_add_csr' : 'index_add_scan',
      params: packParams(dx.size, n, m, inner),
      bindings: [g.binding(), index.binding(), dx.binding()],
      workgroups: grid(dx.size, WG),
    });
    if (host) index.dispose();
    return [dx];
  });
}

/**
 * torch.nn.functional.embedding: rows of weight [V, C] for ids of any shape, as
 * [...ids.shape, C] (a Uint32Array is 1-D). indexSelect along dim 0, so repeated ids add up in
 * weight's gradient; host ids are range-checked, ids in a u32 tensor are not (a row past V reads NaN).
 */
export function embedding(ids: Tensor | Uint32Array, weight: Tensor): Tensor {
  if (weight.shape.length !== 2) throw new RangeError(`embedding: weight must be [V, C], got ${shapeString(weight.shape)}`);
  const idsShape = ids instanceof Uint32Array ? [ids.length] : ids.shape;
  if (!(ids instanceof Uint32Array) && ids.dtype !== 'u32') throw new TypeError(`embedding: ids must be a u32 tensor or a Uint32Array, got ${ids.dtype} ${shapeString(ids.shape)}`);
  // Views, not disposed here: the flat ids serve backward, and the rows are the output's input in the graph.
  const flat = ids instanceof Uint32Array || ids.shape.length === 1 ? ids : ids.view([ids.size]);
  return selectIndices('embedding', weight, 0, flat).view([...idsShape, weight.shape[1]!]);
}

/** torch.reshape: the same data with another shape (no copy; -1 infers one dim). The Tensor method reshape() is this. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  return x.reshape(shape);
}

/** torch.flatten: dims startDim..endDim merged into one (no copy); a 0-d tensor becomes [1]. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const rank = x.shape.length;
  if (rank === 0) return x.view([1]);
  const from = normalizeDim('flatten', startDim, rank);
  const to = normalizeDim('flatten', endDim, rank);
  if (from > to) throw new RangeError(`flatten: startDim ${startDim} comes after endDim ${endDim} in ${shapeString(x.shape)}`);
  return x.view([...x.shape.slice(0, from), numel(x.shape.slice(from, to + 1)), ...x.shape.slice(to + 1)]);
}

/** torch.squeeze: size-1 dims removed (no copy): all of them, or those of dim (one or several) that are 1. */
export function squeeze(x: Tensor, dim?: number | readonly number[]): Tensor {
  const rank = x.shape.length;
  const listed = dim === undefined ? null : new Set((typeof dim === 'number' ? [dim] : dim).map((d) => normalizeDim('squeeze', d, Math.max(rank, 1))));
  return x.view(x.shape.filter((n, i) => n !== 1 || (listed !== null && !listed.has(i))));
}

/** torch.unsqueeze: a size-1 dim inserted at dim, in [-rank - 1, rank] (no copy). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normalizeDim('unsqueeze', dim, x.shape.length + 1);
  return x.view([...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

/** For each of n rows, the positions that pick it (ascending), as n + 1 offsets and then the positions. */
function invertIds(ids: Uint32Array, n: number): Uint32Array {
  const out = new Uint32Array(n + 1 + ids.length);
  for (const i of ids) out[i + 1]!++;
  for (let r = 0; r < n; r++) out[r + 1]! += out[r]!;
  const next = out.slice(0, n);
  ids.forEach((row, j) => (out[n + 1 + next[row]!++] = j));
  return out;
}

/** A 0/1 u32 mask (1 = take part) as an additive f32 one: 0 where 1, -1e30 where 0. */
export function boolMaskBias(mask: Tensor): Tensor {
  if (mask.dtype !== 'u32') throw new TypeError(`boolMaskBias: needs a u32 mask, got ${mask.dtype} ${shapeString(mask.shape)}`);
  const out = Tensor.empty(mask.gpu, mask.shape, 'f32', 'mask bias');
  if (out.size > 0) {
    mask.gpu.dispatch({
      kernel: 'movement',
      entry: 'bool_mask_bias',
      params: packParams(out.size),
      bindings: [mask.binding(), out.binding()],
      workgroups: grid(out.size, WG),
    });
  }
  return out;
}
