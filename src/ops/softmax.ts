// Softmax along the last dim.
import { packParams, grid } from '../gpu/params.ts';
import { Tensor, record, shapeString } from '../engine/tensor.ts';

/**
 * Invocations per row (one workgroup per row). Small on purpose: on CPU adapters (llvmpipe)
 * the cost of a workgroup with barriers grows steeply with its size, and on a large GPU 32
 * invocations with several loads each still keep thousands of rows in flight.
 */
const ROW_WG = 32;
const CONSTANTS = Object.freeze({ SM_WG: ROW_WG });

export function softmax(x: Tensor): Tensor {
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
