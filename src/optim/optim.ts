// Optimizers over any f32 parameter tensors, and global-norm gradient clipping. State lives on
// the GPU and parameters update in place, so a step needs no readback. Every optimizer splits
// its step in two: prepare() (host: counts the step and writes what changes from step to step,
// such as learning rate, bias corrections and clipping factor, into a small storage tensor) and
// update() (GPU: the same launches with the same uniforms every step), which is what lets a
// CapturedStep (capture.ts) replay update().
import { packParams, f32, grid } from '../gpu/params.ts';
import { Tensor, tensor, keep, shapeString } from '../tensor/tensor.ts';

const WG = 256;
// Elements one grad_sumsq workgroup sums (WG threads × SUMSQ_PER_THREAD in optim.wgsl).
const SUMSQ_SPAN = WG * 64;
/** Step scalars per parameter in the storage tensor prepare() writes (the kernels' *Scalars structs). */
const SCALARS_PER_PARAM = 4;

export interface StepOptions {
  /** Multiplies every gradient first: the factor of clipping by global norm (see clipCoefficient). */
  gradScale?: number;
}

/** One value for every parameter, or one per parameter, checked to be ≥ 0. */
export function perParameter(name: string, what: string, value: number | readonly number[], count: number): number[] {
  if (typeof value !== 'number' && value.length !== count) throw new RangeError(`${name}: ${value.length} ${what} for ${count} parameters`);
  const values = Array.from({ length: count }, (_, k) => (typeof value === 'number' ? value : value[k]!));
  for (const v of values) if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name}: ${what} include ${v}, not a finite number ≥ 0`);
  return values;
}

/** What the optimizers share: parameters, step count, the per-step scalars on the GPU, and the step split in prepare()/update(). */
export abstract class Optimizer {
  readonly params: readonly Tensor[];
  lr: number;
  protected t = 0;
  /** SCALARS_PER_PARAM values per parameter for the step kernel, written by prepare(). */
  private readonly scalars: Tensor | null;
  private readonly scalarValues: Float32Array;
  private readonly stateTensors: Tensor[] = [];

  protected constructor(
    protected readonly name: string,
    params: readonly Tensor[],
    lr: number,
  ) {
    this.params = [...params];
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new RangeError(`${name}: learning rate ${lr} is not a finite number ≥ 0`);
    this.lr = lr;
    for (const p of this.params) if (p.dtype !== 'f32') throw new TypeError(`${name}: parameter ${p.label ?? shapeString(p.shape)} is ${p.dtype}, not f32`);
    this.scalarValues = new Float32Array(SCALARS_PER_PARAM * this.params.length);
    const gpu = this.params[0]?.gpu;
    this.scalars = gpu ? keep(Tensor.empty(gpu, [this.scalarValues.length], 'f32', `${name} step scalars`)) : null;
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.t;
  }

  /** One update: prepare() then update(). */
  step(opts: StepOptions = {}): void {
    this.prepare(opts);
    this.update();
  }

  /**
   * The host half of a step: counts it and writes what it changes to the GPU, so that update()
   * launches the same kernels with the same uniforms every step, as a captured step needs.
   */
  prepare(opts: StepOptions = {}): void {
    const gradScale = opts.gradScale ?? 1;
    if (!(gradScale >= 0) || !Number.isFinite(gradScale)) throw new RangeError(`${this.name}: gradScale ${gradScale} is not a finite number ≥ 0`);
    this.t++;
    if (!this.scalars) return;
    this.writeScalars(this.scalarValues, gradScale);
    this.scalars.write(this.scalarValues);
  }

  /** The GPU half of a step, with the values the last prepare() wrote: every parameter with a gradient updated in place; those without are left alone, as torch does. */
  update(): void {
    const scalars = this.scalars;
    if (!scalars) return;
    this.params.forEach((p, k) => {
      const g = p.grad;
      if (!g) return;
      if (g.size !== p.size) throw new RangeError(`${this.name}: gradient ${shapeString(g.shape)} does not match parameter ${shapeString(p.shape)}`);
      this.launch(p, g, k, scalars);
    });
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees the optimizer's GPU state; it is unusable afterwards. */
  dispose(): void {
    for (const t of this.stateTensors) t.dispose();
    this.scalars?.dispose();
  }

  /** Fills SCALARS_PER_PARAM values per parameter for the coming step (this.t already counts it). */
  protected abstract writeScalars(values: Float32Array, gradScale: number): void;

  /** Launches the step kernel of parameter k; `scalars` holds what writeScalars() filled. */
  protected abstract launch(p: Tensor, g: Tensor, k: number, scalars: Tensor): void;

  /** A zero-filled buffer shaped like p that outlives any tidy() scope the optimizer is built in, freed by dispose(). */
  protected stateLike(p: Pick<Tensor, 'gpu' | 'size' | 'shape' | 'label'>, which: string): Tensor {
    const t = keep(tensor(p.gpu, new Float32Array(p.size), p.shape, { label: `${this.name} ${which} of ${p.label ?? 'param'}` }));
    this.stateTensors.push(t);
    return t;
  }

  protected checkedStep(step: number): void {
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`${this.name}.loadState: step ${step} is not a step count`);
  }
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (g + wd·p), as torch.optim.SGD: one value, or one per parameter. Default 0. */
  weightDecay?: number | readonly number[];
}

export interface SGDState {
  step: number;
  /** Momentum buffers, one per parameter (empty without momentum). */
  momentum: Float32Array[];
}

/**
 * torch.optim.SGD: g ← g + wd·p; with momentum μ, buf ← g on the first step and
 * buf ← μ·buf + (1 − dampening)·g after; the step is p ← p − lr·d with d = g + μ·buf (Nesterov),
 * buf (momentum) or g (none). `lr` may change between steps.
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: readonly number[];
  private readonly buffers: Tensor[];
  /** Bound where a momentum buffer would be when there is none (the kernel never reads it): a parameter cannot stand in, two writable bindings may not alias. */
  private readonly noBuffer: Tensor | null;

  constructor(params: readonly Tensor[], opts: SGDOptions = {}) {
    super('SGD', params, opts.lr ?? 1e-3);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    for (const [what, v] of [['momentum', this.momentum], ['dampening', this.dampening]] as const) {
      if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`SGD: ${what} ${v} is not a finite number ≥ 0`);
    }
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new RangeError('SGD: nesterov needs momentum > 0 and dampening 0');
    this.weightDecay = perParameter('SGD', 'weight decays', opts.weightDecay ?? 0, this.params.length);
    this.buffers = this.momentum > 0 ? this.params.map((p) => this.stateLike(p, 'momentum')) : [];
    const gpu = this.params[0]?.gpu;
    this.noBuffer = this.momentum > 0 || !gpu ? null : this.stateLike({ gpu, size: 1, shape: [1], label: 'no parameter' }, 'momentum');
  }

  protected writeScalars(values: Float32Array, gradScale: number): void {
    const first = this.t === 1;
    for (let k = 0; k < this.params.length; k++) {
      values.set([this.lr, first ? 0 : this.momentum, first ? 1 : 1 - this.dampening, gradScale], SCALARS_PER_PARAM * k);
    }
  }

  protected launch(p: Tensor, g: Tensor, k: number, scalars: Tensor): void {
    const mode = this.momentum === 0 ? 0 : this.nesterov ? 2 : 1;
    const buffer = this.buffers[k] ?? this.noBuffer!;
    p.gpu.dispatch({
      kernel: 'optim',
      entry: 'sgd_step',
      params: packParams(p.size, f32(this.momentum), f32(this.weightDecay[k]!), mode, k, 0, 0, 0),
      bindings: [p.binding(), g.binding(), buffer.binding(), scalars.binding()],
      workgroups: grid(p.size, WG),
    });
  }

  async state(): Promise<SGDState> {
    return { step: this.t, momentum: await Promise.all(this.buffers.map((t) => t.readF32())) };
  }

  loadState(s: SGDState): void {
    this.checkedStep(s.step);
    if (s.momentum.length !== this.buffers.length) throw new RangeError(`SGD.loadState: ${s.momentum.length} momentum buffers, optimizer has ${this.buffers.length}`);
    this.buffers.forEach((b, k) => {
      if (s.momentum[k]!.length !== b.size) throw new RangeError(`SGD.loadState: momentum[${k}] has ${s.momentum[k]!.length} values for a parameter of ${b.size}`);
    });
    this.buffers.forEach((b, k) => b.write(s.momentum[k]!));
    this.t = s.step;
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
        kernel: 'optim',
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

function checkMaxNorm(maxNorm: number): void {
  if (!(maxNorm > 0)) throw new RangeError(`clipping: maxNorm ${maxNorm} is not > 0`);
}

/** torch.nn.utils.clip_grad_norm_'s factor for gradients of global norm `norm`: min(1, maxNorm / (norm + 1e-6)). */
export function clipCoefficient(norm: number, maxNorm: number): number {
  checkMaxNorm(maxNorm);
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * torch.nn.utils.clip_grad_norm_: measures the gradients' global L2 norm and scales every
 * gradient in place by clipCoefficient(norm, maxNorm); returns the norm before clipping. (To
 * fold the factor into the update instead, pass it as step({ gradScale }).)
 */
export async function clipGradNorm(params: readonly Tensor[], maxNorm: number): Promise<number> {
  // Before the readback, so a bad argument costs no GPU round trip.
  checkMaxNorm(maxNorm);
  const norm = await globalGradNorm(params);
  const factor = clipCoefficient(norm, maxNorm);
  // A factor of 1 would multiply every gradient by 1, which changes nothing.
  if (factor === 1) return norm;
  for (const p of params) {
    const g = p.grad;
    if (!g || g.size === 0) continue;
    g.gpu.dispatch({ kernel: 'optim', entry: 'grad_scale', params: packParams(g.size, f32(factor)), bindings: [g.binding()], workgroups: grid(g.size, WG) });
  }
  return norm;
}
