// Convolutions as PyTorch computes them (cross-correlation, zero padding, groups): im2col into
// columns, one matmul per group against the weight, the bias broadcast-added. The multiply-adds
// run in the matmul kernels (register-blocked on CPU adapters, tiled on GPUs), and the
// gradients follow from matmul's and from im2col's own backward, col2im (kernels/conv.wgsl).
import { packParams } from '../gpu/params.ts';
import { Tensor, record, shapeString, type Shape } from '../tensor/tensor.ts';
import { matmul } from './matmul.ts';

export interface Conv2dOptions {
  /** Per axis [h, w], or one number for both (default 1). */
  stride?: number | readonly [number, number];
  /** Zeros added on each side, per axis (default 0). */
  padding?: number | readonly [number, number];
  /** Spacing of the kernel's taps, per axis (default 1). */
  dilation?: number | readonly [number, number];
  /** Input and output channels split into this many independent groups (default 1). */
  groups?: number;
}

export interface Conv1dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}

const WG = 64;
const CONSTANTS = Object.freeze({ WG });

interface Geometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  ho: number;
  wo: number;
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

function pair(op: string, name: string, value: number | readonly [number, number] | undefined, fallback: number, min: number): [number, number] {
  const v: readonly number[] = value === undefined ? [fallback, fallback] : typeof value === 'number' ? [value, value] : value;
  if (v.length !== 2 || !v.every((d) => Number.isInteger(d) && d >= min)) {
    throw new RangeError(`${op}: ${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer or a pair of them, got ${JSON.stringify(value)}`);
  }
  return [v[0]!, v[1]!];
}

/**
 * Checks a convolution's operands and works out its output size, every error naming `op` and
 * the shapes as the caller gave them (conv1d's 3-D ones, not the 4-D ones it runs as).
 */
function geometry(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, dims: 1 | 2, opts: Conv2dOptions): Geometry & { groups: number; o: number } {
  const what = `${op}: input ${shapeString(x.shape)} and weight ${shapeString(weight.shape)}`;
  const rank = dims + 2;
  const layout = dims === 1 ? '[N, C, L]' : '[N, C, H, W]';
  if (x.shape.length !== rank) throw new RangeError(`${what}: input must be ${rank}-D ${layout}`);
  if (weight.shape.length !== rank) throw new RangeError(`${what}: weight must be ${rank}-D ${dims === 1 ? '[out, in/groups, k]' : '[out, in/groups, kh, kw]'}`);
  if (x.dtype !== 'f32' || weight.dtype !== 'f32' || (bias && bias.dtype !== 'f32')) throw new TypeError(`${what}: operands must be f32`);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`${what}: groups must be a positive integer, got ${groups}`);
  const stride = pair(op, 'stride', opts.stride, 1, 1);
  const padding = pair(op, 'padding', opts.padding, 0, 0);
  const dilation = pair(op, 'dilation', opts.dilation, 1, 1);
  const [n, c] = x.shape as [number, number];
  const [o, cg] = weight.shape as [number, number];
  const h = dims === 1 ? 1 : x.shape[2]!;
  const w = x.shape.at(-1)!;
  const kh = dims === 1 ? 1 : weight.shape[2]!;
  const kw = weight.shape.at(-1)!;
  if (c % groups !== 0) throw new RangeError(`${what}: input channels ${c} are not divisible by groups=${groups}`);
  if (o % groups !== 0) throw new RangeError(`${what}: output channels ${o} are not divisible by groups=${groups}`);
  if (cg * groups !== c) throw new RangeError(`${what}: weight expects ${cg}·groups=${cg * groups} input channels, got ${c}`);
  if (bias && !(bias.shape.length === 1 && bias.shape[0] === o)) throw new RangeError(`${what}: bias ${shapeString(bias.shape)} must be [${o}]`);
  const span = (k: number, d: number) => d * (k - 1) + 1;
  const out = (size: number, axis: 0 | 1, k: number) => Math.floor((size + 2 * padding[axis] - span(k, dilation[axis])) / stride[axis]) + 1;
  const ho = out(h, 0, kh);
  const wo = out(w, 1, kw);
  if (ho < 1 || wo < 1 || kh < 1 || kw < 1) {
    const padded = dims === 1 ? `${w + 2 * padding[1]}` : `${h + 2 * padding[0]}×${w + 2 * padding[1]}`;
    const kernel = dims === 1 ? `${span(kw, dilation[1])}` : `${span(kh, dilation[0])}×${span(kw, dilation[1])}`;
    throw new RangeError(`${what}: the kernel (${kernel} with dilation) is larger than the padded input (${padded})`);
  }
  // The kernels give each sample, column row and output channel a workgroup row (kernels/conv.wgsl).
  const limit = x.gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (Math.max(n, c * kh * kw, o) > limit) {
    throw new RangeError(`${what}: the batch (${n}), C·KH·KW (${c * kh * kw}) and output channels (${o}) must each be at most ${limit}, the device's workgroups per dimension`);
  }
  return { n, c, h, w, kh, kw, ho, wo, stride, padding, dilation, groups, o };
}

function convParams(g: Geometry, o: number): Uint32Array<ArrayBuffer> {
  return packParams(g.c, g.h, g.w, o, g.kh, g.kw, g.ho, g.wo, ...g.stride, ...g.padding, ...g.dilation, g.n, 0);
}

/** x [N, C, H, W] → columns [N, C·KH·KW, HO·WO]; its gradient is col2im. */
function im2col(x: Tensor, g: Geometry): Tensor {
  const gpu = x.gpu;
  const col = Tensor.empty(gpu, [g.n, g.c * g.kh * g.kw, g.ho * g.wo], 'f32', 'conv im2col');
  const params = convParams(g, 0);
  if (col.size > 0) {
    gpu.dispatch({ kernel: 'conv', entry: 'im2col', constants: CONSTANTS, params, bindings: [x.binding(), col.binding()], workgroups: [Math.ceil((g.ho * g.wo) / WG), g.c * g.kh * g.kw, g.n] });
  }
  return record(col, [x], (dcol) => {
    const dx = Tensor.empty(gpu, x.shape, 'f32', 'conv dx');
    if (dx.size > 0) {
      gpu.dispatch({ kernel: 'conv', entry: 'col2im', constants: CONSTANTS, params, bindings: [dcol.binding(), dx.binding()], workgroups: [Math.ceil((g.h * g.w) / WG), g.c, g.n] });
    }
    return [dx];
  });
}

/** y [N, O, ...] + bias [O] along dim 1; its gradients are dy and dy summed over all but dim 1. */
function addBias(y: Tensor, bias: Tensor, g: Geometry, o: number): Tensor {
  const gpu = y.gpu;
  const out = Tensor.empty(gpu, y.shape, 'f32', 'conv + bias');
  const params = convParams(g, o);
  if (out.size > 0) {
    gpu.dispatch({ kernel: 'conv', entry: 'bias_add', constants: CONSTANTS, params, bindings: [y.binding(), bias.binding(), out.binding()], workgroups: [Math.ceil((g.ho * g.wo) / WG), o, g.n] });
  }
  return record(out, [y, bias], (dy, needs) => {
    let dbias: Tensor | null = null;
    if (needs[1]) {
      dbias = Tensor.empty(gpu, [o], 'f32', 'conv dbias');
      gpu.dispatch({ kernel: 'conv', entry: 'bias_backward', constants: CONSTANTS, params, bindings: [dy.binding(), dbias.binding()], workgroups: [o, 1, 1] });
    }
    return [needs[0] ? dy : null, dbias];
  });
}

/** The 4-D convolution both ops run; `shape` is the output's shape as the caller sees it. */
function convolve(x: Tensor, weight: Tensor, bias: Tensor | null, g: Geometry & { groups: number; o: number }, shape: Shape): Tensor {
  const { n, groups, o } = g;
  const x4 = x.shape.length === 4 ? x : x.reshape([n, g.c, g.h, g.w]);
  const col = im2col(x4, g);
  const k = (g.c / groups) * g.kh * g.kw;
  const positions = g.ho * g.wo;
  // One group is a weight [O, K] shared across the batch; several are a batch of G matmuls per sample.
  const w = groups === 1 ? weight.reshape([o, k]) : weight.reshape([groups, o / groups, k]);
  const cols = groups === 1 ? col : col.reshape([n, groups, k, positions]);
  const product = matmul(w, cols);
  const flat = product.reshape(shape);
  const out = bias ? addBias(flat, bias, g, o) : flat;
  if (!out.requiresGrad) {
    for (const t of new Set([x4, col, w, cols, product, flat])) if (t !== x && t !== out) t.dispose();
  }
  return out;
}

/**
 * torch.nn.functional.conv2d: x [N, C, H, W], weight [O, C/groups, KH, KW], bias [O] or null;
 * returns [N, O, HO, WO] with HO = ⌊(H + 2·padding − dilation·(KH − 1) − 1) / stride⌋ + 1.
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const g = geometry('conv2d', x, weight, bias, 2, opts);
  return convolve(x, weight, bias, g, [g.n, g.o, g.ho, g.wo]);
}

/** torch.nn.functional.conv1d: x [N, C, L], weight [O, C/groups, K], bias [O] or null; returns [N, O, LO]. */
export function conv1d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv1dOptions = {}): Tensor {
  for (const key of ['stride', 'padding', 'dilation'] as const) {
    const v: unknown = opts[key];
    if (v !== undefined && typeof v !== 'number') throw new RangeError(`conv1d: ${key} must be a number, got ${JSON.stringify(v)}`);
  }
  const along = (v: number | undefined, fallback: number): [number, number] => [fallback, v ?? fallback];
  const g = geometry('conv1d', x, weight, bias, 1, {
    stride: along(opts.stride, 1),
    padding: along(opts.padding, 0),
    dilation: along(opts.dilation, 1),
    ...(opts.groups !== undefined ? { groups: opts.groups } : {}),
  });
  const w4 = weight.reshape([g.o, weight.shape[1]!, 1, g.kw]);
  const out = convolve(x, w4, bias, g, [g.n, g.o, g.wo]);
  if (!out.requiresGrad) w4.dispose();
  return out;
}
