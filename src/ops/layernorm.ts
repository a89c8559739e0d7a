// Layer normalization over the last dim, as torch.nn.functional.layer_norm (biased
// variance, eps inside the square root).
import { packParams, f32, grid } from '../gpu/params.ts';
import { Tensor, record, shapeString } from '../tensor/tensor.ts';

/**
 * Invocations per row (one workgroup per row). Small on purpose: on CPU adapters (llvmpipe)
 * the cost of a workgroup with barriers grows steeply with its size, and on a large GPU 32
 * invocations with several loads each still keep thousands of rows in flight.
 */
const ROW_WG = 32;

/** Columns per workgroup in the dγ/dβ kernels. */
const PARAM_WG = 256;
/** Row chunks summed in parallel for dγ/dβ; enough workgroups to fill a large GPU. */
const MAX_CHUNKS = 256;
const MIN_ROWS_PER_CHUNK = 16;

const ROW_CONSTANTS = Object.freeze({ LN_WG: ROW_WG });
const PARAM_CONSTANTS = Object.freeze({ LN_WG: PARAM_WG });

/** x [..., C] normalized over C, scaled by gamma [C] and shifted by beta [C]. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const c = x.shape.at(-1) ?? 0;
  if (c === 0) throw new RangeError(`layerNorm needs a non-empty last dim, got ${shapeString(x.shape)}`);
  if (gamma.shape.length !== 1 || gamma.shape[0] !== c || beta.shape.length !== 1 || beta.shape[0] !== c) {
    throw new RangeError(`layerNorm of ${shapeString(x.shape)} needs gamma and beta of shape [${c}], got ${shapeString(gamma.shape)} and ${shapeString(beta.shape)}`);
  }
  const gpu = x.gpu;
  const rows = x.size / c;
  // vec4 kernels where rows are whole vec4s (GPT-2's 768), scalar ones otherwise.
  const vec4 = c % 4 === 0;
  const constants = ROW_CONSTANTS;
  const out = Tensor.empty(gpu, x.shape, 'f32', 'layerNorm');
  // (mean, rstd) per row, for backward.
  const stats = Tensor.empty(gpu, [rows, 2], 'f32', 'layerNorm mean and rstd');
  gpu.dispatch({
    kernel: 'layernorm',
    entry: vec4 ? 'ln_forward4' : 'ln_forward',
    constants,
    params: packParams(rows, c, f32(eps)),
    bindings: [x.binding(), gamma.binding(), beta.binding(), out.binding(), stats.binding()],
    workgroups: grid(rows, 1),
  });
  const y = record(out, [x, gamma, beta], (dy, needs) => {
    const dx = needs[0] ? Tensor.empty(gpu, x.shape, 'f32', 'layerNorm dx') : null;
    if (dx) {
      gpu.dispatch({
        kernel: 'layernorm',
        entry: vec4 ? 'ln_backward4' : 'ln_backward',
        constants,
        params: packParams(rows, c),
        bindings: [x.binding(), gamma.binding(), dy.binding(), stats.binding(), dx.binding()],
        workgroups: grid(rows, 1),
      });
    }
    if (!needs[1] && !needs[2]) return [dx, null, null];
    const [dgamma, dbeta] = paramGrads(x, dy, stats, rows, c);
    if (!needs[1]) dgamma.dispose();
    if (!needs[2]) dbeta.dispose();
    return [dx, needs[1] ? dgamma : null, needs[2] ? dbeta : null];
  });
  // Nothing will run backward: the statistics are not needed past the kernel.
  if (!y.node) stats.dispose();
  return y;
}

function paramGrads(x: Tensor, dy: Tensor, stats: Tensor, rows: number, c: number): [Tensor, Tensor] {
  const gpu = x.gpu;
  const rowsPerChunk = Math.max(MIN_ROWS_PER_CHUNK, Math.ceil(rows / MAX_CHUNKS));
  const chunks = Math.ceil(rows / rowsPerChunk);
  const partial = Tensor.empty(gpu, [2, chunks, c], 'f32', 'layerNorm param partials');
  const dgamma = Tensor.empty(gpu, [c], 'f32', 'layerNorm dgamma');
  const dbeta = Tensor.empty(gpu, [c], 'f32', 'layerNorm dbeta');
  gpu.dispatch({
    kernel: 'layernorm',
    entry: 'ln_param_partial',
    constants: PARAM_CONSTANTS,
    params: packParams(rows, c, rowsPerChunk),
    bindings: [x.binding(), dy.binding(), stats.binding(), partial.binding()],
    workgroups: [Math.ceil(c / PARAM_WG), chunks],
  });
  gpu.dispatch({
    kernel: 'layernorm',
    entry: 'ln_param_final',
    constants: PARAM_CONSTANTS,
    params: packParams(c, chunks),
    bindings: [partial.binding(), dgamma.binding(), dbeta.binding()],
    workgroups: [Math.ceil(c / PARAM_WG)],
  });
  partial.dispose();
  return [dgamma, dbeta];
}
