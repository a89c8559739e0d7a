// The layers of a convolutional network, as torch.nn's: Conv1d/Conv2d, BatchNorm1d/2d,
// MaxPool2d/AvgPool2d and Dropout, over the ops of the same names (src/ops). Names,
// constructor arguments, initial distributions and state-dict keys follow PyTorch, so a torch
// state dict loads strictly and a saved one loads back into torch.
import type { Gpu } from '../gpu/context.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { ones, zeros } from '../ops/creation.ts';
import { conv1d, conv2d } from '../ops/conv.ts';
import { batchNorm } from '../ops/batchnorm.ts';
import { maxPool2d, avgPool2d } from '../ops/pool.ts';
import { dropout } from '../ops/dropout.ts';
import { seededRandom } from '../util/random.ts';
import { Module } from './module.ts';
import { checkSize, freshSeed, uniform, type InitOptions } from './layers.ts';

type Pair = number | readonly [number, number];

export interface ConvOptions<Size> extends InitOptions {
  stride?: Size;
  padding?: Size;
  dilation?: Size;
  groups?: number;
  /** A learned bias per output channel; true by default. */
  bias?: boolean;
}

/** Weight [out, in/groups, ...kernel] and bias [out], as torch's _ConvNd: kaiming_uniform_(a=√5), i.e. U(±1/√fan_in) for both. */
abstract class ConvNd extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly groups: number;

  constructor(layer: string, gpu: Gpu, readonly inChannels: number, readonly outChannels: number, kernel: readonly number[], options: ConvOptions<unknown>) {
    super();
    checkSize(layer, 'inChannels', inChannels);
    checkSize(layer, 'outChannels', outChannels);
    for (const k of kernel) checkSize(layer, 'kernelSize', k);
    this.groups = options.groups ?? 1;
    checkSize(layer, 'groups', this.groups);
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new RangeError(`${layer}: inChannels ${inChannels} and outChannels ${outChannels} must be divisible by groups=${this.groups}`);
    }
    const fanIn = (inChannels / this.groups) * kernel.reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    const random = seededRandom(options.seed ?? freshSeed());
    this.weight = this.registerParameter('weight', uniform(gpu, [outChannels, inChannels / this.groups, ...kernel], bound, random));
    this.bias = this.registerParameter('bias', options.bias === false ? null : uniform(gpu, [outChannels], bound, random));
  }
}

/** torch.nn.Conv1d: x [N, C, L] → [N, outChannels, LO]. */
export class Conv1d extends ConvNd {
  readonly kernelSize: number;
  readonly options: ConvOptions<number>;

  constructor(gpu: Gpu, inChannels: number, outChannels: number, kernelSize: number, options: ConvOptions<number> = {}) {
    super('Conv1d', gpu, inChannels, outChannels, [kernelSize], options);
    this.kernelSize = kernelSize;
    this.options = options;
  }

  override forward(x: Tensor): Tensor {
    const { stride, padding, dilation } = this.options;
    return conv1d(x, this.weight, this.bias, { stride, padding, dilation, groups: this.groups });
  }
}

/** torch.nn.Conv2d: x [N, C, H, W] → [N, outChannels, HO, WO]; kernelSize, stride, padding, dilation one number or [h, w]. */
export class Conv2d extends ConvNd {
  readonly kernelSize: readonly [number, number];
  readonly options: ConvOptions<Pair>;

  constructor(gpu: Gpu, inChannels: number, outChannels: number, kernelSize: Pair, options: ConvOptions<Pair> = {}) {
    const kernel: [number, number] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : [kernelSize[0], kernelSize[1]];
    super('Conv2d', gpu, inChannels, outChannels, kernel, options);
    this.kernelSize = kernel;
    this.options = options;
  }

  override forward(x: Tensor): Tensor {
    const { stride, padding, dilation } = this.options;
    return conv2d(x, this.weight, this.bias, { stride, padding, dilation, groups: this.groups });
  }
}

export interface BatchNormOptions {
  /** Weight of each batch in the running statistics (default 0.1). torch's momentum=None (a cumulative average) is not supported. */
  momentum?: number | null;
  eps?: number;
  /** Learned weight (ones) and bias (zeros) per channel; true by default. */
  affine?: boolean;
  /** Keep running_mean, running_var and num_batches_tracked, used in evaluation; true by default. Without them every forward uses the batch's statistics. */
  trackRunningStats?: boolean;
}

/**
 * torch's _BatchNorm: weight, bias, running_mean, running_var and num_batches_tracked (u32 here,
 * saved as int64). In training the batch's statistics normalise and the running ones, and the
 * counter, are updated in place; in evaluation the running ones normalise.
 */
abstract class BatchNormNd extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  readonly momentum: number;
  readonly eps: number;

  constructor(private readonly layer: string, private readonly ranks: readonly number[], gpu: Gpu, readonly numFeatures: number, options: BatchNormOptions) {
    super();
    checkSize(layer, 'numFeatures', numFeatures);
    const { momentum = 0.1, eps = 1e-5, affine = true, trackRunningStats = true } = options;
    if (momentum === null) throw new RangeError(`${layer}: momentum=null (torch's cumulative moving average) is not supported; give a number in [0, 1]`);
    if (!(momentum >= 0 && momentum <= 1)) throw new RangeError(`${layer}: momentum must be in [0, 1], got ${momentum}`);
    if (!(eps > 0)) throw new RangeError(`${layer}: eps must be positive, got ${eps}`);
    this.momentum = momentum;
    this.eps = eps;
    this.weight = this.registerParameter('weight', affine ? ones(gpu, [numFeatures]) : null);
    this.bias = this.registerParameter('bias', affine ? zeros(gpu, [numFeatures]) : null);
    this.runningMean = this.registerBuffer('running_mean', trackRunningStats ? zeros(gpu, [numFeatures]) : null);
    this.runningVar = this.registerBuffer('running_var', trackRunningStats ? ones(gpu, [numFeatures]) : null);
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', trackRunningStats ? zeros(gpu, [], { dtype: 'u32' }) : null);
  }

  override forward(x: Tensor): Tensor {
    if (!this.ranks.includes(x.shape.length) || x.shape[1] !== this.numFeatures) {
      const layouts = this.ranks.map((r) => (r === 2 ? '[N, C]' : r === 3 ? '[N, C, L]' : '[N, C, H, W]')).join(' or ');
      throw new RangeError(`${this.layer}(${this.numFeatures}): input ${shapeString(x.shape)} must be ${layouts} with C = ${this.numFeatures}`);
    }
    // As torch: without running statistics the batch's normalise in evaluation too.
    const training = this.training || !this.runningMean;
    const y = batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, { training, momentum: this.momentum, eps: this.eps });
    const counter = this.numBatchesTracked;
    if (this.training && counter) {
      // Counted once batchNorm has accepted the batch; in place on the GPU (kernels/batchnorm.wgsl), so a step never waits to read it.
      counter.gpu.dispatch({ kernel: 'batchnorm', entry: 'count_batch', bindings: [counter.binding()], workgroups: [1, 1, 1] });
    }
    return y;
  }
}

/** torch.nn.BatchNorm1d over x [N, C] or [N, C, L]. */
export class BatchNorm1d extends BatchNormNd {
  constructor(gpu: Gpu, numFeatures: number, options: BatchNormOptions = {}) {
    super('BatchNorm1d', [2, 3], gpu, numFeatures, options);
  }
}

/** torch.nn.BatchNorm2d over x [N, C, H, W]. */
export class BatchNorm2d extends BatchNormNd {
  constructor(gpu: Gpu, numFeatures: number, options: BatchNormOptions = {}) {
    super('BatchNorm2d', [4], gpu, numFeatures, options);
  }
}

export interface PoolOptions {
  /** Default: the kernel size. */
  stride?: Pair;
  /** Default 0; at most half the kernel. */
  padding?: Pair;
}

/** torch.nn.MaxPool2d (dilation 1, ceil_mode false). */
export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: PoolOptions = {}) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return maxPool2d(x, { kernelSize: this.kernelSize, ...this.options });
  }
}

/** torch.nn.AvgPool2d (count_include_pad true, ceil_mode false). */
export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: PoolOptions = {}) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return avgPool2d(x, { kernelSize: this.kernelSize, ...this.options });
  }
}

/**
 * torch.nn.Dropout: in training zeroes each element with probability p and scales the rest by
 * 1/(1 − p); identity in evaluation. Each training call draws a fresh mask from the seed and the
 * number of calls so far, so a run is reproducible from its seed.
 */
export class Dropout extends Module {
  readonly seed: number;
  #calls = 0;

  constructor(readonly p = 0.5, options: InitOptions = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: probability p must be in [0, 1], got ${p}`);
    this.seed = (options.seed ?? freshSeed()) >>> 0;
  }

  override forward(x: Tensor): Tensor {
    if (!this.training) return dropout(x, this.p, { training: false, seed: 0 });
    // A golden-ratio step per call: consecutive calls get unrelated masks from the kernel's hash.
    const seed = (this.seed + Math.imul(++this.#calls, 0x9e3779b9)) >>> 0;
    return dropout(x, this.p, { seed });
  }
}
