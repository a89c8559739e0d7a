// Convolutions as PyTorch computes them (cross-correlation, zero padding, groups): im2col into
// columns, one matmul per group against the weight, then the bias per channel. The multiply-adds
// of the forward and of both large gradients run in the matmul kernels (register-blocked on CPU
// adapters, tiled on GPUs); the unfold, its gradient col2im and the bias are kernels/conv.wgsl.
// conv1d is conv2d with H = 1 (the same geometry, kernels and backward).
import { packParams } from '../gpu/params.ts';
import type { Binding, Gpu } from '../gpu/context.ts';
import { Tensor, noGrad, record, shapeString, type Shape } from '../tensor/tensor.ts';
import { sumToShape } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { transpose } from './movement.ts';
import { spatialPair } from '../util/spatial.ts';

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
  const stride = spatialPair(op, 'stride', opts.stride, 1, 1);
  const padding = spatialPair(op, 'padding', opts.padding, 0, 0);
  const dilation = spatialPair(op, 'dilation', opts.dilation, 1, 1);
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

function dispatchConv(gpu: Gpu, entry: string, params: Uint32Array<ArrayBuffer>, bindings: Binding[], workgroups: [number, number, number]): void {
  if (workgroups[0] * workgroups[1] * workgroups[2] > 0) gpu.dispatch({ kernel: 'conv', entry, constants: CONSTANTS, params, bindings, workgroups });
}

/**
 * The convolution both ops run, on x and weight as the caller gave them (conv1d's are 3-D: the
 * kernels see H = 1 either way); `shape` is the output's shape as the caller sees it. One
 * recorded op rather than a composition of im2col, matmul and a bias add, so the backward
 * chooses its matmuls' layouts: the columns' gradient as Wᵀ·dy with Wᵀ copied out (a small
 * weight), which takes the fast row-major matmul kernels where matmul's own gradient would read
 * W transposed through the general, scalar-load kernel.
 */
function convolve(x: Tensor, weight: Tensor, bias: Tensor | null, g: Geometry & { groups: number; o: number }, shape: Shape): Tensor {
  const { n, groups, o } = g;
  const gpu = x.gpu;
  const rows = g.c * g.kh * g.kw;
  const positions = g.ho * g.wo;
  const k = rows / groups;
  const params = convParams(g, o);
  // One group is a weight [O, K] shared across the batch; several are a batch of G matmuls per sample.
  const weightShape = groups === 1 ? [o, k] : [groups, o / groups, k];
  const colShape = groups === 1 ? [n, k, positions] : [n, groups, k, positions];
  const productShape = groups === 1 ? [n, o, positions] : [n, groups, o / groups, positions];

  const col = Tensor.empty(gpu, [n, rows, positions], 'f32', 'conv columns');
  dispatchConv(gpu, 'im2col', params, [x.binding(), col.binding()], [Math.ceil(positions / WG), rows, n]);
  const out = noGrad(() => {
    const w = weight.reshape(weightShape);
    const cols = col.reshape(colShape);
    const product = matmul(w, cols);
    w.dispose();
    cols.dispose();
    if (!bias) {
      const flat = product.reshape(shape);
      product.dispose();
      return flat;
    }
    const sum = Tensor.empty(gpu, shape, 'f32', 'conv');
    dispatchConv(gpu, 'bias_add', params, [product.binding(), bias.binding(), sum.binding()], [Math.ceil(positions / WG), o, n]);
    product.dispose();
    return sum;
  });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  record(out, inputs, (dy, needs) =>
    noGrad(() => {
      const dys = dy.reshape(productShape);
      let dWeight: Tensor | null = null;
      if (needs[1]) {
        const cols = col.reshape(colShape);
        const perSample = matmul(dys, cols, { transB: true });
        const summed = sumToShape(perSample, weightShape);
        dWeight = summed.reshape(weight.shape);
        for (const t of [cols, perSample, summed]) if (t !== dWeight) t.dispose();
      }
      let dx: Tensor | null = null;
      if (needs[0]) {
        const w = weight.reshape(weightShape);
        const wT = transpose(w, -1, -2);
        const dcol = matmul(wT, dys);
        dx = Tensor.empty(gpu, x.shape, 'f32', 'conv dx');
        dispatchConv(gpu, 'col2im', params, [dcol.binding(), dx.binding()], [Math.ceil((g.h * g.w) / WG), g.c, n]);
        for (const t of [w, wT, dcol]) t.dispose();
      }
      let dBias: Tensor | null = null;
      if (bias && needs[2]) {
        dBias = Tensor.empty(gpu, [o], 'f32', 'conv dbias');
        dispatchConv(gpu, 'bias_backward', params, [dy.binding(), dBias.binding()], [o, 1, 1]);
      }
      dys.dispose();
      return [dx, dWeight, ...(bias ? [dBias] : [])];
    }),
  );
  // The columns are the weight gradient's operand and needed for nothing else.
  if (!out.requiresGrad || !weight.requiresGrad) col.dispose();
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
  return convolve(x, weight, bias, g, [g.n, g.o, g.wo]);
}
