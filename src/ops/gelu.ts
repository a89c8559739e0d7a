// GELU with the tanh approximation, exactly Hugging Face's gelu_new (GPT-2's activation):
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
import { packParams, grid } from '../gpu/params.ts';
import { Tensor, record } from '../tensor/tensor.ts';

const WG = 256;
const CONSTANTS = Object.freeze({ GELU_WG: WG });

/** The vec4 kernels need the length to be a multiple of 4; others take the scalar ones. */
function launch(n: number): { forward: string; backward: string; count: number } {
  return n % 4 === 0 ? { forward: 'gelu_forward4', backward: 'gelu_backward4', count: n / 4 } : { forward: 'gelu_forward1', backward: 'gelu_backward1', count: n };
}

export function gelu(x: Tensor): Tensor {
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
