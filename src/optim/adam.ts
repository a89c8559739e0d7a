// torch.optim.Adam / AdamW on GPU tensors: moments live on the GPU and parameters update in
// place, so a training step needs no readback.
import { packParams, f32, grid } from '../gpu/params.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Optimizer, perParameter } from './optim.ts';

// Clipping lives with the optimizers' shared code; re-exported for this module's existing importers.
export { globalGradNorm } from './optim.ts';

const WG = 256;

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * Decoupled weight decay as torch.optim.AdamW (p ← p·(1 − lr·wd) before the Adam update):
   * one value for every parameter, or one per parameter (0 exempts one). Default 0: Adam.
   */
  weightDecay?: number | readonly number[];
}

export interface AdamState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * torch.optim.AdamW (torch.optim.Adam when weightDecay is 0): p ← p·(1 − lr·wd);
 * m ← β1·m + (1−β1)g; v ← β2·v + (1−β2)g²; p ← p − lr·m̂/(√v̂ + eps), with m̂ = m/(1−β1^t),
 * v̂ = v/(1−β2^t). Parameters without a gradient at step() are left alone, as torch does.
 * `lr` may change between steps (a schedule).
 */
export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: readonly number[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  constructor(params: readonly Tensor[], opts: AdamOptions = {}) {
    super('Adam', params, opts.lr ?? 1e-3);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = perParameter('Adam', 'weight decays', opts.weightDecay ?? 0, this.params.length);
    this.m = this.params.map((p) => this.stateLike(p, 'm'));
    this.v = this.params.map((p) => this.stateLike(p, 'v'));
  }

  /** Per parameter step_size, inv_sqrt_bc2, decay and grad_scale (AdamScalars in optim.wgsl). */
  protected writeScalars(values: Float32Array, gradScale: number): void {
    // Bias corrections in float64 on the host; the kernel sees their f32 roundings only.
    const stepSize = this.lr / (1 - this.beta1 ** this.t);
    const invSqrtBc2 = 1 / Math.sqrt(1 - this.beta2 ** this.t);
    this.params.forEach((_, k) => {
      values[4 * k] = stepSize;
      values[4 * k + 1] = invSqrtBc2;
      values[4 * k + 2] = 1 - this.lr * this.weightDecay[k]!;
      values[4 * k + 3] = gradScale;
    });
  }

  protected launch(p: Tensor, g: Tensor, k: number, scalars: Tensor): void {
    p.gpu.dispatch({
      kernel: 'optim',
      entry: 'adam_step',
      params: packParams(p.size, f32(this.beta1), f32(this.beta2), f32(this.eps), f32(1 - this.beta1), f32(1 - this.beta2), k, 0),
      bindings: [p.binding(), g.binding(), this.m[k]!.binding(), this.v[k]!.binding(), scalars.binding()],
      workgroups: grid(p.size, WG),
    });
  }

  /** The moments and step count, for checkpoints. */
  async state(): Promise<AdamState> {
    return {
      step: this.t,
      m: await Promise.all(this.m.map((t) => t.readF32())),
      v: await Promise.all(this.v.map((t) => t.readF32())),
    };
  }

  loadState(s: AdamState): void {
    this.checkedStep(s.step);
    if (s.m.length !== this.params.length || s.v.length !== this.params.length) {
      throw new RangeError(`Adam.loadState: state for ${s.m.length}/${s.v.length} parameters, optimizer has ${this.params.length}`);
    }
    this.params.forEach((p, k) => {
      for (const [name, data] of [['m', s.m[k]!], ['v', s.v[k]!]] as const) {
        if (data.length !== p.size) throw new RangeError(`Adam.loadState: ${name}[${k}] has ${data.length} values for a parameter of ${p.size}`);
      }
    });
    this.params.forEach((_, k) => {
      this.m[k]!.write(s.m[k]!);
      this.v[k]!.write(s.v[k]!);
    });
    this.t = s.step;
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay, by default 0.01 as torch's. */
export class AdamW extends Adam {
  constructor(params: readonly Tensor[], opts: AdamOptions = {}) {
    super(params, { ...opts, weightDecay: opts.weightDecay ?? 0.01 });
  }
}
