// Elementwise ops with numpy-style broadcasting (up to 8 dims), PyTorch's names and semantics.
//
// One table defines every op once: its forward as a WGSL expression, and its gradient as a WGSL
// expression or composed from other ops. Each op's kernel is generated from the table (the
// templates of kernels/elementwise.wgsl plus the op's functions) and registered as
// `elementwise.<name>`.
import { grid } from '../gpu/params.ts';
import { specialize } from '../gpu/features.ts';
import { kernelSource, registerKernel } from '../gpu/registry.ts';
import type { Gpu } from '../gpu/context.ts';
import { Tensor, numel, record, sameShape, shapeString, type DType, type Shape } from '../tensor/tensor.ts';

const WG = 256;
/** The most dims a broadcast operand or output may have. */
export const MAX_RANK = 8;

/**
 * A unary op. `wgsl` is the output from `x`; `grad` is dx from `x` (input), `y` (output) and
 * `g` (the output's gradient). Helpers sigmoid_f and pow_real are in kernels/elementwise.wgsl.
 */
interface UnaryDef {
  wgsl: string;
  grad: string;
}

/** A binary op's gradient for one operand at the output's shape: WGSL in x (a), y (b), z (output), g; or composed from ops. */
type BinaryGrad = string | ((g: Tensor, a: Tensor, b: Tensor, out: Tensor) => Tensor);

/** A binary op; null grad: not differentiable (comparisons give masks). */
interface BinaryDef {
  wgsl: string;
  grad: { a: BinaryGrad; b: BinaryGrad } | null;
}

export const UNARY_TABLE = {
  neg: { wgsl: '-x', grad: '-g' },
  exp: { wgsl: 'exp(x)', grad: 'g * y' },
  log: { wgsl: 'log(x)', grad: 'g / x' },
  sqrt: { wgsl: 'sqrt(x)', grad: 'g * 0.5 / y' },
  rsqrt: { wgsl: 'inverseSqrt(x)', grad: '-0.5 * g * y * y * y' },
  reciprocal: { wgsl: '1.0 / x', grad: '-g * y * y' },
  // sign(0) = 0: torch's subgradient of |x| at 0.
  abs: { wgsl: 'abs(x)', grad: 'g * sign(x)' },
  sin: { wgsl: 'sin(x)', grad: 'g * cos(x)' },
  cos: { wgsl: 'cos(x)', grad: '-g * sin(x)' },
  // Clamped: some backends build tanh from exp, which overflows to inf/inf; tanh(±15) is ±1 in f32.
  tanh: { wgsl: 'tanh(clamp(x, -15.0, 15.0))', grad: 'g * (1.0 - y * y)' },
  sigmoid: { wgsl: 'sigmoid_f(x)', grad: 'g * y * (1.0 - y)' },
  // Gradient 0 at x = 0, as torch.
  relu: { wgsl: 'max(x, 0.0)', grad: 'select(0.0, g, x > 0.0)' },
  silu: { wgsl: 'x * sigmoid_f(x)', grad: 'g * sigmoid_f(x) * (1.0 + x * (1.0 - sigmoid_f(x)))' },
  square: { wgsl: 'x * x', grad: '2.0 * g * x' },
  // d/dx erf = 2/√π·e^(−x²).
  erf: { wgsl: 'erf_f(x)', grad: 'g * 1.1283791670955126 * exp(-x * x)' },
} as const satisfies Record<string, UnaryDef>;

/** Where a == b, torch's maximum and minimum give each operand half the gradient. */
export const BINARY_TABLE = {
  add: { wgsl: 'x + y', grad: { a: (g) => g, b: (g) => g } },
  sub: { wgsl: 'x - y', grad: { a: (g) => g, b: (g) => neg(g) } },
  mul: { wgsl: 'x * y', grad: { a: (g, _a, b) => mul(g, b), b: (g, a) => mul(g, a) } },
  div: { wgsl: 'x / y', grad: { a: (g, _a, b) => div(g, b), b: '-g * z / y' } },
  // torch's masks: no gradient to x where y == 0, none to y where x == 0 and y >= 0.
  pow: { wgsl: 'pow_real(x, y)', grad: { a: 'select(g * y * pow_real(x, y - 1.0), 0.0, y == 0.0)', b: 'select(g * z * log(x), 0.0, x == 0.0 && y >= 0.0)' } },
  maximum: { wgsl: 'max(x, y)', grad: { a: 'select(select(0.0, 0.5 * g, x == y), g, x > y)', b: 'select(select(0.0, 0.5 * g, x == y), g, y > x)' } },
  minimum: { wgsl: 'min(x, y)', grad: { a: 'select(select(0.0, 0.5 * g, x == y), g, x < y)', b: 'select(select(0.0, 0.5 * g, x == y), g, y < x)' } },
  eq: { wgsl: 'select(0.0, 1.0, x == y)', grad: null },
  ne: { wgsl: 'select(0.0, 1.0, x != y)', grad: null },
  lt: { wgsl: 'select(0.0, 1.0, x < y)', grad: null },
  le: { wgsl: 'select(0.0, 1.0, x <= y)', grad: null },
  gt: { wgsl: 'select(0.0, 1.0, x > y)', grad: null },
  ge: { wgsl: 'select(0.0, 1.0, x >= y)', grad: null },
} as const satisfies Record<string, BinaryDef>;

export type UnaryOpName = keyof typeof UNARY_TABLE;
export type BinaryOpName = keyof typeof BINARY_TABLE;

// Launch words, reused by every launch (dispatch copies them): ops on the training path run
// thousands of times per step.
const flatWords = new Uint32Array(4);
const flatValue = new Float32Array(flatWords.buffer);
/** The Strided struct: n, rank, value, rank2, then dims, sa, sb, sc (8 words each). */
const stridedWords = new Uint32Array(36);
const DIMS = 4;
const SA = 12;
const SB = 20;
const SC = 28;

function flatParams(n: number, value = 0): Uint32Array<ArrayBuffer> {
  flatWords[0] = n;
  flatValue[1] = value;
  return flatWords;
}

/** The k-th dim from the right (k ≥ 1), 1 where the shape has fewer dims. */
function dimFromRight(shape: Shape, k: number): number {
  const i = shape.length - k;
  return i >= 0 ? shape[i]! : 1;
}

/**
 * The Strided words for operands a, b, c (null: unused) broadcast to `out`: the output's dims
 * innermost first, size-1 dims dropped and neighbours every operand walks contiguously merged,
 * with each operand's stride per dim (0 where broadcast).
 */
function stridedParams(out: Shape, a: Shape, b: Shape | null, c: Shape | null): Uint32Array<ArrayBuffer> {
  const w = stridedWords;
  w.fill(0);
  let rank = 0;
  let runA = 1;
  let runB = 1;
  let runC = 1;
  for (let k = 1; k <= out.length; k++) {
    const size = out[out.length - k]!;
    const da = dimFromRight(a, k);
    const db = b ? dimFromRight(b, k) : 1;
    const dc = c ? dimFromRight(c, k) : 1;
    if (size !== 1) {
      const ta = da === 1 ? 0 : runA;
      const tb = db === 1 ? 0 : runB;
      const tc = dc === 1 ? 0 : runC;
      const last = rank - 1;
      const lastSize = w[DIMS + last]!;
      if (rank > 0 && ta === w[SA + last]! * lastSize && tb === w[SB + last]! * lastSize && tc === w[SC + last]! * lastSize) {
        w[DIMS + last] = lastSize * size;
      } else {
        w[DIMS + rank] = size;
        w[SA + rank] = ta;
        w[SB + rank] = tb;
        w[SC + rank] = tc;
        rank++;
      }
    }
    runA *= da;
    runB *= db;
    runC *= dc;
  }
  w[0] = numel(out);
  w[1] = rank;
  return w;
}

/** NumPy's broadcast of two shapes (right-aligned, size-1 dims stretch), or null where they do not broadcast. */
export function broadcastDims(a: Shape, b: Shape): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The shape a and b broadcast to, or a clear error. */
export function broadcastShape(a: Shape, b: Shape): Shape {
  if (sameShape(a, b) && a.length <= MAX_RANK) return a;
  const rank = Math.max(a.length, b.length);
  if (rank > MAX_RANK) throw new RangeError(`broadcasting supports up to ${MAX_RANK} dims, got ${shapeString(a)} and ${shapeString(b)}`);
  const out = broadcastDims(a, b);
  if (!out) throw new RangeError(`shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast`);
  return out;
}

function checkF32(x: Tensor, op: string, argument: string): void {
  if (x.dtype !== 'f32') throw new TypeError(`${op}: ${argument} must be an f32 tensor, got ${x.dtype} ${shapeString(x.shape)}`);
}

/** Registers the kernel of one op: the templates resolved for its kind, then its functions. */
function opKernel(name: string, flags: string[], functions: string): string {
  const kernel = `elementwise.${name}`;
  registerKernel(kernel, `${specialize(kernelSource('elementwise'), new Set(['op', ...flags]))}\n${functions}\n`);
  return kernel;
}

/** A tensor of `shape` with every 32-bit word set to `value` (an f32, or a u32 for dtype u32), filled on the GPU. */
export function filled(gpu: Gpu, shape: Shape, value: number, dtype: DType = 'f32', label?: string): Tensor {
  if (dtype === 'f16') throw new TypeError(`fill: f16 tensors are not supported (value ${value}, shape ${shapeString(shape)})`);
  if (dtype === 'u32' && !(Number.isInteger(value) && value >= 0 && value <= 0xffffffff)) {
    throw new RangeError(`fill: a u32 tensor needs an integer in [0, 2^32), got ${value}`);
  }
  const out = Tensor.empty(gpu, shape, dtype, label);
  const words = new Uint32Array(4);
  words[0] = out.size;
  if (dtype === 'u32') words[1] = value;
  else new Float32Array(words.buffer)[1] = value;
  gpu.dispatch({ kernel: 'elementwise', entry: 'fill', params: words, bindings: [out.binding()], workgroups: grid(out.size, WG) });
  return out;
}

function unaryOp(name: string, def: UnaryDef): (x: Tensor) => Tensor {
  const kernel = opKernel(
    name,
    ['unary'],
    `fn op_forward(x: f32) -> f32 { return ${def.wgsl}; }\nfn op_grad(x: f32, y: f32, g: f32) -> f32 { return ${def.grad}; }`,
  );
  const backward = (x: Tensor, y: Tensor, g: Tensor): Tensor => {
    const dx = Tensor.empty(x.gpu, x.shape, 'f32', `${name} dx`);
    const count = x.size % 4 === 0 ? x.size / 4 : x.size;
    x.gpu.dispatch({
      kernel,
      entry: x.size % 4 === 0 ? 'backward4' : 'backward',
      params: flatParams(count),
      bindings: [x.binding(), y.binding(), g.binding(), dx.binding()],
      workgroups: grid(count, WG),
    });
    return dx;
  };
  return (x: Tensor): Tensor => {
    checkF32(x, name, 'x');
    const y = Tensor.empty(x.gpu, x.shape, 'f32', name);
    // vec4 loads and stores where the length allows.
    const count = x.size % 4 === 0 ? x.size / 4 : x.size;
    x.gpu.dispatch({
      kernel,
      entry: x.size % 4 === 0 ? 'forward4' : 'forward',
      params: flatParams(count),
      bindings: [x.binding(), y.binding()],
      workgroups: grid(count, WG),
    });
    return record(y, [x], (g) => [backward(x, y, g)]);
  };
}

/** A binary op: b a tensor (broadcast with a) or a number. */
export type BinaryOp = (a: Tensor, b: Tensor | number) => Tensor;

/** Invocations per workgroup of the rows4 entry: rows of a few hundred vec4s leave less of a smaller group idle. */
const ROW_WG = 64;
const MAX_GROUPS = 65535;
/** The rows4 entry's constants by which operand is splat (frozen: pipelines are then found by identity). */
const ROWS4_CONSTANTS = [false, true].flatMap((aSplat) => [false, true].map((bSplat) => Object.freeze({ WG: ROW_WG, A_SPLAT: aSplat ? 1 : 0, B_SPLAT: bSplat ? 1 : 0 })));

/**
 * The rows4 entry's constants where a broadcast can run by rows of vec4s: at most 2 collapsed
 * dims, rows a multiple of 4 long, each operand walking a row with stride 1 or 0 and holding a
 * whole number of vec4s; null where the general strided entry must run.
 */
function rowsOfFour(params: Uint32Array, sizeA: number, sizeB: number): Readonly<Record<string, number>> | null {
  const inner = params[DIMS]!;
  const strideA = params[SA]!;
  const strideB = params[SB]!;
  if (params[1]! > 2 || inner % 4 !== 0 || strideA > 1 || strideB > 1 || sizeA % 4 !== 0 || sizeB % 4 !== 0) return null;
  return ROWS4_CONSTANTS[(strideA === 0 ? 2 : 0) + (strideB === 0 ? 1 : 0)]!;
}

/** Rows each rows4 invocation walks (ROWS in the kernel). */
const ROWS_PER_INVOCATION = 8;

/** x along a row's vec4s, y and z over blocks of rows (y at most the per-dimension limit). */
function rowGrid(vec4sPerRow: number, rows: number): [number, number, number] {
  const blocks = Math.ceil(rows / ROWS_PER_INVOCATION);
  return [Math.ceil(vec4sPerRow / ROW_WG), Math.min(blocks, MAX_GROUPS), Math.ceil(blocks / MAX_GROUPS)];
}

function binaryOp(name: string, def: BinaryDef): BinaryOp {
  const grad = def.grad;
  const flags = ['binary'];
  let functions = `fn op_forward(x: f32, y: f32) -> f32 { return ${def.wgsl}; }`;
  for (const operand of ['a', 'b'] as const) {
    const expression = grad?.[operand];
    if (typeof expression !== 'string') continue;
    flags.push(`grad_${operand}`);
    functions += `\nfn op_grad_${operand}(x: f32, y: f32, z: f32, g: f32) -> f32 { return ${expression}; }`;
  }
  const kernel = opKernel(name, flags, functions);

  /** The gradient of one operand, at its own shape. */
  const operandGrad = (operand: 'a' | 'b', how: BinaryGrad, g: Tensor, a: Tensor, b: Tensor, out: Tensor): Tensor => {
    const target = operand === 'a' ? a.shape : b.shape;
    if (typeof how !== 'string') return sumToShape(how(g, a, b, out), target);
    const full = Tensor.empty(g.gpu, out.shape, 'f32', `${name} d${operand}`);
    g.gpu.dispatch({
      kernel,
      entry: `grad_${operand}`,
      params: stridedParams(out.shape, a.shape, b.shape, null),
      bindings: [a.binding(), b.binding(), out.binding(), g.binding(), full.binding()],
      workgroups: grid(out.size, WG),
    });
    return sumToShape(full, target);
  };

  return (a: Tensor, b: Tensor | number): Tensor => {
    checkF32(a, name, 'a');
    const gpu = a.gpu;
    if (typeof b === 'number') {
      const out = Tensor.empty(gpu, a.shape, 'f32', name);
      const count = a.size % 4 === 0 ? a.size / 4 : a.size;
      gpu.dispatch({
        kernel,
        entry: a.size % 4 === 0 ? 'scalar4' : 'scalar',
        params: flatParams(count, b),
        bindings: [a.binding(), out.binding()],
        workgroups: grid(count, WG),
      });
      if (!grad) return out;
      // The rare path: the number as a tensor, so one set of gradient rules serves both.
      return record(out, [a], (g) => [operandGrad('a', grad.a, g, a, filled(gpu, [], b), out)]);
    }
    checkF32(b, name, 'b');
    let out: Tensor;
    if (sameShape(a.shape, b.shape)) {
      out = Tensor.empty(gpu, a.shape, 'f32', name);
      const count = a.size % 4 === 0 ? a.size / 4 : a.size;
      gpu.dispatch({
        kernel,
        entry: a.size % 4 === 0 ? 'same4' : 'same',
        params: flatParams(count),
        bindings: [a.binding(), b.binding(), out.binding()],
        workgroups: grid(count, WG),
      });
    } else {
      const shape = broadcastShape(a.shape, b.shape);
      out = Tensor.empty(gpu, shape, 'f32', name);
      const params = stridedParams(shape, a.shape, b.shape, null);
      const rows4 = rowsOfFour(params, a.size, b.size);
      gpu.dispatch({
        kernel,
        entry: rows4 ? 'rows4' : 'strided',
        ...(rows4 ? { constants: rows4 } : {}),
        params,
        bindings: [a.binding(), b.binding(), out.binding()],
        workgroups: rows4 ? rowGrid(params[DIMS]! / 4, out.size / params[DIMS]!) : grid(out.size, WG),
      });
    }
    if (!grad) return out;
    return record(out, [a, b], (g, needs) => [
      needs[0] ? operandGrad('a', grad.a, g, a, b, out) : null,
      needs[1] ? operandGrad('b', grad.b, g, a, b, out) : null,
    ]);
  };
}

export const neg = unaryOp('neg', UNARY_TABLE.neg);
export const exp = unaryOp('exp', UNARY_TABLE.exp);
export const log = unaryOp('log', UNARY_TABLE.log);
export const sqrt = unaryOp('sqrt', UNARY_TABLE.sqrt);
export const rsqrt = unaryOp('rsqrt', UNARY_TABLE.rsqrt);
export const reciprocal = unaryOp('reciprocal', UNARY_TABLE.reciprocal);
export const abs = unaryOp('abs', UNARY_TABLE.abs);
export const sin = unaryOp('sin', UNARY_TABLE.sin);
export const cos = unaryOp('cos', UNARY_TABLE.cos);
export const tanh = unaryOp('tanh', UNARY_TABLE.tanh);
export const sigmoid = unaryOp('sigmoid', UNARY_TABLE.sigmoid);
export const relu = unaryOp('relu', UNARY_TABLE.relu);
export const silu = unaryOp('silu', UNARY_TABLE.silu);
export const square = unaryOp('square', UNARY_TABLE.square);
export const erf = unaryOp('erf', UNARY_TABLE.erf);

export const add = binaryOp('add', BINARY_TABLE.add);
export const sub = binaryOp('sub', BINARY_TABLE.sub);
export const mul = binaryOp('mul', BINARY_TABLE.mul);
export const div = binaryOp('div', BINARY_TABLE.div);
export const pow = binaryOp('pow', BINARY_TABLE.pow);
export const maximum = binaryOp('maximum', BINARY_TABLE.maximum);
export const minimum = binaryOp('minimum', BINARY_TABLE.minimum);
export const eq = binaryOp('eq', BINARY_TABLE.eq);
export const ne = binaryOp('ne', BINARY_TABLE.ne);
export const lt = binaryOp('lt', BINARY_TABLE.lt);
export const le = binaryOp('le', BINARY_TABLE.le);
export const gt = binaryOp('gt', BINARY_TABLE.gt);
export const ge = binaryOp('ge', BINARY_TABLE.ge);

/** The unary and binary ops by name, as the table defines them (tests iterate these). */
export const UNARY_OPS: Readonly<Record<UnaryOpName, (x: Tensor) => Tensor>> = Object.freeze({
  neg, exp, log, sqrt, rsqrt, reciprocal, abs, sin, cos, tanh, sigmoid, relu, silu, square, erf,
});
export const BINARY_OPS: Readonly<Record<BinaryOpName, BinaryOp>> = Object.freeze({
  add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge,
});

/**
 * cond ? a : b elementwise, all three broadcast together; cond is an f32 mask (nonzero = true),
 * a and b tensors or numbers. Gradients flow to a and b, not cond.
 */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  checkF32(cond, 'where', 'cond');
  const gpu = cond.gpu;
  const ta = typeof a === 'number' ? filled(gpu, [], a) : a;
  const tb = typeof b === 'number' ? filled(gpu, [], b) : b;
  checkF32(ta, 'where', 'a');
  checkF32(tb, 'where', 'b');
  const shape = broadcastShape(broadcastShape(cond.shape, ta.shape), tb.shape);
  const out = Tensor.empty(gpu, shape, 'f32', 'where');
  gpu.dispatch({
    kernel: 'elementwise',
    entry: 'where_select',
    params: stridedParams(shape, cond.shape, ta.shape, tb.shape),
    bindings: [cond.binding(), ta.binding(), tb.binding(), out.binding()],
    workgroups: grid(out.size, WG),
  });
  return record(out, [ta, tb], (g, needs) => [
    needs[0] ? sumToShape(where(cond, g, 0), ta.shape) : null,
    needs[1] ? sumToShape(where(cond, 0, g), tb.shape) : null,
  ]);
}

/** x repeated along its size-1 (or missing leading) dims to `shape`. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  if (broadcastShape(x.shape, shape).some((d, i) => d !== shape[i])) {
    throw new RangeError(`cannot broadcast ${shapeString(x.shape)} to ${shapeString(shape)}`);
  }
  const out = Tensor.empty(x.gpu, shape, 'f32', 'broadcast');
  x.gpu.dispatch({
    kernel: 'elementwise',
    entry: 'broadcast_to',
    params: stridedParams(shape, x.shape, null, null),
    bindings: [x.binding(), out.binding()],
    workgroups: grid(out.size, WG),
  });
  return record(out, [x], (g) => [sumToShape(g, x.shape)]);
}

/** Sums `g` over the dims along which `shape` was broadcast to g's shape. */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.size === numel(shape)) return g.reshape(shape);
  if (g.shape.length > MAX_RANK || shape.length > g.shape.length) throw new RangeError(`cannot sum ${shapeString(g.shape)} to ${shapeString(shape)}`);
  // Kept dims (dims, sa) and summed dims (sb, sc), innermost first, each with its stride in g.
  const w = stridedWords;
  w.fill(0);
  let kept = 0;
  let summed = 0;
  let run = 1;
  for (let k = 1; k <= g.shape.length; k++) {
    const size = g.shape[g.shape.length - k]!;
    const target = dimFromRight(shape, k);
    if (target !== size && target !== 1) throw new RangeError(`cannot sum ${shapeString(g.shape)} to ${shapeString(shape)}`);
    if (size !== 1) {
      const [sizes, strides, count] = target === size ? [DIMS, SA, kept] : [SB, SC, summed];
      const last = count - 1;
      if (count > 0 && run === w[strides + last]! * w[sizes + last]!) w[sizes + last]! *= size;
      else {
        w[sizes + count] = size;
        w[strides + count] = run;
        if (target === size) kept++;
        else summed++;
      }
    }
    run *= size;
  }
  const out = Tensor.empty(g.gpu, shape, 'f32', 'sumToShape');
  w[0] = out.size;
  w[1] = kept;
  w[3] = summed;
  g.gpu.dispatch({
    kernel: 'elementwise',
    entry: 'sum_to_shape',
    params: w,
    bindings: [g.binding(), out.binding()],
    workgroups: grid(out.size, WG),
  });
  return record(out, [g], (gradOut) => [broadcastTo(gradOut, g.shape)]);
}

const scaleWords = new Uint32Array(4);
const scaleValues = new Float32Array(scaleWords.buffer);

/** x * factor + shift, elementwise. */
export function scale(x: Tensor, factor: number, shift = 0): Tensor {
  const out = Tensor.empty(x.gpu, x.shape);
  scaleWords[0] = x.size;
  scaleValues[1] = factor;
  scaleValues[2] = shift;
  x.gpu.dispatch({
    kernel: 'elementwise',
    entry: 'scale',
    params: scaleWords,
    bindings: [x.binding(), out.binding()],
    workgroups: grid(x.size, WG),
  });
  return record(out, [x], (g) => [scale(g, factor)]);
}

