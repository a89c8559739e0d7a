// The engine core and the method, for embedding in any WebGPU host (browser, Deno, Node):
// hand a GPUDevice to `new Gpu(device)`.
export { Gpu, GpuError, type Binding, type Dispatch } from './gpu/context.js';
export { Tensor, tensor, rawTensor, tidy, keep, noGrad, record, type Shape, type DType, type RawData } from './engine/tensor.js';
export { Adam } from './engine/adam.js';
export { add, sub, mul, div, scale, broadcastTo, sumToShape } from './ops/elementwise.js';
export { matmul } from './ops/matmul.js';
export { layerNorm } from './ops/layernorm.js';
export { gelu } from './ops/gelu.js';
export { softmax } from './ops/softmax.js';
export { attention, splitPast, type Past } from './ops/attention.js';
export { gatherRows, shardRows } from './ops/gather.js';
export { crossEntropy, bceWithLogits } from './ops/loss.js';
export { GPT2, type ModelPast, type PastOptions, type TokenBatch } from './gpt2/model.js';
export { parseConfig, type GPT2Config } from './gpt2/config.js';
export { loadCheckpoint, fingerprint, type GPT2HostWeights } from './gpt2/checkpoint.js';
export { parseSafetensors, encodeSafetensors } from './gpt2/safetensors.js';
export { GPT2Tokenizer } from './gpt2/tokenizer.js';
export { PromptClassifier, type Task } from './prompt/classifier.js';
export { train, predictLogits, type Example, type TrainOptions } from './prompt/train.js';
export { encodeCheckpoint, decodeCheckpoint } from './prompt/checkpoint.js';
export { classificationReport, multilabelReport, formatReport } from './metrics/classification.js';
export { pearson, correlationTable } from './metrics/correlation.js';
