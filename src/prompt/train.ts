// Training and inference loops for prompt classifiers. Texts are grouped into fixed batches
// of similar length (little padding); each batch's past is computed once and, within the
// cache budget, kept for later epochs, since the frozen model gives the same past every time.
import { Tensor, rawTensor, tidy, keep, noGrad, type DType, type RawData } from '../tensor/tensor.ts';
import { Adam } from '../optim/adam.ts';
import { add, scale } from '../ops/elementwise.ts';
import { crossEntropy, bceWithLogits } from '../ops/loss.ts';
import { gatherRows } from '../ops/gather.ts';
import type { GPT2, ModelPast, PastOptions, TokenBatch } from '../gpt2/model.ts';
import { PromptClassifier, taskWidth, type Task } from './classifier.ts';
import { seededRandom, shuffledIndices } from '../util/random.ts';

/** One training or evaluation example: its tokens and its task's target. */
export interface Example {
  tokens: Uint32Array;
  /** Index into the classifier's tasks. */
  task: number;
  /** Single-label: class index within the task. */
  label: number;
  /** Multi-label: 0/1 per label of the task. */
  targets: Float32Array | null;
}

/** Loss settings per task index. */
export interface TaskLoss {
  /** Single-label class weights (e.g. sklearn's 'balanced'), one per class of the task. */
  classWeights?: Float32Array;
  /** Multi-label pos_weight, one per label of the task. */
  posWeight?: Float32Array;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  losses: TaskLoss[];
  /** GPU bytes that cached pasts may use; with hostCacheBytes 0 too, the past is recomputed for every batch of every epoch (the original method). */
  cacheBytes: number;
  /** Host bytes for pasts beyond the GPU budget (default 0). */
  hostCacheBytes?: number;
  /**
   * Keep every past in f16: twice the batches in the same budgets. Recomputed pasts are made
   * f16 too, so every epoch sees the same past wherever it comes from.
   */
  cacheF16?: boolean;
  startEpoch?: number;
  optimizer?: Adam;
  onStep?: (info: { epoch: number; step: number; steps: number; loss: number }) => void;
  /** Runs each step's work (counted from 0 over the run), e.g. to profile one: it must call `step` once. */
  aroundStep?: (index: number, step: () => Promise<void>) => Promise<void>;
  /** Called after each complete epoch (e.g. to checkpoint and validate); awaited before the next. */
  onEpoch?: (info: { epoch: number; meanLoss: number; seconds: number; optimizer: Adam }) => Promise<void> | void;
}

/** Fixed batches of indices with similar token counts. */
export function lengthBuckets(lengths: ArrayLike<number>, batchSize: number): number[][] {
  const order = Array.from({ length: lengths.length }, (_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}

/**
 * Batches for training on several tasks at once: each batch takes an equal share of
 * examples from every task (cycling the smaller ones), so every step sees every task.
 */
export function mixedBuckets(examples: readonly Example[], tasks: number, batchSize: number): number[][] {
  if (tasks <= 1) return lengthBuckets(examples.map((e) => e.tokens.length), batchSize);
  const perTask = Math.max(1, Math.floor(batchSize / tasks));
  const streams = Array.from({ length: tasks }, (_, t) => {
    const members = examples.flatMap((e, i) => (e.task === t ? [i] : []));
    return lengthBuckets(members.map((i) => examples[i]!.tokens.length), perTask).map((b) => b.map((k) => members[k]!));
  });
  const count = Math.max(...streams.map((s) => s.length));
  return Array.from({ length: count }, (_, i) => streams.flatMap((s) => (s.length ? s[i % s.length]! : [])));
}

/** A right-padded token batch of the given examples. */
export function tokenBatch(examples: readonly Example[], indices: readonly number[]): TokenBatch {
  const lengths = Uint32Array.from(indices, (i) => examples[i]!.tokens.length);
  const width = Math.max(1, ...lengths);
  // Padding is masked out, so any valid id serves.
  const ids = new Uint32Array(indices.length * width);
  indices.forEach((i, b) => ids.set(examples[i]!.tokens, b * width));
  return { ids, lengths, width };
}

/** Encodes a batch's texts into a past (no gradients; the model is frozen). */
export function encode(model: GPT2, batch: TokenBatch, opts: PastOptions = {}): ModelPast {
  return tidy(() => noGrad(() => model.pastOf(batch, opts)));
}

export function disposePast(past: ModelPast): void {
  for (const layer of past.layers) {
    layer.k.dispose();
    layer.v.dispose();
  }
}

/**
 * The batch loss: each example contributes only through its own task's columns. With one
 * task this is exactly that task's mean loss; with several, the task means weighted by
 * their share of the batch.
 */
export function batchLoss(logits: Tensor, examples: readonly Example[], indices: readonly number[], tasks: readonly Task[], losses: readonly TaskLoss[]): Tensor {
  const B = indices.length;
  let total: Tensor | null = null;
  tasks.forEach((task, t) => {
    const rows = indices.flatMap((i, b) => (examples[i]!.task === t ? [b] : []));
    if (rows.length === 0) return;
    const own = rows.length === B ? logits : gatherRows(logits, Uint32Array.from(rows));
    const K = logits.shape[1]!;
    const width = taskWidth(task);
    let loss: Tensor;
    if (task.kind === 'single') {
      const labels = Uint32Array.from(rows, (b) => examples[indices[b]!]!.label);
      const weights = losses[t]?.classWeights;
      const columnWeights = weights ? new Float32Array(K).fill(1) : undefined;
      if (weights && columnWeights) columnWeights.set(weights, task.start);
      const opts = width === K ? {} : { columnStart: new Uint32Array(rows.length).fill(task.start), columnCount: new Uint32Array(rows.length).fill(width) };
      loss = crossEntropy(own, labels, columnWeights ? { ...opts, weights: columnWeights } : opts);
    } else {
      const targets = new Float32Array(rows.length * K);
      const mask = new Float32Array(rows.length * K);
      rows.forEach((b, r) => {
        targets.set(examples[indices[b]!]!.targets!, r * K + task.start);
        mask.fill(1, r * K + task.start, r * K + task.start + width);
      });
      const posWeight = new Float32Array(K).fill(1);
      if (losses[t]?.posWeight) posWeight.set(losses[t]!.posWeight!, task.start);
      loss = bceWithLogits(own, targets, width === K ? { posWeight } : { posWeight, mask });
    }
    const weighted = rows.length === B ? loss : scale(loss, rows.length / B);
    total = total ? add(total, weighted) : weighted;
  });
  return total!;
}

/** A past copied to host memory as the GPU stores it: per layer, keys and values. */
interface HostPast {
  layers: { k: RawData; v: RawData; shape: readonly number[]; dtype: DType }[];
  lengths: Uint32Array;
}

/**
 * Keeps the pasts of fixed batches across epochs: on the GPU up to `gpuBytes`, then in host
 * memory up to `hostBytes` (uploaded again when used), and recomputes the rest.
 */
export class PastCache {
  private readonly onGpu = new Map<number, ModelPast>();
  private readonly onHost = new Map<number, HostPast>();
  private gpuUsed = 0;
  private hostUsed = 0;
  constructor(
    private readonly model: GPT2,
    private readonly gpuBytes: number,
    private readonly hostBytes = 0,
    private readonly storage: PastOptions = {},
  ) {}

  /** The batch's past; `owned` pasts must be disposed by the caller after use. */
  async get(batchIndex: number, batch: () => TokenBatch): Promise<{ past: ModelPast; owned: boolean }> {
    const cached = this.onGpu.get(batchIndex);
    if (cached) return { past: cached, owned: false };
    const host = this.onHost.get(batchIndex);
    if (host) {
      const gpu = this.model.gpu;
      const layers = host.layers.map((l) => {
        const upload = (data: RawData) => keep(rawTensor(gpu, data, l.shape, l.dtype, 'cached past'));
        return { k: upload(l.k), v: upload(l.v), lengths: host.lengths };
      });
      return { past: { layers, lengths: host.lengths }, owned: true };
    }
    const tokens = batch();
    const past = encode(this.model, tokens, this.storage);
    const bytes = this.model.pastBytes(tokens.lengths.length, tokens.width, this.storage);
    if (this.gpuUsed + bytes <= this.gpuBytes) {
      this.onGpu.set(batchIndex, past);
      this.gpuUsed += bytes;
      return { past, owned: false };
    }
    if (this.hostUsed + bytes <= this.hostBytes) {
      const layers = await Promise.all(past.layers.map(async (l) => ({ k: await l.k.readRaw(), v: await l.v.readRaw(), shape: l.k.shape, dtype: l.k.dtype })));
      this.onHost.set(batchIndex, { layers, lengths: past.lengths });
      this.hostUsed += bytes;
    }
    return { past, owned: true };
  }

  get stats(): { gpuBatches: number; hostBatches: number; gpuBytes: number; hostBytes: number } {
    return { gpuBatches: this.onGpu.size, hostBatches: this.onHost.size, gpuBytes: this.gpuUsed, hostBytes: this.hostUsed };
  }

  dispose(): void {
    for (const past of this.onGpu.values()) disposePast(past);
    this.onGpu.clear();
    this.onHost.clear();
    this.gpuUsed = 0;
    this.hostUsed = 0;
  }
}

/** Steps a loss read-back may trail behind the step being encoded. */
const READ_BACK_LAG = 2;

/** Trains the classifier's prompt and head; the model stays frozen. */
export async function train(model: GPT2, classifier: PromptClassifier, examples: readonly Example[], options: TrainOptions): Promise<Adam> {
  if (examples.length === 0) throw new RangeError('no training examples');
  if (classifier.groups !== 1) throw new RangeError('training needs one shared prompt; a composite of separately trained prompts is for inference');
  const optimizer = options.optimizer ?? new Adam(classifier.parameters(), { lr: options.lr });
  const batches = mixedBuckets(examples, classifier.tasks.length, options.batchSize);
  const cache = new PastCache(model, options.cacheBytes, options.hostCacheBytes ?? 0, { pastF16: options.cacheF16 ?? false });
  let stepsRun = 0;
  try {
    for (let epoch = options.startEpoch ?? 0; epoch < options.epochs; epoch++) {
      const started = performance.now();
      const order = shuffledIndices(batches.length, seededRandom(options.seed * 7919 + epoch));
      let lossSum = 0;
      // Losses are read back a couple of steps late, so encoding the next step overlaps the
      // GPU's work on this one instead of waiting for it.
      const pending: { step: number; value: Promise<Float32Array> }[] = [];
      const settle = async () => {
        const { step, value } = pending.shift()!;
        const loss = (await value)[0]!;
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch + 1}, step ${step + 1}`);
        lossSum += loss;
        options.onStep?.({ epoch, step, steps: order.length, loss });
      };
      for (let s = 0; s < order.length; s++) {
        const index = stepsRun++;
        const step = async () => {
          const indices = batches[order[s]!]!;
          const { past, owned } = await cache.get(order[s]!, () => tokenBatch(examples, indices));
          const loss = tidy(() => {
            const l = batchLoss(classifier.logits(model, past), examples, indices, classifier.tasks, options.losses);
            l.backward();
            return l;
          });
          optimizer.step();
          optimizer.zeroGrad();
          if (owned) disposePast(past);
          const value = loss.readF32().finally(() => loss.dispose());
          // Observed when settled; until then a failure must not count as unhandled.
          value.catch(() => undefined);
          pending.push({ step: s, value });
          if (pending.length > READ_BACK_LAG) await settle();
        };
        await (options.aroundStep ? options.aroundStep(index, step) : step());
      }
      while (pending.length) await settle();
      await options.onEpoch?.({ epoch, meanLoss: lossSum / order.length, seconds: (performance.now() - started) / 1000, optimizer });
    }
  } finally {
    cache.dispose();
  }
  return optimizer;
}

/** Logits [N, K] for every example (in input order), batched by length; `storage` as a prompt was trained with (e.g. an f16 past). */
export async function predictLogits(
  model: GPT2,
  classifiers: readonly PromptClassifier[],
  examples: readonly Example[],
  batchSize: number,
  onBatch?: (done: number) => void,
  storage: PastOptions = {},
): Promise<Float32Array[]> {
  const outputs = classifiers.map((c) => new Float32Array(examples.length * c.classes));
  let done = 0;
  for (const indices of lengthBuckets(examples.map((e) => e.tokens.length), batchSize)) {
    // One encode serves every classifier and prompt: the past does not depend on the prompt.
    const past = encode(model, tokenBatch(examples, indices), storage);
    const runs = classifiers.flatMap((c, k) => Array.from({ length: c.groups }, (_, g) => ({ k, g, logits: noGrad(() => tidy(() => c.logits(model, past, g))) })));
    disposePast(past);
    const values = await Promise.all(runs.map((r) => r.logits.readF32()));
    runs.forEach(({ k, g, logits }, r) => {
      logits.dispose();
      const c = classifiers[k]!;
      const K = c.classes;
      // Each prompt answers only its own tasks' columns.
      for (const task of c.tasks.filter((t) => (t.group ?? 0) === g)) {
        const from = task.start;
        const to = task.start + taskWidth(task);
        indices.forEach((i, b) => outputs[k]!.set(values[r]!.subarray(b * K + from, b * K + to), i * K + from));
      }
    });
    done += indices.length;
    onBatch?.(done);
  }
  return outputs;
}
