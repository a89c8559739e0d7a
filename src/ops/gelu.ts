// GELU with the tanh approximation, exactly Hugging Face's gelu_new (GPT-2's activation):
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
import { packParams, grid } from '../gpu/params.js';
import { Tensor, record } from '../engine/tensor.js';

const WG = 256;

/** The vec4 kernels need the length to be a multiple of 4; others take the scalar ones. */
function launch(n: number): { suffix: '4' | '1'; count: number } {
  return n % 4 === 0 ? { suffix: '4', count: n / 4 } : { suffix: '1', count: n };
}

export function gelu(x: Tensor): Tensor {
  const gpu = x.gpu;
  const { suffix, count } = launch(x.size);
  const y = Tensor.empty(gpu, x.shape, 'f32', 'gelu');
  gpu.dispatch({
    kernel: 'gelu',
    entry: `gelu_forward${suffix}`,
    constants: { GELU_WG: WG },
    params: packParams(count),
    bindings: [x.binding(), y.binding()],
    workgroups: grid(count, WG),
  });
  return record(y, [x], (dy) => {
    const dx = Tensor.empty(gpu, x.shape, 'f32', 'gelu dx');
    gpu.dispatch({
      kernel: 'gelu',
      entry: `gelu_backward${suffix}`,
      constants: { GELU_WG: WG },
      params: packParams(count),
      bindings: [x.binding(), dy.binding(), dx.binding()],
      workgroups: grid(count, WG),
    });
    return [dx];
  });
}
