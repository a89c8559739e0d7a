// Pretraining GPT-2 as a language model, end to end: every weight learns, the token embedding
// doubling as the output head (tied, as GPT-2). The pieces a trainer needs, with no files or
// terminal: GPT-2's random initialisation, the next-token loss, the data order, the learning
// rate schedule, and one optimizer step (gradient accumulation, clipping by global norm,
// AdamW with weight decay on matrices only). Everything is a function of the run's settings
// and the step number, so a run restored from its state continues bit for bit.
import { Tensor, tidy } from '../tensor/tensor.ts';
import { Adam, globalGradNorm, type AdamState } from '../optim/adam.ts';
import { add, scale } from '../ops/elementwise.ts';
import { matmul } from '../ops/matmul.ts';
import { gatherRows } from '../ops/gather.ts';
import { crossEntropy } from '../ops/loss.ts';
import { seededRandom, shuffledIndices } from '../util/random.ts';
import { expectedTensors, assembleWeights, type GPT2HostWeights } from './checkpoint.ts';
import { encodeSafetensors, SafetensorsFile, type TensorToWrite } from '../nn/safetensors.ts';
import type { GPT2Config } from './config.ts';
import type { GPT2 } from './model.ts';

/** GPT-2's initialiser range: weights are N(0, 0.02²). */
export const INIT_STD = 0.02;

/**
 * Random weights as GPT-2 initialises them: every matrix and embedding N(0, 0.02²), except
 * the projections into the residual stream (attn.c_proj, mlp.c_proj), scaled by 1/√(2·n_layer)
 * so the residual's variance does not grow with depth; biases 0; layer norms weight 1, bias 0.
 * Seeded: the same seed gives the same weights.
 */
export function initialWeights(config: GPT2Config, seed: number): GPT2HostWeights {
  const random = seededRandom(seed);
  const normal = (n: number, std: number) => {
    const out = new Float32Array(n);
    // Box–Muller, both values of each pair.
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - random()));
      const a = 2 * Math.PI * random();
      out[i] = r * Math.cos(a) * std;
      if (i + 1 < n) out[i + 1] = r * Math.sin(a) * std;
    }
    return out;
  };
  const residualStd = INIT_STD / Math.sqrt(2 * config.nLayer);
  const arrays = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith('.bias')) arrays.set(name, new Float32Array(n));
    else if (/ln_(1|2|f)\.weight$/.test(name)) arrays.set(name, new Float32Array(n).fill(1));
    else arrays.set(name, normal(n, name.endsWith('c_proj.weight') ? residualStd : INIT_STD));
  }
  return assembleWeights(config, (name) => arrays.get(name)!);
}

/**
 * Mean next-token cross entropy of B windows of T + 1 tokens each (windows[b·(T+1) + t]):
 * positions 0..T−1 are the input, each predicting the token after it through the tied head
 * (logits = h·wteᵀ). The logits are made a row chunk at a time so no chunk outgrows one
 * storage binding; the chunks' means are weighted by their share of the rows. Returns [1].
 */
export function lmLoss(model: GPT2, windows: Uint32Array, T: number): Tensor {
  const B = windows.length / (T + 1);
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`lmLoss: ${windows.length} tokens do not make whole windows of ${T + 1}`);
  if (model.wte.shards.length !== 1) {
    throw new RangeError(`lmLoss: the token embedding is split into ${model.wte.shards.length} shards on this device (n_embd ${model.config.nEmbd} too wide for one binding); pretraining needs it whole`);
  }
  const inputs = new Uint32Array(B * T);
  const targets = new Uint32Array(B * T);
  for (let b = 0; b < B; b++) {
    inputs.set(windows.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(windows.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  const N = B * T;
  const C = model.config.nEmbd;
  const V = model.config.vocabSize;
  const hidden = model.hiddenStates(inputs, T).reshape([N, C]);
  const wte = model.wte.weight;
  const rowsPerChunk = Math.max(1, Math.floor(model.gpu.limits.maxStorageBufferBindingSize / (V * 4)));
  let loss: Tensor | null = null;
  for (let start = 0; start < N; start += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, N - start);
    const rows = n === N ? hidden : gatherRows(hidden, Uint32Array.from({ length: n }, (_, i) => start + i));
    const part = crossEntropy(matmul(rows, wte, { transB: true }), targets.subarray(start, start + n));
    const weighted = n === N ? part : scale(part, n / N);
    loss = loss ? add(loss, weighted) : weighted;
  }
  return loss!;
}

/** A run's optimisation settings: together with the data and the step, they fix every update. */
export interface PretrainSettings {
  /** Tokens per sequence (≤ n_positions). */
  seqLen: number;
  /** Sequences per micro-batch (one forward/backward). */
  batchSize: number;
  /** Micro-batches whose gradients add up to one update. */
  accumulation: number;
  /** Updates in the whole schedule. */
  steps: number;
  /** Peak learning rate, reached after warmupSteps, then cosine down to minLr at `steps`. */
  lr: number;
  minLr: number;
  warmupSteps: number;
  /** AdamW decoupled weight decay, on matrices and embeddings only (not biases, not layer norms). */
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Clip the gradients' global L2 norm to this (0: no clipping). */
  clipNorm: number;
  /** Seeds the initial weights and the data order. */
  seed: number;
}

export const DEFAULT_PRETRAIN_SETTINGS: Omit<PretrainSettings, 'steps'> = {
  seqLen: 128,
  batchSize: 8,
  accumulation: 1,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 50,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clipNorm: 1,
  seed: 0,
};

/**
 * The learning rate of update `step` (0-based): linear warm-up to lr over warmupSteps
 * (lr·(step+1)/warmupSteps), then half a cosine from lr down to minLr at the last step.
 */
export function learningRate(step: number, s: Pick<PretrainSettings, 'lr' | 'minLr' | 'warmupSteps' | 'steps'>): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.steps - 1 - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Where training windows come from: the j-th micro-batch of B windows of seqLen + 1 tokens, a function of j. */
export interface WindowSource {
  readonly seqLen: number;
  batch(j: number, batchSize: number): Uint32Array;
}

/**
 * Training windows cut from one token stream: window w is tokens [w·T, w·T + T] (T + 1 tokens:
 * inputs and their next tokens). Each epoch visits every window once in a seeded order, so the
 * j-th window of the run depends only on the seed and j.
 */
export class TokenWindows implements WindowSource {
  readonly count: number;
  private epoch = -1;
  private order: Uint32Array = new Uint32Array(0);

  constructor(
    readonly tokens: Uint32Array,
    readonly seqLen: number,
    readonly seed: number,
  ) {
    this.count = Math.floor((tokens.length - 1) / seqLen);
    if (this.count < 1) throw new RangeError(`${tokens.length} tokens make no window of ${seqLen + 1}`);
  }

  /** Windows j·B .. j·B + B − 1 of the run, concatenated: [B·(T + 1)]. */
  batch(j: number, batchSize: number): Uint32Array {
    const T = this.seqLen;
    const out = new Uint32Array(batchSize * (T + 1));
    for (let b = 0; b < batchSize; b++) {
      const index = j * batchSize + b;
      const epoch = Math.floor(index / this.count);
      if (epoch !== this.epoch) {
        // Each epoch's order is its own seeded shuffle (seeds apart by a large odd constant).
        this.order = shuffledIndices(this.count, seededRandom((this.seed + Math.imul(epoch + 1, 0x9e3779b1)) >>> 0));
        this.epoch = epoch;
      }
      const w = this.order[index % this.count]!;
      out.set(this.tokens.subarray(w * T, w * T + T + 1), b * (T + 1));
    }
    return out;
  }
}

export interface StepResult {
  /** The update just taken, 1-based. */
  step: number;
  /** Mean loss over its micro-batches. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  lr: number;
  /** Tokens predicted in this update. */
  tokens: number;
}

/** The optimizer state of a run, for its checkpoint: restoring it continues the run exactly. */
export interface PretrainerState {
  step: number;
  adam: AdamState;
}

/** Trains every weight of `model` (its tensors learn in place) on `windows`. */
export class Pretrainer {
  readonly model: GPT2;
  readonly settings: PretrainSettings;
  readonly windows: WindowSource;
  readonly params: Tensor[];
  private readonly adam: Adam;

  constructor(model: GPT2, windows: WindowSource, settings: PretrainSettings) {
    if (settings.seqLen > model.config.nPositions) {
      throw new RangeError(`sequence length ${settings.seqLen} exceeds the model's n_positions of ${model.config.nPositions}`);
    }
    if (windows.seqLen !== settings.seqLen) throw new RangeError(`windows of ${windows.seqLen} tokens for a sequence length of ${settings.seqLen}`);
    this.model = model;
    this.settings = settings;
    this.windows = windows;
    this.params = model.parameters();
    for (const p of this.params) p.requiresGrad = true;
    this.adam = new Adam(this.params, {
      lr: settings.lr,
      beta1: settings.beta1,
      beta2: settings.beta2,
      eps: settings.eps,
      weightDecay: this.params.map((p) => (p.shape.length >= 2 ? settings.weightDecay : 0)),
    });
  }

  /** Updates taken so far. */
  get step(): number {
    return this.adam.stepCount;
  }

  /** Tokens predicted per update. */
  get tokensPerStep(): number {
    const s = this.settings;
    return s.batchSize * s.accumulation * s.seqLen;
  }

  /** One update: the micro-batches' gradients summed (each loss divided by their count), clipped, AdamW. */
  async trainStep(): Promise<StepResult> {
    const s = this.settings;
    const step = this.adam.stepCount;
    const losses: Tensor[] = [];
    for (let m = 0; m < s.accumulation; m++) {
      const windows = this.windows.batch(step * s.accumulation + m, s.batchSize);
      losses.push(
        tidy(() => {
          const loss = lmLoss(this.model, windows, s.seqLen);
          (s.accumulation === 1 ? loss : scale(loss, 1 / s.accumulation)).backward();
          return loss;
        }),
      );
    }
    const gradNorm = await globalGradNorm(this.params);
    // torch.nn.utils.clip_grad_norm_'s factor, applied even when it is 1.
    const gradScale = s.clipNorm > 0 ? Math.min(1, s.clipNorm / (gradNorm + 1e-6)) : 1;
    const lr = learningRate(step, s);
    this.adam.lr = lr;
    this.adam.step({ gradScale });
    this.adam.zeroGrad();
    let loss = 0;
    for (const l of losses) {
      loss += (await l.readF32())[0]!;
      l.dispose();
    }
    return { step: step + 1, loss: loss / s.accumulation, gradNorm, lr, tokens: this.tokensPerStep };
  }

  async state(): Promise<PretrainerState> {
    return { step: this.adam.stepCount, adam: await this.adam.state() };
  }

  loadState(state: PretrainerState): void {
    if (state.adam.step !== state.step) throw new RangeError(`pretrainer state: step ${state.step} but the optimizer took ${state.adam.step}`);
    this.adam.loadState(state.adam);
  }

  /** Frees the optimizer's moments (the model stays). */
  dispose(): void {
    this.adam.dispose();
    for (const p of this.params) p.requiresGrad = false;
  }
}

/**
 * The optimizer state as safetensors bytes (F32 moments `m.<name>` and `v.<name>` per
 * parameter, the step in the metadata): the sidecar that makes a checkpoint resumable.
 */
export function encodeOptimizerState(names: readonly string[], state: PretrainerState): Uint8Array {
  if (names.length !== state.adam.m.length) throw new RangeError(`encodeOptimizerState: ${names.length} names for ${state.adam.m.length} parameters`);
  const tensors: Record<string, TensorToWrite> = {};
  names.forEach((name, k) => {
    tensors[`m.${name}`] = { dtype: 'F32', shape: [state.adam.m[k]!.length], data: state.adam.m[k]! };
    tensors[`v.${name}`] = { dtype: 'F32', shape: [state.adam.v[k]!.length], data: state.adam.v[k]! };
  });
  return encodeSafetensors(tensors, { step: String(state.step) });
}

/** The inverse of encodeOptimizerState, checked against the parameters' names and sizes. */
export function decodeOptimizerState(bytes: Uint8Array, params: ReadonlyArray<{ name: string; size: number }>, source: string): PretrainerState {
  const file = new SafetensorsFile(bytes, source);
  const step = Number(file.metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`${source}: metadata step ${JSON.stringify(file.metadata.step)} is not a step count`);
  const read = (key: string, size: number) => {
    if (!file.has(key)) throw new Error(`${source}: missing ${key}; it was not written for this model`);
    const data = file.read(key);
    if (data.length !== size) throw new Error(`${source}: ${key} has ${data.length} values, the parameter has ${size}`);
    return data;
  };
  return {
    step,
    adam: { step, m: params.map((p) => read(`m.${p.name}`, p.size)), v: params.map((p) => read(`v.${p.name}`, p.size)) },
  };
}
