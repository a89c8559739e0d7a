// Elementwise arithmetic with numpy-style broadcasting (up to 4 dims).
import { packParams, f32, grid } from '../gpu/params.ts';
import { Tensor, record, sameShape, shapeString, type Shape } from '../engine/tensor.ts';

const WG = 256;
const MAX_RANK = 4;
const enum BinaryOp {
  Add = 0,
  Sub = 1,
  Mul = 2,
  Div = 3,
  TakeA = 4,
}

/** The shape a and b broadcast to, or a clear error. */
export function broadcastShape(a: Shape, b: Shape): Shape {
  if (sameShape(a, b) && a.length <= MAX_RANK) return a;
  const rank = Math.max(a.length, b.length);
  if (rank > MAX_RANK) throw new RangeError(`broadcasting supports up to ${MAX_RANK} dims, got ${shapeString(a)} and ${shapeString(b)}`);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new RangeError(`shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** `shape` right-aligned to 4 dims. */
function pad4(shape: Shape): number[] {
  return [...Array(MAX_RANK - shape.length).fill(1), ...shape];
}

/**
 * The binary kernel's Params: size, op, the output's 4-dim shape, then a's and b's strides
 * within it (0 on broadcast dims). Written straight into the words: this runs on every add.
 */
function binaryParams(size: number, op: BinaryOp, a: Shape, b: Shape, out: Shape): Uint32Array<ArrayBuffer> {
  // The BinaryParams struct, written directly: size, op, then per dim the output size and both strides.
  const words = new Uint32Array(16);
  words[0] = size;
  words[1] = op;
  let strideA = 1;
  let strideB = 1;
  for (let d = MAX_RANK - 1; d >= 0; d--) {
    // Right-aligned dims; a missing leading dim is 1 (never read at a negative index: that is a slow property lookup).
    const o = dimFromRight(out, MAX_RANK - d);
    const da = dimFromRight(a, MAX_RANK - d);
    const db = dimFromRight(b, MAX_RANK - d);
    words[4 + d] = o;
    words[8 + d] = da === 1 && o !== 1 ? 0 : strideA;
    words[12 + d] = db === 1 && o !== 1 ? 0 : strideB;
    strideA *= da;
    strideB *= db;
  }
  return words;
}

/** The k-th dim from the right (k ≥ 1), 1 where the shape has fewer dims. */
function dimFromRight(shape: Shape, k: number): number {
  const i = shape.length - k;
  return i >= 0 ? shape[i]! : 1;
}

function binaryRaw(a: Tensor, b: Tensor, op: BinaryOp, shape: Shape = broadcastShape(a.shape, b.shape)): Tensor {
  const out = Tensor.empty(a.gpu, shape);
  a.gpu.dispatch({
    kernel: 'elementwise',
    entry: 'binary',
    params: binaryParams(out.size, op, a.shape, b.shape, shape),
    bindings: [a.binding(), b.binding(), out.binding()],
    workgroups: grid(out.size, WG),
  });
  return out;
}

/** x repeated along its size-1 (or missing leading) dims to `shape`. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  if (broadcastShape(x.shape, shape).some((d, i) => d !== shape[i])) {
    throw new RangeError(`cannot broadcast ${shapeString(x.shape)} to ${shapeString(shape)}`);
  }
  return record(binaryRaw(x, x, BinaryOp.TakeA, [...shape]), [x], (g) => [sumToShape(g, x.shape)]);
}

/** Sums `g` over the dims along which `shape` was broadcast to g's shape. */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.size === shape.reduce((x, y) => x * y, 1)) return g.reshape(shape);
  const full4 = pad4(g.shape);
  const target4 = pad4(shape);
  let keepMask = 0;
  target4.forEach((d, i) => {
    if (d === full4[i]) keepMask |= 1 << i;
    else if (d !== 1) throw new RangeError(`cannot sum ${shapeString(g.shape)} to ${shapeString(shape)}`);
  });
  const out = Tensor.empty(g.gpu, shape);
  g.gpu.dispatch({
    kernel: 'elementwise',
    entry: 'sum_to_shape',
    params: packParams(out.size, keepMask, 0, 0, ...full4),
    bindings: [g.binding(), out.binding()],
    workgroups: grid(out.size, WG),
  });
  return record(out, [g], (gradOut) => [broadcastTo(gradOut, g.shape)]);
}

/** x * factor + shift, elementwise. */
export function scale(x: Tensor, factor: number, shift = 0): Tensor {
  const out = Tensor.empty(x.gpu, x.shape);
  x.gpu.dispatch({
    kernel: 'elementwise',
    entry: 'scale',
    params: packParams(x.size, f32(factor), f32(shift)),
    bindings: [x.binding(), out.binding()],
    workgroups: grid(x.size, WG),
  });
  return record(out, [x], (g) => [scale(g, factor)]);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw(a, b, BinaryOp.Add), [a, b], (g, needs) => [
    needs[0] ? sumToShape(g, a.shape) : null,
    needs[1] ? sumToShape(g, b.shape) : null,
  ]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw(a, b, BinaryOp.Sub), [a, b], (g, needs) => [
    needs[0] ? sumToShape(g, a.shape) : null,
    needs[1] ? sumToShape(scale(g, -1), b.shape) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw(a, b, BinaryOp.Mul), [a, b], (g, needs) => [
    needs[0] ? sumToShape(binaryRaw(g, b, BinaryOp.Mul), a.shape) : null,
    needs[1] ? sumToShape(binaryRaw(g, a, BinaryOp.Mul), b.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw(a, b, BinaryOp.Div), [a, b], (g, needs) => [
    needs[0] ? sumToShape(binaryRaw(g, b, BinaryOp.Div), a.shape) : null,
    // d(a/b)/db = -a/b²  →  -(g·a/b)/b
    needs[1] ? sumToShape(scale(binaryRaw(binaryRaw(binaryRaw(g, a, BinaryOp.Mul), b, BinaryOp.Div), b, BinaryOp.Div), -1), b.shape) : null,
  ]);
}
