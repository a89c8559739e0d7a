// gpt2-prompt/engine: the WebGPU autodiff engine alone, for any project that computes on
// tensors — a device wrapper, the kernel registry, tensors with a tape, custom WGSL ops,
// optimizers, captured steps, the built-in ops, and modules (nn) with state dicts in
// safetensors. Nothing of GPT-2, the tokenizer, data readers or checkpoints
// (test/tensor/entry.test.ts keeps it so). Hand it a GPUDevice with `new Gpu(device)`, or open
// one with `openWebGpu()`.
export { Gpu, GpuError, type Binding, type Dispatch, type GpuOptions } from './gpu/context.ts';
export { openWebGpu, type WebGpuOptions } from './gpu/open.ts';
export { registerKernel, hasKernel, kernelNames, type KernelName } from './gpu/registry.ts';
export { packParams, f32, grid, type F32 } from './gpu/params.ts';
export type { KernelFeature } from './gpu/features.ts';
export type { KernelClass } from './gpu/kernel-class.ts';
export type { MemoryStats } from './gpu/pool.ts';
export {
  Tensor,
  tensor,
  rawTensor,
  fromGpuBuffer,
  tidy,
  keep,
  noGrad,
  isGradEnabled,
  record,
  numel,
  shapeString,
  f16Bits,
  f16Values,
  BYTES_PER_ELEMENT,
  type Shape,
  type DType,
  type RawData,
  type BackwardFn,
  type BufferRange,
  type GpuBufferOptions,
} from './tensor/tensor.ts';
export { customOp, type CustomOpSpec } from './tensor/custom.ts';
export { Adam, AdamW, type AdamOptions, type AdamState } from './optim/adam.ts';
export { Optimizer, SGD, clipGradNorm, clipCoefficient, globalGradNorm, type SGDOptions, type SGDState, type StepOptions } from './optim/optim.ts';
export { CapturedStep, type CaptureState } from './tensor/capture.ts';
export {
  neg, exp, log, sqrt, rsqrt, reciprocal, abs, sin, cos, tanh, sigmoid, relu, silu, square,
  add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, where,
  scale, broadcastTo, broadcastShape, sumToShape, UNARY_OPS, BINARY_OPS,
  type UnaryOpName, type BinaryOpName, type BinaryOp,
} from './ops/elementwise.ts';
export { zeros, ones, full, arange, rand, randn, type CreationOptions, type RandomOptions } from './ops/creation.ts';
export { sum, mean, max, min, logsumexp, argmax, type Dims } from './ops/reduce.ts';
export { logSoftmax, rmsNorm, mseLoss } from './ops/derived.ts';
export { permute, transpose, expand, narrow, pad, cat, stack, indexSelect } from './ops/movement.ts';
export { scaledDotProductAttention, type AttentionOptions } from './ops/sdpa.ts';
export { matmul, type MatmulOptions } from './ops/matmul.ts';
export { layerNorm } from './ops/layernorm.ts';
export { gelu } from './ops/gelu.ts';
export { softmax } from './ops/softmax.ts';
export { attention, splitPast, type Past } from './ops/attention.ts';
export { gatherRows, shardRows } from './ops/gather.ts';
export { crossEntropy, bceWithLogits, type CrossEntropyOptions } from './ops/loss.ts';
export * as nn from './nn/index.ts';
export { saveSafetensors, loadSafetensors, type SaveOptions, type LoadOptions } from './nn/state-dict.ts';
export type { StateDict, StateDictLike, LoadResult } from './nn/module.ts';
