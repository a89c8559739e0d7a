// torch.optim.Adam on GPU tensors: moments live on the GPU and parameters update in place,
// so a training step needs no readback.
import { packParams, f32, grid } from '../gpu/params.js';
import { Tensor, tensor, keep, shapeString } from './tensor.js';

const WG = 256;

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface AdamState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * torch.optim.Adam without weight decay: m ← β1·m + (1−β1)g; v ← β2·v + (1−β2)g²;
 * p ← p − lr·m̂/(√v̂ + eps), with m̂ = m/(1−β1^t), v̂ = v/(1−β2^t). Parameters without a
 * gradient at step() are left alone, as torch does.
 */
export class Adam {
  readonly params: readonly Tensor[];
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private t = 0;
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  constructor(params: Tensor[], opts: AdamOptions = {}) {
    this.params = [...params];
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    for (const p of this.params) if (p.dtype !== 'f32') throw new TypeError(`Adam: parameter ${p.label ?? shapeString(p.shape)} is ${p.dtype}, not f32`);
    // The moments outlive any tidy() scope the optimizer happens to be built in.
    const zeros = (p: Tensor, which: string) => keep(tensor(p.gpu, new Float32Array(p.size), p.shape, { label: `adam ${which} of ${p.label ?? 'param'}` }));
    this.m = this.params.map((p) => zeros(p, 'm'));
    this.v = this.params.map((p) => zeros(p, 'v'));
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.t;
  }

  step(): void {
    this.t++;
    // Bias corrections in float64 on the host; the kernel sees their f32 roundings only.
    const stepSize = this.lr / (1 - this.beta1 ** this.t);
    const invSqrtBc2 = 1 / Math.sqrt(1 - this.beta2 ** this.t);
    this.params.forEach((p, k) => {
      const g = p.grad;
      if (!g) return;
      if (g.size !== p.size) throw new RangeError(`Adam: gradient ${shapeString(g.shape)} does not match parameter ${shapeString(p.shape)}`);
      p.gpu.dispatch({
        kernel: 'adam',
        entry: 'adam_step',
        params: packParams(p.size, f32(this.beta1), f32(this.beta2), f32(this.eps), f32(1 - this.beta1), f32(1 - this.beta2), f32(stepSize), f32(invSqrtBc2)),
        bindings: [p.binding(), g.binding(), this.m[k]!.binding(), this.v[k]!.binding()],
        workgroups: grid(p.size, WG),
      });
    });
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
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
    if (!Number.isInteger(s.step) || s.step < 0) throw new RangeError(`Adam.loadState: step ${s.step} is not a step count`);
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

  /** Frees the moment buffers; the optimizer is unusable afterwards. */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
