// conv1d and conv2d: shapes that do not fit throw at the call, naming the shapes; a forward
// without gradients leaves no columns behind; the GPU kernel class (tiled matmuls) computes
// the same. Values and gradients against PyTorch are in the op suite (test/ops/suite/conv.ts),
// which runs the adapter's own kernel class.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, withKernelClass, expectClose } from '../helpers.ts';
import * as engine from '../../src/engine.ts';
import { convCases } from './suite/conv.ts';
import { runCase, describeFailure } from './suite/runner.ts';
import { tensor, type Shape } from '../../src/tensor/tensor.ts';
import { conv1d, conv2d, type Conv2dOptions } from '../../src/ops/conv.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const zeros = (shape: Shape) => tensor(gpu, new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);

describe('conv2d', () => {
  const throws = (x: Shape, w: Shape, bias: Shape | null, opts: Conv2dOptions, message: string) =>
    expect(() => conv2d(zeros(x), zeros(w), bias ? zeros(bias) : null, opts)).toThrow(message);

  it('names the shapes when the weight expects other input channels', () => {
    throws([2, 3, 5, 5], [8, 4, 3, 3], null, {}, 'conv2d: input [2, 3, 5, 5] and weight [8, 4, 3, 3]: weight expects 4·groups=4 input channels, got 3');
    throws([2, 6, 5, 5], [8, 2, 3, 3], null, { groups: 2 }, 'conv2d: input [2, 6, 5, 5] and weight [8, 2, 3, 3]: weight expects 2·groups=4 input channels, got 6');
  });

  it('rejects a kernel larger than the padded input, dilation counted', () => {
    throws([1, 1, 2, 2], [1, 1, 3, 3], null, {}, 'conv2d: input [1, 1, 2, 2] and weight [1, 1, 3, 3]: the kernel (3×3 with dilation) is larger than the padded input (2×2)');
    throws([1, 1, 5, 5], [1, 1, 3, 3], null, { dilation: [1, 3] }, 'the kernel (3×7 with dilation) is larger than the padded input (5×5)');
    expect(conv2d(zeros([1, 1, 2, 2]), zeros([1, 1, 3, 3]), null, { padding: 1 }).shape).toEqual([1, 1, 2, 2]);
  });

  it('rejects channels that groups do not divide', () => {
    throws([1, 3, 5, 5], [4, 1, 3, 3], null, { groups: 2 }, 'conv2d: input [1, 3, 5, 5] and weight [4, 1, 3, 3]: input channels 3 are not divisible by groups=2');
    throws([1, 4, 5, 5], [3, 2, 3, 3], null, { groups: 2 }, 'output channels 3 are not divisible by groups=2');
  });

  it('rejects inputs and weights that are not 4-D, and a bias of the wrong size', () => {
    throws([3, 5, 5], [4, 3, 3, 3], null, {}, 'conv2d: input [3, 5, 5] and weight [4, 3, 3, 3]: input must be 4-D [N, C, H, W]');
    throws([1, 3, 5, 5], [4, 3, 3], null, {}, 'weight must be 4-D [out, in/groups, kh, kw]');
    throws([1, 3, 5, 5], [4, 3, 3, 3], [3], {}, 'conv2d: input [1, 3, 5, 5] and weight [4, 3, 3, 3]: bias [3] must be [4]');
  });

  it('rejects strides, paddings, dilations and groups that are not counts', () => {
    throws([1, 1, 5, 5], [1, 1, 3, 3], null, { stride: 0 }, 'conv2d: stride must be a positive integer or a pair of them, got 0');
    throws([1, 1, 5, 5], [1, 1, 3, 3], null, { padding: [1, -1] }, 'padding must be a non-negative integer or a pair of them, got [1,-1]');
    throws([1, 1, 5, 5], [1, 1, 3, 3], null, { dilation: 1.5 }, 'dilation must be a positive integer');
    throws([1, 1, 5, 5], [1, 1, 3, 3], null, { groups: 0 }, 'groups must be a positive integer, got 0');
  });

  it('rejects a batch past the workgroups a dispatch can have in one dimension', () => {
    const n = gpu.device.limits.maxComputeWorkgroupsPerDimension + 1;
    throws([n, 1, 1, 1], [1, 1, 1, 1], null, {}, `the batch (${n}), C·KH·KW (1) and output channels (1) must each be at most ${n - 1}`);
  });

  it('matches PyTorch with the GPU kernel class too (tiled matmuls; NaN-poisoned buffers)', async () => {
    // Sizes on the vec4 grid take the tiled kernels, odd ones the register-blocked fallback.
    const picked = convCases().filter((c) => /vec4 grid|depthwise, channel multiplier/.test(c.name));
    expect(picked).toHaveLength(2);
    await withKernelClass(gpu, 'gpu', async () => {
      for (const c of picked) {
        const result = await runCase(engine, gpu, c);
        expect(result.ok, describeFailure(result)).toBe(true);
      }
    });
  });

  it("gives a frozen weight no gradient and the input PyTorch's (its columns freed at once)", async () => {
    const c = convCases().find((k) => /vec4 grid/.test(k.name))!;
    const [xData, wData, bData] = c.inputs.map((i) => Float32Array.from(i.data));
    const dy = tensor(gpu, c.expected!.outputGradient, c.shape);
    const x = tensor(gpu, xData!, c.inputs[0]!.shape, { requiresGrad: true });
    const w = tensor(gpu, wData!, c.inputs[1]!.shape);
    const b = tensor(gpu, bData!, c.inputs[2]!.shape);
    conv2d(x, w, b, { padding: 1 }).backward(dy);
    expect(w.grad).toBeNull();
    expectClose('dx', await x.grad!.read(), c.expected!.gradients[0]!);
  });

  it('frees its columns and partial products when nothing needs gradients', async () => {
    const x = zeros([2, 3, 9, 9]);
    const w = zeros([4, 3, 3, 3]);
    const depthwise = zeros([6, 1, 3, 3]);
    const b = zeros([4]);
    const before = gpu.memory().inUse;
    conv2d(x, w, b, { padding: 1 }).dispose();
    conv2d(x, depthwise, null, { groups: 3 }).dispose();
    const x1 = zeros([2, 3, 9]);
    const w1 = zeros([4, 3, 3]);
    const before1 = gpu.memory().inUse;
    conv1d(x1, w1, b, { padding: 1 }).dispose();
    expect(gpu.memory().inUse).toBe(before1);
    x1.dispose();
    w1.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });
});

describe('conv1d', () => {
  it('names its own 3-D shapes in errors', () => {
    expect(() => conv1d(zeros([2, 3, 5]), zeros([8, 4, 3]))).toThrow('conv1d: input [2, 3, 5] and weight [8, 4, 3]: weight expects 4·groups=4 input channels, got 3');
    expect(() => conv1d(zeros([2, 3, 2]), zeros([8, 3, 3]))).toThrow('conv1d: input [2, 3, 2] and weight [8, 3, 3]: the kernel (3 with dilation) is larger than the padded input (2)');
    expect(() => conv1d(zeros([2, 3, 5, 5]), zeros([8, 3, 3]))).toThrow('conv1d: input [2, 3, 5, 5] and weight [8, 3, 3]: input must be 3-D [N, C, L]');
    expect(() => conv1d(zeros([2, 3, 5]), zeros([8, 3, 3]), zeros([7]))).toThrow('bias [7] must be [8]');
  });

  it('takes numbers only for stride, padding and dilation', () => {
    const pairStride = { stride: [1, 2] } as unknown as { stride: number };
    expect(() => conv1d(zeros([1, 1, 5]), zeros([1, 1, 3]), null, pairStride)).toThrow('conv1d: stride must be a number, got [1,2]');
  });
});
