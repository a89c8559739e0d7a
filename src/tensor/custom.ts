// Custom ops: a user's WGSL compute shader as an op over tensors. It is registered like the
// built-in kernels (src/gpu/registry.ts) and launched through the same dispatch, so it is
// compiled and cached once, joins tidy() and CapturedStep, and, given a backward made of
// other ops (built-in or custom), joins autodiff. See docs/custom-kernels.md.
//
// The binding layout is fixed: @binding(0) the uniform Params struct (only when `params` is
// given), then the inputs at @binding(1..n) in call order, then the output at @binding(n + 1).
import { registerKernel } from '../gpu/registry.ts';
import { packParams, type F32 } from '../gpu/params.ts';
import { Tensor, record, shapeString, type DType, type Shape } from './tensor.ts';

export interface CustomOpSpec {
  /** The kernel's registry name: one WGSL source per name. */
  name: string;
  /** The WGSL module. Every binding the layout names must be used by the entry point. */
  wgsl: string;
  /** The entry point (default 'main'). */
  entry?: string;
  /** The output's shape and dtype (default f32) from the inputs; throw here to reject bad inputs. */
  output: (inputs: readonly Tensor[]) => { shape: Shape; dtype?: DType };
  /** The Params fields in order, u32 as numbers and f32 as f32(value); omitted, the kernel has no binding 0. */
  params?: (inputs: readonly Tensor[], output: Tensor) => (number | F32)[];
  /** Workgroups to dispatch for this output (grid() folds a long 1-D count into 2-D). */
  workgroups: (output: Tensor, inputs: readonly Tensor[]) => readonly [number, number?, number?];
  /**
   * The inputs' gradients from the output's, made of other ops, each shaped like its input;
   * null where `needs` is false or the input has none. Omitted, the op is not differentiable.
   */
  backward?: (grad: Tensor, inputs: readonly Tensor[], output: Tensor, needs: readonly boolean[]) => (Tensor | null)[];
}

/**
 * Makes a WGSL kernel an op: the returned function checks its inputs, allocates the output,
 * dispatches the kernel and records the backward on the tape. Registers the kernel now, so a
 * second op under the same name with other WGSL throws.
 */
export function customOp(spec: CustomOpSpec): (...inputs: Tensor[]) => Tensor {
  registerKernel(spec.name, spec.wgsl);
  const entry = spec.entry ?? 'main';
  return (...inputs: Tensor[]): Tensor => {
    if (inputs.length === 0) throw new RangeError(`${spec.name}: a custom op needs at least one input tensor`);
    const gpu = inputs[0]!.gpu;
    inputs.forEach((t, i) => {
      if (t.gpu !== gpu) throw new Error(`${spec.name}: input ${i} ${shapeString(t.shape)} lives on another Gpu than input 0`);
    });
    const { shape, dtype = 'f32' } = spec.output(inputs);
    const out = Tensor.empty(gpu, shape, dtype, spec.name);
    if (out.size > 0) {
      gpu.dispatch({
        kernel: spec.name,
        entry,
        ...(spec.params ? { params: packParams(...spec.params(inputs, out)) } : {}),
        bindings: [...inputs.map((t) => t.binding()), out.binding()],
        workgroups: spec.workgroups(out, inputs),
      });
    }
    const backward =
      spec.backward ??
      (() => {
        throw new Error(`${spec.name}: backward() reached a custom op defined without a backward`);
      });
    return record(out, inputs, (grad, needs) => backward(grad, inputs, out, needs));
  };
}
