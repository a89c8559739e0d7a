// torch.nn.functional.dropout with a seed: the mask comes from a hash of (seed, element index)
// on the GPU (kernels/dropout.wgsl), so nothing is uploaded and backward reuses the mask
// without storing it.
import { packParams, f32, grid } from '../gpu/params.ts';
import { Tensor, record, shapeString } from '../tensor/tensor.ts';

const WG = 256;

export interface DropoutOptions {
  /** Default true, as torch.nn.functional.dropout. */
  training?: boolean;
  /** Picks the mask: the same seed gives the same mask (any u32). */
  seed: number;
}

/** x with its elements zeroed where the mask of (seed, p) drops them, the rest scaled by 1/(1 − p). */
function applyMask(x: Tensor, p: number, seed: number): Tensor {
  const out = Tensor.empty(x.gpu, x.shape, 'f32', 'dropout');
  if (out.size === 0) return out;
  // p = 1 keeps nothing: scale 0 zeroes the one hash in 2³² that reaches the threshold.
  const threshold = Math.min(Math.round(p * 2 ** 32), 0xffffffff);
  x.gpu.dispatch({
    kernel: 'dropout',
    entry: 'dropout_apply',
    params: packParams(out.size, seed, threshold, f32(p === 1 ? 0 : 1 / (1 - p))),
    bindings: [x.binding(), out.binding()],
    workgroups: grid(out.size, WG),
  });
  return out;
}

/**
 * torch.nn.functional.dropout: in training each element is zeroed with probability p and the
 * rest are scaled by 1/(1 − p); the gradient goes through the same mask. Not training, or
 * p = 0: x itself as a view (no copy). p = 1: zeros.
 */
export function dropout(x: Tensor, p: number, options: DropoutOptions): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: probability p must be in [0, 1], got ${p}`);
  if (x.dtype !== 'f32') throw new TypeError(`dropout: needs an f32 tensor, got ${x.dtype} ${shapeString(x.shape)}`);
  const seed = options.seed;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`dropout: seed ${seed} must be an integer in [0, 2³²)`);
  if (!(options.training ?? true) || p === 0) return x.reshape(x.shape);
  return record(applyMask(x, p, seed), [x], (g) => [applyMask(g, p, seed)]);
}
