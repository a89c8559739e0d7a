// The engine core and the method, for embedding in any WebGPU host (browser, Deno, Node):
// hand a GPUDevice to `new Gpu(device)`.
export { Gpu, GpuError, type Binding, type Dispatch } from './gpu/context.ts';
export { registerKernel, hasKernel, kernelNames, type KernelName } from './gpu/registry.ts';
export { Tensor, tensor, rawTensor, tidy, keep, noGrad, record, type Shape, type DType, type RawData } from './engine/tensor.ts';
export { Adam } from './engine/adam.ts';
export { CapturedStep, type CaptureState } from './engine/capture.ts';
export { add, sub, mul, div, scale, broadcastTo, sumToShape } from './ops/elementwise.ts';
export { matmul } from './ops/matmul.ts';
export { layerNorm } from './ops/layernorm.ts';
export { gelu } from './ops/gelu.ts';
export { softmax } from './ops/softmax.ts';
export { attention, splitPast, type Past } from './ops/attention.ts';
export { gatherRows, shardRows } from './ops/gather.ts';
export { crossEntropy, bceWithLogits } from './ops/loss.ts';
export { GPT2, type ModelPast, type PastOptions, type TokenBatch } from './gpt2/model.ts';
export { parseConfig, type GPT2Config } from './gpt2/config.ts';
export { loadCheckpoint, fingerprint, type GPT2Checkpoint, type GPT2HostWeights } from './gpt2/checkpoint.ts';
export { parseSafetensors, encodeSafetensors, type SafetensorsFile } from './gpt2/safetensors.ts';
export { GPT2Tokenizer } from './gpt2/tokenizer.ts';
export { PromptClassifier, type Task, type ClassifierParams } from './prompt/classifier.ts';
export { train, predictLogits, type Example, type TaskLoss, type TrainOptions } from './prompt/train.ts';
export { fit, freshParams, layoutTasks, toExamples, type Tokenizer, type FitTask, type FitOptions, type FitResult } from './prompt/fit.ts';
export { classify, predictionRows, textExamples, type Predictions } from './prompt/predict.ts';
export { evaluateTask, formatEvaluation, predictedLabels, crossTaskTable, type TaskEvaluation, type LabelCorrelation, type CrossTaskChoice } from './prompt/evaluate.ts';
export { runStudy, studyData, STUDY_DATA, STUDY_EPOCHS, PUBLISHED, EMOTIONS, type StudyData, type StudyOptions, type StudyResult, type StudyStage, type StudyProgress, type PromptStore } from './prompt/study.ts';
export { studyMarkdown, type ReportContext } from './prompt/study-report.ts';
export { defaultTask, DEFAULT_MODEL_DIR, DEFAULT_TRAINING, type DefaultTask, type ReadShipped } from './prompt/defaults.ts';
export { compareWithFixture, goldenReport, GOLDEN_TOLERANCE, type GoldenResult, type GoldenReport, type ReadFixture } from './prompt/golden.ts';
export { openWebGpu, type WebGpuOptions } from './gpu/open.ts';
export { encodeCheckpoint, decodeCheckpoint, checkSameModel, type PromptCheckpoint, type ModelIdentity } from './prompt/checkpoint.ts';
export { parseTable, type Table } from './data/table.ts';
export { toDataset, spreadSubset, withLabelColumns, type Dataset, type DatasetSpec } from './data/dataset.ts';
export { makeDemoDataset } from './data/demo.ts';
export { classificationReport, multilabelReport, formatReport } from './metrics/classification.ts';
export { pearson, correlationTable } from './metrics/correlation.ts';
// Optimizers and losses
export { AdamW, globalGradNorm, type AdamOptions, type AdamState } from './engine/adam.ts';
export { Optimizer, SGD, clipGradNorm, clipCoefficient, type SGDOptions, type SGDState, type StepOptions } from './engine/optim.ts';
export { type CrossEntropyOptions } from './ops/loss.ts';
// Elementwise, creation and reduction ops
export {
  neg, exp, log, sqrt, rsqrt, reciprocal, abs, sin, cos, tanh, sigmoid, relu, silu, square,
  pow, maximum, minimum, eq, ne, lt, le, gt, ge, where, broadcastShape, UNARY_OPS, BINARY_OPS,
  type UnaryOpName, type BinaryOpName, type BinaryOp,
} from './ops/elementwise.ts';
export { zeros, ones, full, arange, rand, randn, type CreationOptions, type RandomOptions } from './ops/creation.ts';
export { sum, mean, max, min, logsumexp, argmax, type Dims } from './ops/reduce.ts';
export { logSoftmax, rmsNorm, mseLoss } from './ops/derived.ts';
// Movement ops, general matmul and attention
export { permute, transpose, expand, narrow, pad, cat, stack, indexSelect } from './ops/movement.ts';
export { type MatmulOptions } from './ops/matmul.ts';
export { scaledDotProductAttention, type AttentionOptions } from './ops/sdpa.ts';
