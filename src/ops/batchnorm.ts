// torch.nn.functional.batch_norm, composed from the reductions and elementwise ops: its
// gradients (through the batch statistics in training) are theirs, so it needs no kernel. The
// statistics are two-pass (mean, then the mean of squared deviations), as layerNorm's.
import { Tensor, noGrad, shapeString, tidy } from '../tensor/tensor.ts';
import { add, mul, rsqrt, scale, square, sub } from './elementwise.ts';
import { mean } from './reduce.ts';

export interface BatchNormOptions {
  /** Normalise with the batch's statistics and update the running ones (default false: use the running ones). */
  training?: boolean;
  /** Weight of the batch in the running statistics' update (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
}

/** running ← (1 − momentum)·running + momentum·(batch·factor), written into running's own buffer. */
function updateInPlace(running: Tensor, batch: Tensor, momentum: number, factor = 1): void {
  noGrad(() =>
    tidy(() => {
      const statistic = factor === 1 ? batch : scale(batch, factor);
      const next = add(scale(running, 1 - momentum), scale(statistic.reshape(running.shape), momentum));
      running.gpu.copy(next.binding(), running.binding());
    }),
  );
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
  // Per-channel tensors broadcast against x as [1, C, 1, ...].
  const channelShape = x.shape.map((n, i) => (i === 1 ? n : 1));
  const perChannel = (t: Tensor) => t.reshape(channelShape);
  const dims = x.shape.map((_, i) => i).filter((i) => i !== 1);
  let normalized: Tensor;
  if (training) {
    const count = x.size / c;
    if (count <= 1) throw new RangeError(`batchNorm: training needs more than 1 value per channel, got input ${shapeString(x.shape)}`);
    const batchMean = mean(x, dims, true);
    const centered = sub(x, batchMean);
    const batchVar = mean(square(centered), dims, true);
    normalized = mul(centered, rsqrt(add(batchVar, eps)));
    if (runningMean) updateInPlace(runningMean, batchMean, momentum);
    if (runningVar) updateInPlace(runningVar, batchVar, momentum, count / (count - 1));
  } else {
    if (!runningMean || !runningVar) throw new RangeError('batchNorm: evaluation (training false) needs runningMean and runningVar');
    normalized = mul(sub(x, perChannel(runningMean)), rsqrt(add(perChannel(runningVar), eps)));
  }
  const scaled = weight ? mul(normalized, perChannel(weight)) : normalized;
  return bias ? add(scaled, perChannel(bias)) : scaled;
}
