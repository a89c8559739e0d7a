// Tensors made from a shape (torch's zeros, ones, full, arange, rand, randn). zeros, ones and
// full are filled on the GPU; arange and the seeded random tensors are made on the host
// (seeded: the same seed gives the same values on every device) and uploaded.
import type { Gpu } from '../gpu/context.ts';
import { Tensor, numel, shapeString, tensor, type DType, type Shape } from '../tensor/tensor.ts';
import { seededRandom } from '../util/random.ts';
import { filled } from './elementwise.ts';

export interface CreationOptions {
  /** f32 (default) or u32; f16 tensors come from tensor() or rawTensor(). */
  dtype?: DType;
  requiresGrad?: boolean;
  label?: string;
}

export interface RandomOptions {
  seed: number;
  requiresGrad?: boolean;
  label?: string;
}

function checkShape(op: string, shape: Shape): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`${op}: shape ${shapeString(shape)} must be non-negative integers`);
}

/** A tensor of `shape` with every element `value`. */
export function full(gpu: Gpu, shape: Shape, value: number, options: CreationOptions = {}): Tensor {
  checkShape('full', shape);
  const dtype = options.dtype ?? 'f32';
  if (options.requiresGrad && dtype !== 'f32') throw new TypeError(`full: only f32 tensors can require grad, got ${dtype}`);
  const t = filled(gpu, shape, value, dtype, options.label);
  t.requiresGrad = options.requiresGrad ?? false;
  return t;
}

export function zeros(gpu: Gpu, shape: Shape, options: CreationOptions = {}): Tensor {
  return full(gpu, shape, 0, options);
}

export function ones(gpu: Gpu, shape: Shape, options: CreationOptions = {}): Tensor {
  return full(gpu, shape, 1, options);
}

/**
 * start, start + step, … up to but excluding end, as torch.arange: an f32 tensor of
 * ceil((end − start) / step) elements. arange(gpu, end) counts from 0.
 */
export function arange(gpu: Gpu, start: number, end?: number, step = 1, options: CreationOptions = {}): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  if (!Number.isFinite(from) || !Number.isFinite(to) || !Number.isFinite(step) || step === 0) {
    throw new RangeError(`arange: start ${from}, end ${to} and step ${step} must be finite, step nonzero`);
  }
  if ((to - from) / step < 0) throw new RangeError(`arange: step ${step} moves away from end ${to} (start ${from})`);
  const count = Math.ceil((to - from) / step);
  // Each element from the float64 product, as torch computes it, then rounded once.
  return tensor(gpu, Float64Array.from({ length: count }, (_, i) => from + i * step), [count], options);
}

/** Uniform values in [0, 1), the same for the same seed. */
export function rand(gpu: Gpu, shape: Shape, options: RandomOptions): Tensor {
  checkShape('rand', shape);
  const random = seededRandom(options.seed);
  // f32 rounding could turn a value just below 1 into 1: clamp to the largest f32 below 1.
  const values = Float32Array.from({ length: numel(shape) }, () => Math.min(random(), 1 - 2 ** -24));
  return tensor(gpu, values, shape, { requiresGrad: options.requiresGrad, label: options.label });
}

/** Standard normal values (Box–Muller), the same for the same seed. */
export function randn(gpu: Gpu, shape: Shape, options: RandomOptions): Tensor {
  checkShape('randn', shape);
  const random = seededRandom(options.seed);
  const values = new Float32Array(numel(shape));
  for (let i = 0; i < values.length; i++) {
    // 1 − u is in (0, 1], so the log is finite.
    values[i] = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  }
  return tensor(gpu, values, shape, { requiresGrad: options.requiresGrad, label: options.label });
}
