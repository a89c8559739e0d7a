// torch.optim.Adam / AdamW on GPU tensors: moments live on the GPU and parameters update in
// place, so a training step needs no readback. globalGradNorm serves gradient clipping.
import { packParams, f32, grid } from '../gpu/params.ts';
import { Tensor, tensor, keep, shapeString } from './tensor.ts';

const WG = 256;
// Elements one grad_sumsq workgroup sums (WG threads × SUMSQ_PER_THREAD in adam.wgsl).
const SUMSQ_SPAN = WG * 64;

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
export class Adam {
  readonly params: readonly Tensor[];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: readonly number[];
  private t = 0;
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  /** Per parameter the step's step_size, inv_sqrt_bc2, decay and grad_scale (see adam.wgsl), written by prepare(). */
  private readonly scalars: Tensor | null;
  private readonly scalarValues: Float32Array;

  constructor(params: Tensor[], opts: AdamOptions = {}) {
    this.params = [...params];
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    const wd = opts.weightDecay ?? 0;
    if (typeof wd !== 'number' && wd.length !== this.params.length) {
      throw new RangeError(`Adam: ${wd.length} weight decays for ${this.params.length} parameters`);
    }
    this.weightDecay = this.params.map((_, k) => (typeof wd === 'number' ? wd : wd[k]!));
    for (const p of this.params) if (p.dtype !== 'f32') throw new TypeError(`Adam: parameter ${p.label ?? shapeString(p.shape)} is ${p.dtype}, not f32`);
    // The moments outlive any tidy() scope the optimizer happens to be built in.
    const zeros = (p: Tensor, which: string) => keep(tensor(p.gpu, new Float32Array(p.size), p.shape, { label: `adam ${which} of ${p.label ?? 'param'}` }));
    this.m = this.params.map((p) => zeros(p, 'm'));
    this.v = this.params.map((p) => zeros(p, 'v'));
    this.scalarValues = new Float32Array(4 * this.params.length);
    const gpu = this.params[0]?.gpu;
    this.scalars = gpu ? keep(Tensor.empty(gpu, [this.scalarValues.length], 'f32', 'adam step scalars')) : null;
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.t;
  }

  /**
   * One update: prepare() then update(). gradScale multiplies every gradient first (the
   * factor of clipping by global norm, as torch.nn.utils.clip_grad_norm_ applies it).
   */
  step(opts: { gradScale?: number } = {}): void {
    this.prepare(opts);
    this.update();
  }

  /**
   * The host half of a step: counts it and writes what it changes (the bias corrections, the
   * learning rate's decay factor, gradScale) to the GPU, so that update() launches the same
   * kernels with the same uniforms every step, as a captured step needs.
   */
  prepare(opts: { gradScale?: number } = {}): void {
    this.t++;
    if (!this.scalars) return;
    // Bias corrections in float64 on the host; the kernel sees their f32 roundings only.
    const stepSize = this.lr / (1 - this.beta1 ** this.t);
    const invSqrtBc2 = 1 / Math.sqrt(1 - this.beta2 ** this.t);
    const gradScale = opts.gradScale ?? 1;
    const values = this.scalarValues;
    this.params.forEach((_, k) => {
      values[4 * k] = stepSize;
      values[4 * k + 1] = invSqrtBc2;
      values[4 * k + 2] = 1 - this.lr * this.weightDecay[k]!;
      values[4 * k + 3] = gradScale;
    });
    this.scalars.write(values);
  }

  /** The GPU half of a step, with the values the last prepare() wrote: every parameter with a gradient updated in place. */
  update(): void {
    const scalars = this.scalars;
    if (!scalars) return;
    this.params.forEach((p, k) => {
      const g = p.grad;
      if (!g) return;
      if (g.size !== p.size) throw new RangeError(`Adam: gradient ${shapeString(g.shape)} does not match parameter ${shapeString(p.shape)}`);
      p.gpu.dispatch({
        kernel: 'adam',
        entry: 'adam_step',
        params: packParams(p.size, f32(this.beta1), f32(this.beta2), f32(this.eps), f32(1 - this.beta1), f32(1 - this.beta2), k, 0),
        bindings: [p.binding(), g.binding(), this.m[k]!.binding(), this.v[k]!.binding(), scalars.binding()],
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
    this.scalars?.dispose();
  }
}

/**
 * The L2 norm of all the gradients of `params` together (those without one count as zero), as
 * torch.nn.utils.clip_grad_norm_ measures it: per-workgroup sums of squares on the GPU, added
 * in float64 on the host in a fixed order. One readback.
 */
export async function globalGradNorm(params: readonly Tensor[]): Promise<number> {
  const grads = params.flatMap((p) => (p.grad ? [p.grad] : []));
  if (grads.length === 0) return 0;
  const counts = grads.map((g) => Math.ceil(g.size / SUMSQ_SPAN));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const gpu = grads[0]!.gpu;
  const partials = Tensor.empty(gpu, [total], 'f32', 'grad sum-of-squares partials');
  let offset = 0;
  grads.forEach((g, k) => {
    if (g.dtype !== 'f32') throw new TypeError(`globalGradNorm: gradient ${g.label ?? shapeString(g.shape)} is ${g.dtype}, not f32`);
    if (g.size > 0) {
      gpu.dispatch({
        kernel: 'adam',
        entry: 'grad_sumsq',
        params: packParams(g.size, offset, 0, 0),
        bindings: [g.binding(), partials.binding()],
        workgroups: grid(counts[k]!, 1),
      });
    }
    offset += counts[k]!;
  });
  const values = await partials.readF32();
  partials.dispose();
  let sum = 0;
  for (const v of values) sum += v;
  return Math.sqrt(sum);
}
