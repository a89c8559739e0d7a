// GELU as torch.nn.functional.gelu: the exact form x·Φ(x) = 0.5·x·(1 + erf(x/√2)) by default,
// composed from erf; or, with approximate 'tanh', a hand-written kernel of exactly Hugging
// Face's gelu_new (GPT-2's activation): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
import { packParams, grid } from '../gpu/params.ts';
import { Tensor, record } from '../tensor/tensor.ts';
import { add, erf, mul, scale } from './elementwise.ts';

export interface GeluOptions {
  /** 'none' (torch's default): the erf form; 'tanh': GPT-2's approximation. */
  approximate?: 'none' | 'tanh';
}

/** The options GPT-2 passes on every block, made once. */
export const GELU_TANH: GeluOptions = Object.freeze({ approximate: 'tanh' });

const WG = 256;
const CONSTANTS = Object.freeze({ GELU_WG: WG });

/** The vec4 kernels need the length to be a multiple of 4; others take the scalar ones. */
function launch(n: number): { forward: string; backward: string; count: number } {
  return n % 4 === 0 ? { forward: 'gelu_forward4', backward: 'gelu_backward4', count: n / 4 } : { forward: 'gelu_forward1', backward: 'gelu_backward1', count: n };
}

export function gelu(x: Tensor, options: GeluOptions = {}): Tensor {
  const approximate = options.approximate ?? 'none';
  if (approximate === 'none') return mul(scale(x, 0.5), add(erf(scale(x, Math.SQRT1_2)), 1));
  if (approximate !== 'tanh') throw new RangeError(`gelu: approximate must be 'none' or 'tanh', got '${String(approximate)}'`);
  const gpu = x.gpu;
  const { forward, backward, count } = launch(x.size);
  const y = Tensor.empty(gpu, x.shape, 'f32', 'gelu');
  gpu.dispatch({
    kernel: 'gelu',
    entry: forward,
    constants: CONSTANTS,
    params: packParams(count),
    bindings: [x.binding(), y.binding()],
    workgroups: grid(count, WG),
  });
  return record(y, [x], (dy) => {
    const dx = Tensor.empty(gpu, x.shape, 'f32', 'gelu dx');
    gpu.dispatch({
      kernel: 'gelu',
      entry: backward,
      constants: CONSTANTS,
      params: packParams(count),
      bindings: [x.binding(), dy.binding(), dx.binding()],
      workgroups: grid(count, WG),
    });
    return [dx];
  });
}
