// 2-D pooling over [N, C, H, W] as torch.nn.functional.max_pool2d and avg_pool2d (dilation 1,
// ceil_mode false; average pooling counts padding in its divisor, count_include_pad = True).
// Kernels in kernels/pool.wgsl.
import { packParams, grid } from '../gpu/params.ts';
import { Tensor, record, shapeString } from '../tensor/tensor.ts';
import { spatialPair } from '../util/spatial.ts';

const WG = 256;

export interface Pool2dOptions {
  /** The window: one size for both dims or [h, w]. */
  kernelSize: number | readonly [number, number];
  /** Default: the window size. */
  stride?: number | readonly [number, number];
  /** Implicit padding on both sides of each dim (-inf for max pooling, zeros for average); at most half the window. Default 0. */
  padding?: number | readonly [number, number];
}

interface PoolGeometry {
  h: number;
  w: number;
  oh: number;
  ow: number;
  k: [number, number];
  s: [number, number];
  p: [number, number];
}

/** The output size and window of a pooling of x, or an error naming the shapes that do not fit. */
function geometry(op: string, x: Tensor, options: Pool2dOptions): PoolGeometry {
  if (x.dtype !== 'f32' || x.shape.length !== 4) throw new RangeError(`${op}: needs an f32 [N, C, H, W] tensor, got ${x.dtype} ${shapeString(x.shape)}`);
  const k = spatialPair(op, 'kernelSize', options.kernelSize, 1, 1);
  const s = spatialPair(op, 'stride', options.stride ?? options.kernelSize, 1, 1);
  const p = spatialPair(op, 'padding', options.padding, 0, 0);
  const [h, w] = [x.shape[2]!, x.shape[3]!];
  if (p[0] > k[0] / 2 || p[1] > k[1] / 2) {
    throw new RangeError(`${op}: padding ${shapeString(p)} must be at most half the kernel size ${shapeString(k)}, as in PyTorch`);
  }
  const oh = Math.floor((h + 2 * p[0] - k[0]) / s[0]) + 1;
  const ow = Math.floor((w + 2 * p[1] - k[1]) / s[1]) + 1;
  if (oh < 1 || ow < 1) {
    throw new RangeError(`${op}: a ${shapeString(k)} window with padding ${shapeString(p)} does not fit input ${shapeString(x.shape)} (output would be ${oh}×${ow})`);
  }
  return { h, w, oh, ow, k, s, p };
}

function poolParams(n: number, g: PoolGeometry): Uint32Array<ArrayBuffer> {
  return packParams(n, g.h, g.w, g.oh, g.ow, g.k[0], g.k[1], g.s[0], g.s[1], g.p[0], g.p[1]);
}

/** dx from dy through the windows (argmax: max pooling's winners, else average pooling). */
function poolBackward(x: Tensor, dy: Tensor, g: PoolGeometry, argmax: Tensor | null): Tensor {
  const dx = Tensor.empty(x.gpu, x.shape, 'f32', argmax ? 'maxPool2d dx' : 'avgPool2d dx');
  if (dx.size === 0) return dx;
  x.gpu.dispatch({
    kernel: 'pool',
    entry: argmax ? 'max_pool_backward' : 'avg_pool_backward',
    params: poolParams(dx.size, g),
    bindings: argmax ? [dy.binding(), dx.binding(), argmax.binding()] : [dy.binding(), dx.binding()],
    workgroups: grid(dx.size, WG),
  });
  return dx;
}

/** torch.nn.functional.max_pool2d: the maximum of each window; its gradient goes to the window's first maximum. */
export function maxPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  const g = geometry('maxPool2d', x, options);
  const shape = [x.shape[0]!, x.shape[1]!, g.oh, g.ow];
  const out = Tensor.empty(x.gpu, shape, 'f32', 'maxPool2d');
  const argmax = Tensor.empty(x.gpu, shape, 'u32', 'maxPool2d argmax');
  if (out.size > 0) {
    x.gpu.dispatch({
      kernel: 'pool',
      entry: 'max_pool_forward',
      params: poolParams(out.size, g),
      bindings: [x.binding(), out.binding(), argmax.binding()],
      workgroups: grid(out.size, WG),
    });
  }
  const y = record(out, [x], (dy) => [poolBackward(x, dy, g, argmax)]);
  // Nothing will run backward: the argmax is not needed past the kernel (safe before it runs: pool.ts).
  if (!y.node) argmax.dispose();
  return y;
}

/** torch.nn.functional.avg_pool2d (count_include_pad = True): each window's sum over its full size. */
export function avgPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  const g = geometry('avgPool2d', x, options);
  const out = Tensor.empty(x.gpu, [x.shape[0]!, x.shape[1]!, g.oh, g.ow], 'f32', 'avgPool2d');
  if (out.size > 0) {
    x.gpu.dispatch({
      kernel: 'pool',
      entry: 'avg_pool_forward',
      params: poolParams(out.size, g),
      bindings: [x.binding(), out.binding()],
      workgroups: grid(out.size, WG),
    });
  }
  return record(out, [x], (dy) => [poolBackward(x, dy, g, null)]);
}
