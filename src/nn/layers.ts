// Layers as torch.nn's, with PyTorch's parameter names, shapes and initial distributions.
// Parameters are drawn on the host from our seeded generator (src/util/random.ts), so a seed
// gives the same model on every device; without a seed each model is drawn afresh.
import type { Gpu } from '../gpu/context.ts';
import { Tensor, tensor, keep, numel, shapeString } from '../tensor/tensor.ts';
import { ones, zeros, randn } from '../ops/creation.ts';
import { relu, silu, tanh, sigmoid } from '../ops/elementwise.ts';
import { gelu, type GeluOptions } from '../ops/gelu.ts';
import { layerNorm } from '../ops/layernorm.ts';
import { rmsNorm } from '../ops/derived.ts';
import { matmul } from '../ops/matmul.ts';
import { embedding } from '../ops/movement.ts';
import { seededRandom } from '../util/random.ts';
import { Module } from './module.ts';

export interface InitOptions {
  /** Seed of the initial values; by default a fresh one each time. */
  seed?: number;
}

export const freshSeed = () => Math.floor(Math.random() * 2 ** 32);

/** U(−bound, bound) values of `shape`, from `random`. */
export function uniform(gpu: Gpu, shape: number[], bound: number, random: () => number): Tensor {
  const values = Float32Array.from({ length: numel(shape) }, () => (2 * random() - 1) * bound);
  return tensor(gpu, values, shape);
}

export function checkSize(layer: string, what: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${layer}: ${what} must be a positive integer, got ${n}`);
}

/** y = x Wᵀ + b, as torch.nn.Linear: weight [out, in], bias [out]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(gpu: Gpu, readonly inFeatures: number, readonly outFeatures: number, options: InitOptions & { bias?: boolean } = {}) {
    super();
    checkSize('Linear', 'inFeatures', inFeatures);
    checkSize('Linear', 'outFeatures', outFeatures);
    // torch: kaiming_uniform_(a=√5) on the weight, which is U(±1/√in); the bias U(±1/√in) too.
    const random = seededRandom(options.seed ?? freshSeed());
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', uniform(gpu, [outFeatures, inFeatures], bound, random));
    this.bias = this.registerParameter('bias', options.bias === false ? null : uniform(gpu, [outFeatures], bound, random));
  }

  override forward(x: Tensor): Tensor {
    if (x.shape.at(-1) !== this.inFeatures) throw new RangeError(`Linear(${this.inFeatures}, ${this.outFeatures}): input ${shapeString(x.shape)} must end in ${this.inFeatures}`);
    return matmul(x, this.weight, { transB: true, bias: this.bias ?? undefined });
  }
}

/** A lookup table, as torch.nn.Embedding: weight [num, dim] from N(0, 1); ids of any shape give [...ids, dim]. */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(gpu: Gpu, readonly numEmbeddings: number, readonly embeddingDim: number, options: InitOptions = {}) {
    super();
    checkSize('Embedding', 'numEmbeddings', numEmbeddings);
    checkSize('Embedding', 'embeddingDim', embeddingDim);
    this.weight = this.registerParameter('weight', randn(gpu, [numEmbeddings, embeddingDim], { seed: options.seed ?? freshSeed() }));
  }

  /** ids: a u32 tensor of any shape, or host ids (checked against numEmbeddings). */
  override forward(ids: Tensor | Uint32Array): Tensor {
    return embedding(ids, this.weight);
  }
}

/** torch's normalized_shape: only the last dim is normalized here (the layerNorm/rmsNorm ops'). */
function lastDim(layer: string, normalizedShape: number | readonly number[]): number {
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
  if (shape.length !== 1) throw new RangeError(`${layer}: normalizedShape ${shapeString(shape)} is not supported; only the last dim is normalized (pass one size)`);
  checkSize(layer, 'normalizedShape', shape[0]!);
  return shape[0]!;
}

export interface NormOptions {
  eps?: number;
  /** Learned per-element weight (and bias for LayerNorm); true by default. */
  elementwiseAffine?: boolean;
}

/**
 * Constant ones/zeros standing in for absent affine parameters: the ops take a weight. They
 * are not state (torch has none), so they are not registered; dispose() frees them.
 */
abstract class Norm extends Module {
  protected readonly constants: Tensor[] = [];

  protected affine(gpu: Gpu, name: string, n: number, affine: boolean, fill: 0 | 1): Tensor {
    const t = fill === 1 ? ones(gpu, [n]) : zeros(gpu, [n]);
    if (affine) return this.registerParameter(name, t);
    this.constants.push(keep(t));
    return t;
  }

  override dispose(): void {
    super.dispose();
    for (const t of this.constants) t.dispose();
  }
}

/** torch.nn.LayerNorm over the last dim: weight ones, bias zeros. */
export class LayerNorm extends Norm {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly eps: number;

  constructor(gpu: Gpu, normalizedShape: number | readonly number[], options: NormOptions = {}) {
    super();
    const n = lastDim('LayerNorm', normalizedShape);
    const affine = options.elementwiseAffine ?? true;
    this.eps = options.eps ?? 1e-5;
    this.weight = this.affine(gpu, 'weight', n, affine, 1);
    this.bias = this.affine(gpu, 'bias', n, affine, 0);
  }

  override forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** torch.nn.RMSNorm over the last dim: weight ones; eps by default float32's machine epsilon (torch's finfo(dtype).eps for eps=None). */
export class RMSNorm extends Norm {
  readonly weight: Tensor;
  readonly eps: number;

  constructor(gpu: Gpu, normalizedShape: number | readonly number[], options: NormOptions = {}) {
    super();
    const n = lastDim('RMSNorm', normalizedShape);
    this.eps = options.eps ?? 2 ** -23;
    this.weight = this.affine(gpu, 'weight', n, options.elementwiseAffine ?? true, 1);
  }

  override forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

/** A module applying one elementwise op, with no state. */
abstract class Activation extends Module {
  protected abstract readonly op: (x: Tensor) => Tensor;

  override forward(x: Tensor): Tensor {
    return this.op(x);
  }
}

export class ReLU extends Activation {
  protected readonly op = relu;
}

export class SiLU extends Activation {
  protected readonly op = silu;
}

export class Tanh extends Activation {
  protected readonly op = tanh;
}

export class Sigmoid extends Activation {
  protected readonly op = sigmoid;
}

/** torch.nn.GELU: the exact erf form by default, GPT-2's tanh form with { approximate: 'tanh' }. */
export class GELU extends Activation {
  readonly approximate: 'none' | 'tanh';
  protected readonly op: (x: Tensor) => Tensor;

  constructor(options: GeluOptions = {}) {
    super();
    this.approximate = options.approximate ?? 'none';
    if (this.approximate !== 'none' && this.approximate !== 'tanh') {
      throw new RangeError(`GELU: approximate must be 'none' or 'tanh', got '${String(this.approximate)}'`);
    }
    const fixed = Object.freeze({ approximate: this.approximate });
    this.op = (x) => gelu(x, fixed);
  }
}

/** torch.nn.Flatten: dims startDim..endDim merged into one (a reshape, no copy). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }

  override forward(x: Tensor): Tensor {
    const rank = x.shape.length;
    const start = this.startDim < 0 ? this.startDim + rank : this.startDim;
    const end = this.endDim < 0 ? this.endDim + rank : this.endDim;
    if (rank === 0) return x.reshape([1]);
    if (!(0 <= start && start <= end && end < rank)) {
      throw new RangeError(`Flatten(${this.startDim}, ${this.endDim}): dims out of range for ${shapeString(x.shape)}`);
    }
    const merged = numel(x.shape.slice(start, end + 1));
    return x.reshape([...x.shape.slice(0, start), merged, ...x.shape.slice(end + 1)]);
  }
}

/** Modules under the names 0, 1, …, as torch.nn.ModuleList (no forward of its own). */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  #items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  append(module: M): this {
    this.registerModule(String(this.#items.length), module);
    this.#items.push(module);
    return this;
  }

  get length(): number {
    return this.#items.length;
  }

  /** The i-th module; negative i counts from the end. */
  at(i: number): M {
    const m = this.#items.at(i);
    if (!m) throw new RangeError(`${this.constructor.name}: index ${i} is out of range for ${this.#items.length} modules`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }
}

/** torch.nn.Sequential: children 0, 1, …, each one's output the next one's input. */
export class Sequential extends ModuleList {
  constructor(...modules: Module[]) {
    super(modules);
  }

  override forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this) y = m.forward(y) as Tensor;
    return y;
  }
}
