// torch.nn.functional.batch_norm. Training: one kernel per direction (kernels/batchnorm.wgsl),
// a workgroup per channel, which also updates the running statistics in place. Evaluation:
// composed of elementwise ops, whose gradients are theirs.
import { packParams, f32 } from '../gpu/params.ts';
import { Tensor, record, shapeString } from '../tensor/tensor.ts';
import { add, mul, rsqrt, sub } from './elementwise.ts';

export interface BatchNormOptions {
  /** Normalise with the batch's statistics and update the running ones (default false: use the running ones). */
  training?: boolean;
  /** Weight of the batch in the running statistics' update (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
}

/**
 * torch.nn.functional.batch_norm over x [N, C] or [N, C, ...] per channel C. Training: x is
 * normalised with the batch's biased variance, and runningMean / runningVar (either may be
 * null) are updated in place with momentum, the variance unbiased (n/(n − 1)). Not training: the
 * running statistics normalise. weight and bias [C] may be null. Gradients reach x, weight and bias.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  options: BatchNormOptions = {},
): Tensor {
  const { training = false, momentum = 0.1, eps = 1e-5 } = options;
  if (x.dtype !== 'f32' || x.shape.length < 2) throw new RangeError(`batchNorm: needs an f32 [N, C] or [N, C, ...] input, got ${x.dtype} ${shapeString(x.shape)}`);
  const c = x.shape[1]!;
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t && (t.dtype !== 'f32' || t.shape.length !== 1 || t.shape[0] !== c)) {
      throw new RangeError(`batchNorm: ${name} must be f32 [${c}] for input ${shapeString(x.shape)}, got ${t.dtype} ${shapeString(t.shape)}`);
    }
  }
  if (training) {
    const count = x.size / c;
    if (count <= 1) throw new RangeError(`batchNorm: training needs more than 1 value per channel, got input ${shapeString(x.shape)}`);
    return trainingBatchNorm(x, runningMean, runningVar, weight, bias, momentum, eps);
  }
  if (!runningMean || !runningVar) throw new RangeError('batchNorm: evaluation (training false) needs runningMean and runningVar');
  // Per-channel tensors broadcast against x as [1, C, 1, ...].
  const channelShape = x.shape.map((n, i) => (i === 1 ? n : 1));
  const perChannel = (t: Tensor) => t.reshape(channelShape);
  const normalized = mul(sub(x, perChannel(runningMean)), rsqrt(add(perChannel(runningVar), eps)));
  const scaled = weight ? mul(normalized, perChannel(weight)) : normalized;
  return bias ? add(scaled, perChannel(bias)) : scaled;
}

/** The training forward and its recorded backward (kernels/batchnorm.wgsl). */
function trainingBatchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null, bias: Tensor | null, momentum: number, eps: number): Tensor {
  const gpu = x.gpu;
  const [n, c] = x.shape as [number, number];
  const s = x.size / (n * c);
  const limit = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (c > limit) throw new RangeError(`batchNorm: ${c} channels in ${shapeString(x.shape)} exceed the device's ${limit} workgroups per dimension`);
  const m = n * s;
  const flags = (weight ? 1 : 0) | (bias ? 2 : 0) | (runningMean ? 4 : 0) | (runningVar ? 8 : 0);
  const params = packParams(n, c, s, flags, f32(eps), f32(momentum), f32(m / (m - 1)), 0);
  const y = Tensor.empty(gpu, x.shape, 'f32', 'batchNorm');
  const stats = Tensor.empty(gpu, [2 * c], 'f32', 'batchNorm stats');
  // An absent running statistic still takes a writable binding of its own; nothing touches it.
  const scratch: Tensor[] = [];
  const orScratch = (t: Tensor | null) => t ?? (scratch[scratch.length] = Tensor.empty(gpu, [c], 'f32', 'batchNorm no running statistic'));
  const [rm, rv] = [orScratch(runningMean), orScratch(runningVar)];
  gpu.dispatch({
    kernel: 'batchnorm',
    entry: 'bn_forward_train',
    params,
    bindings: [x.binding(), (weight ?? x).binding(), (bias ?? x).binding(), y.binding(), stats.binding(), rm.binding(), rv.binding()],
    workgroups: [c, 1, 1],
  });
  // Safe before the dispatch runs: any later use of the buffers is encoded after it (pool.ts).
  for (const t of scratch) t.dispose();
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const out = record(y, inputs, (dy, needs) => {
    const dx = Tensor.empty(gpu, x.shape, 'f32', 'batchNorm dx');
    const dWeight = Tensor.empty(gpu, [c], 'f32', 'batchNorm dweight');
    const dBias = Tensor.empty(gpu, [c], 'f32', 'batchNorm dbias');
    gpu.dispatch({
      kernel: 'batchnorm',
      entry: 'bn_backward_train',
      params,
      bindings: [x.binding(), (weight ?? x).binding(), dy.binding(), stats.binding(), dx.binding(), dWeight.binding(), dBias.binding()],
      workgroups: [c, 1, 1],
    });
    const grads: (Tensor | null)[] = [needs[0] ? dx : null];
    if (weight) grads.push(needs[1] ? dWeight : null);
    if (bias) grads.push(needs[inputs.length - 1] ? dBias : null);
    for (const t of [dx, dWeight, dBias]) if (!grads.includes(t)) t.dispose();
    return grads;
  });
  // Nothing will run backward: the statistics are not needed past the kernel.
  if (!out.node) stats.dispose();
  return out;
}
