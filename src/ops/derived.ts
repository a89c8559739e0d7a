// Routines composed from the elementwise and reduction ops: their gradients come from the
// ops' own, so they need no kernels of their own.
import { shapeString, type Tensor } from '../tensor/tensor.ts';
import { add, mul, rsqrt, square, sub } from './elementwise.ts';
import { logsumexp, mean } from './reduce.ts';

/** log softmax along `dim`: x − logsumexp(x, dim), stable for large logits. */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return sub(x, logsumexp(x, dim, true));
}

/** x · rsqrt(mean(x², last dim) + eps) · weight (RMSNorm, as Llama's); weight has the last dim's size. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const n = x.shape.at(-1);
  if (weight.shape.length !== 1 || weight.shape[0] !== n) {
    throw new RangeError(`rmsNorm: weight ${shapeString(weight.shape)} must be [${n}], the last dim of x ${shapeString(x.shape)}`);
  }
  return mul(mul(x, rsqrt(add(mean(square(x), -1, true), eps))), weight);
}

/** mean((a − b)²) over every element (torch's mse_loss with reduction 'mean'). */
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  return mean(square(sub(a, b)));
}
