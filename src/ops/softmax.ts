// Softmax along a dim: a kernel for the last dim; other dims composed from reductions.
import { packParams, grid } from '../gpu/params.ts';
import { Tensor, noGrad, record, shapeString } from '../tensor/tensor.ts';
import { div, exp, sub } from './elementwise.ts';
import { max, normalizeDims, sum } from './reduce.ts';

/**
 * Invocations per row (one workgroup per row). Small on purpose: on CPU adapters (llvmpipe)
 * the cost of a workgroup with barriers grows steeply with its size, and on a large GPU 32
 * invocations with several loads each still keep thousands of rows in flight.
 */
const ROW_WG = 32;
const CONSTANTS = Object.freeze({ SM_WG: ROW_WG });

/** exp(x) / Σ exp(x) along `dim` (default the last). */
export function softmax(x: Tensor, dim = -1): Tensor {
  const [d] = normalizeDims('softmax', x.shape, dim);
  if (d !== undefined && d !== x.shape.length - 1) {
    // Softmax does not change when a constant is taken off, so the max needs no gradient.
    const e = exp(sub(x, noGrad(() => max(x, d, true))));
    return div(e, sum(e, d, true));
  }
  const n = x.shape.at(-1) ?? 0;
  if (n === 0) throw new RangeError(`softmax needs a non-empty last dim, got ${shapeString(x.shape)}`);
  const gpu = x.gpu;
  const rows = x.size / n;
  const constants = CONSTANTS;
  const y = Tensor.empty(gpu, x.shape, 'f32', 'softmax');
  gpu.dispatch({
    kernel: 'softmax',
    entry: 'softmax_forward',
    constants,
    params: packParams(rows, n),
    bindings: [x.binding(), y.binding()],
    workgroups: grid(rows, 1),
  });
  // The gradient needs only the output, so x may be freed after the forward pass.
  return record(y, [x], (dy) => {
    const dx = Tensor.empty(gpu, x.shape, 'f32', 'softmax dx');
    gpu.dispatch({
      kernel: 'softmax',
      entry: 'softmax_backward',
      constants,
      params: packParams(rows, n),
      bindings: [y.binding(), dy.binding(), dx.binding()],
      workgroups: grid(rows, 1),
    });
    return [dx];
  });
}
