// The method end to end on a GPT-2-small-sized model with random weights (speed does not
// depend on the values): encoding texts into cached pasts (tokens/s), a prompt + head training
// step over such a past (examples/s), peak GPU memory, and the key claim — a training epoch over
// cached pasts against one that recomputes every batch's past (the original method).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Gpu } from '../src/gpu/context.ts';
import { tidy, type Tensor } from '../src/tensor/tensor.ts';
import { Adam } from '../src/optim/adam.ts';
import { CapturedStep } from '../src/tensor/capture.ts';
import { GPT2, type ModelPast, type TokenBatch } from '../src/gpt2/model.ts';
import type { GPT2Config } from '../src/gpt2/config.ts';
import { GPT2Tokenizer, GPT2_EOS_ID } from '../src/gpt2/tokenizer.ts';
import { readTable } from '../src/node/dataset-file.ts';
import { PromptClassifier, initialParams, type Task } from '../src/prompt/classifier.ts';
import { train, encode, disposePast, batchLoss, type Example } from '../src/prompt/train.ts';
import { seededRandom, shuffledIndices } from '../src/util/random.ts';
import { randomWeights } from '../test/gpt2/reference.ts';
import { timeStep } from './timing.ts';

/** Prompt length of the method. */
const P = 5;
const TASKS: Task[] = [{ name: 'bench', kind: 'single', labelNames: ['negative', 'positive'], start: 0 }];

export interface BenchModel {
  model: GPT2;
  /** Host copy of the prompt's initial vectors (embeddings of random tokens). */
  promptInit: Float32Array;
  description: string;
}

/** GPT-2 small's shape (124M parameters) with `nLayer` blocks and random weights. */
export function randomModel(gpu: Gpu, nLayer: number): BenchModel {
  const config: GPT2Config = { vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer, nHead: 12, layerNormEps: 1e-5, activation: 'gelu_new' };
  const host = randomWeights(config, 1);
  const random = seededRandom(5);
  const promptInit = new Float32Array(P * config.nEmbd);
  for (let p = 0; p < P; p++) {
    const id = Math.floor(random() * config.vocabSize);
    promptInit.set(host.wte.subarray(id * config.nEmbd, (id + 1) * config.nEmbd), p * config.nEmbd);
  }
  const model = new GPT2(gpu, config, host);
  return { model, promptInit, description: `GPT-2 small shape (C 768, 12 heads, vocab 50257), ${nLayer} layer${nLayer === 1 ? '' : 's'}, random weights` };
}

// ---- IMDB-like lengths ------------------------------------------------------------------------

export interface LengthSample {
  /** Untruncated GPT-2 token counts of sampled rows. */
  lengths: number[];
  source: string;
}

const IMDB_SAMPLE_ROWS = 2000;

/**
 * GPT-2 token counts of a seeded sample of IMDB training rows. Read from the Parquet file where
 * it exists, and then stored at `cachePath`; elsewhere (a machine without the data) read from
 * that stored sample; null when neither exists.
 */
export async function imdbLengths(parquetPath: string, cachePath: string): Promise<LengthSample | null> {
  if (existsSync(parquetPath)) {
    const table = await readTable(parquetPath);
    const tokenizer = new GPT2Tokenizer();
    const order = shuffledIndices(table.rows.length, seededRandom(2024));
    const rows = Array.from(order.subarray(0, Math.min(IMDB_SAMPLE_ROWS, order.length)));
    const lengths = rows.map((r) => tokenizer.encode(String(table.rows[r]!.text ?? '')).length);
    const source = `GPT-2 token counts of ${lengths.length} random rows of IMDB train.gz.parquet (${table.rows.length} rows)`;
    writeFileSync(cachePath, JSON.stringify({ source, lengths }) + '\n');
    return { lengths, source };
  }
  if (existsSync(cachePath)) {
    const stored = JSON.parse(readFileSync(cachePath, 'utf8')) as LengthSample;
    return { lengths: stored.lengths, source: `${stored.source}, as stored in ${relative(process.cwd(), cachePath)}` };
  }
  return null;
}

// ---- pipeline throughput ------------------------------------------------------------------------

export interface EncodeResult {
  name: string;
  batch: number;
  /** Real tokens, and positions including right padding. */
  tokens: number;
  padded: number;
  ms: number;
  tokensPerSec: number;
  paddedPerSec: number;
  samples: number;
}

export interface StepResult {
  name: string;
  batch: number;
  ms: number;
  examplesPerSec: number;
  samples: number;
}

export interface PipelineResult {
  model: string;
  lengthSource: string | null;
  encode: EncodeResult[];
  step: StepResult[];
  /** Highest bytes of GPU buffers in use at once (the engine's pool), over the whole run so far. */
  peakBytes: number;
  weightsBytes: number;
  /** Where a case had to differ from the plan on this adapter, and why. */
  notes: string[];
}

export interface PipelineOptions {
  /** Timed samples per case: at least this many, and more while the case has run under `budgetMs`. */
  samples: number;
  budgetMs: number;
  /** Longest IMDB-like text; 1019 leaves room for the 5 prompt positions in GPT-2's 1024. */
  maxLength: number;
  lengths: LengthSample | null;
}

function randomBatch(lengths: number[], seed: number): TokenBatch {
  const random = seededRandom(seed);
  const width = Math.max(1, ...lengths);
  const ids = new Uint32Array(lengths.length * width).fill(GPT2_EOS_ID);
  lengths.forEach((n, b) => {
    for (let t = 0; t < n; t++) ids[b * width + t] = Math.floor(random() * GPT2_EOS_ID);
  });
  return { ids, lengths: Uint32Array.from(lengths), width };
}

/** Reads the last layer's cached keys back (every layer feeds them) and fails on a non-finite value. */
async function checkPast(past: ModelPast, what: string): Promise<void> {
  const k = await past.layers.at(-1)!.k.readF32();
  if (!k.every(Number.isFinite)) throw new Error(`${what}: the cached keys hold a non-finite value`);
}

async function encodeCase(gpu: Gpu, model: GPT2, name: string, batch: TokenBatch, opts: PipelineOptions, warm: boolean): Promise<{ result: EncodeResult; past: ModelPast }> {
  const last: { past: ModelPast | null } = { past: null };
  const step = async () => {
    if (last.past) disposePast(last.past);
    last.past = encode(model, batch);
    await gpu.sync();
  };
  if (warm) await step();
  const t = await timeStep(step, opts.samples, opts.budgetMs);
  const past = last.past!;
  await checkPast(past, name);
  const tokens = batch.lengths.reduce((s, n) => s + n, 0);
  const padded = batch.lengths.length * batch.width;
  return {
    result: { name, batch: batch.lengths.length, tokens, padded, ms: t.ms, tokensPerSec: tokens / (t.ms / 1000), paddedPerSec: padded / (t.ms / 1000), samples: t.samples },
    past,
  };
}

/**
 * A prompt and head over a cached past, and the synchronous part of one training step as
 * train() takes it. With `capture`, the step is a CapturedStep: from its third run on it
 * replays the commands it recorded instead of running the ops.
 */
export function promptTrainer(bench: BenchModel, past: ModelPast, opts: { capture?: boolean } = {}): { encodeStep: () => Tensor; capture: CapturedStep | null; dispose: () => void } {
  const { model } = bench;
  const B = past.lengths.length;
  const classifier = new PromptClassifier(model, initialParams(bench.promptInit, model.config.nEmbd, 2, seededRandom(9)), TASKS);
  const optimizer = new Adam(classifier.parameters(), { lr: 1e-3 });
  const examples: Example[] = Array.from({ length: B }, (_, b) => ({ tokens: new Uint32Array(past.lengths[b]!), task: 0, label: b % 2, targets: null }));
  const indices = examples.map((_, i) => i);
  const loss = () => {
    const l = batchLoss(classifier.logits(model, past), examples, indices, classifier.tasks, [{}]);
    l.backward();
    return l;
  };
  const capture = opts.capture
    ? new CapturedStep(model.gpu, () => {
        const l = loss();
        optimizer.update();
        optimizer.zeroGrad();
        return l;
      })
    : null;
  return {
    /** Encodes forward, backward and the Adam step; returns the loss, not yet read. */
    encodeStep: () => {
      if (capture) {
        optimizer.prepare();
        return capture.run();
      }
      const l = tidy(loss);
      optimizer.step();
      optimizer.zeroGrad();
      return l;
    },
    capture,
    dispose: () => {
      capture?.dispose();
      optimizer.dispose();
      classifier.dispose();
    },
  };
}

/** One optimizer step of the prompt and head over a cached past, as train() takes it (the loss read back included). */
async function stepCase(bench: BenchModel, name: string, past: ModelPast, opts: PipelineOptions): Promise<StepResult> {
  const B = past.lengths.length;
  const trainer = promptTrainer(bench, past);
  const step = async () => {
    const loss = trainer.encodeStep();
    const value = (await loss.readF32())[0]!;
    loss.dispose();
    if (!Number.isFinite(value)) throw new Error(`${name}: loss is ${value}`);
  };
  await step();
  const t = await timeStep(step, opts.samples, opts.budgetMs);
  trainer.dispose();
  return { name, batch: B, ms: t.ms, examplesPerSec: B / (t.ms / 1000), samples: t.samples };
}

export async function pipelineBench(gpu: Gpu, bench: BenchModel, opts: PipelineOptions): Promise<PipelineResult> {
  const weightsBytes = gpu.memory().inUse;
  const encodes: EncodeResult[] = [];
  const steps: StepResult[] = [];
  const notes: string[] = [];

  const short = await encodeCase(gpu, bench.model, 'encode B8 × 128 tokens', randomBatch(new Array(8).fill(128), 1), opts, true);
  encodes.push(short.result);
  steps.push(await stepCase(bench, `step B8 × past 128, P${P}`, short.past, opts));
  disposePast(short.past);

  if (opts.lengths) {
    const sorted = [...opts.lengths.lengths].sort((a, b) => a - b);
    // The MLP's [B, T, 4C] activation is the largest storage binding a pass needs; where the
    // adapter's binding limit is below it for 32 texts of the longest length (llvmpipe: 128 MiB),
    // the batch is made smaller, so that any sample of lengths fits.
    const maxPositions = Math.floor(gpu.limits.maxStorageBufferBindingSize / (4 * 4 * bench.model.config.nEmbd));
    const B = Math.max(1, Math.min(32, Math.floor(maxPositions / opts.maxLength)));
    // One text from each of B equal-probability strata of the sampled lengths (their midpoints),
    // so that even a small batch has the distribution's spread and the same batch every run.
    const lengths = Array.from({ length: B }, (_, i) => Math.max(1, Math.min(opts.maxLength, sorted[Math.floor(((i + 0.5) / B) * sorted.length)]!)));
    if (B < 32) notes.push(`IMDB-like batch of ${B}, not 32: 32 texts of ${opts.maxLength} tokens exceed this adapter's ${gpu.limits.maxStorageBufferBindingSize >> 20} MiB storage binding limit`);
    const mean = Math.round(lengths.reduce((s, n) => s + n, 0) / lengths.length);
    const label = `B${B} IMDB-like ≤ ${opts.maxLength} (mean ${mean}, max ${Math.max(...lengths)})`;
    // Warm already: the 128-token batch compiled every pipeline.
    const imdb = await encodeCase(gpu, bench.model, `encode ${label}`, randomBatch(lengths, 2), opts, false);
    encodes.push(imdb.result);
    steps.push(await stepCase(bench, `step ${label}, P${P}`, imdb.past, opts));
    disposePast(imdb.past);
  }
  return { model: bench.description, lengthSource: opts.lengths?.source ?? null, encode: encodes, step: steps, peakBytes: gpu.memory().peak, weightsBytes, notes };
}

// ---- epoch time: cached pasts vs recomputed -------------------------------------------------------

export interface EpochOptions {
  examples: number;
  /** Texts are this long, give or take an eighth. */
  tokens: number;
  batchSize: number;
  /**
   * Epochs per run, at least 2. The first epoch of the cached run computes the pasts; each later
   * epoch is timed, and the fastest counts, since other work on the machine only adds time.
   */
  epochs: number;
}

export interface EpochResult {
  model: string;
  examples: number;
  meanTokens: number;
  batchSize: number;
  /** Seconds of every epoch with pasts cached (the first computes and stores them). */
  cachedEpochs: number[];
  /** Seconds of every epoch recomputing each batch's past (cacheBytes 0, the original method). */
  recomputeEpochs: number[];
  /** Seconds of every epoch with pasts cached in f16 (cacheF16: half the cache memory). */
  cachedF16Epochs: number[];
  /** The fastest epoch after the first, of each run. */
  cachedSeconds: number;
  recomputeSeconds: number;
  cachedF16Seconds: number;
  ratio: number;
  /** Largest difference of the f16 run's per-epoch mean losses from the f32 run's. */
  f16LossDifference: number;
  /** Largest difference of the two runs' per-epoch mean losses (they must agree: same data, same updates). */
  lossDifference: number;
}

export async function epochBench(bench: BenchModel, opts: EpochOptions): Promise<EpochResult> {
  const random = seededRandom(11);
  const examples: Example[] = Array.from({ length: opts.examples }, (_, i) => {
    const n = opts.tokens - Math.floor(random() * (opts.tokens / 8));
    return { tokens: Uint32Array.from({ length: n }, () => Math.floor(random() * GPT2_EOS_ID)), task: 0, label: i % 2, targets: null };
  });
  const run = async (cacheBytes: number, cacheF16 = false) => {
    const classifier = new PromptClassifier(bench.model, initialParams(bench.promptInit, bench.model.config.nEmbd, 2, seededRandom(9)), TASKS);
    const epochs: { seconds: number; meanLoss: number }[] = [];
    const optimizer = await train(bench.model, classifier, examples, {
      epochs: Math.max(2, opts.epochs),
      batchSize: opts.batchSize,
      lr: 1e-3,
      seed: 3,
      losses: [{}],
      cacheBytes,
      cacheF16,
      onEpoch: ({ seconds, meanLoss }) => void epochs.push({ seconds, meanLoss }),
    });
    optimizer.dispose();
    classifier.dispose();
    return epochs;
  };
  const cached = await run(Number.MAX_SAFE_INTEGER);
  const recomputed = await run(0);
  const cachedF16 = await run(Number.MAX_SAFE_INTEGER, true);
  const lossDifference = Math.max(...cached.map((e, i) => Math.abs(e.meanLoss - recomputed[i]!.meanLoss)));
  if (!(lossDifference <= 1e-4)) {
    throw new Error(`epoch: cached and recomputed pasts trained differently (mean losses ${cached.map((e) => e.meanLoss)} vs ${recomputed.map((e) => e.meanLoss)})`);
  }
  const fastestLater = (epochs: { seconds: number }[]) => Math.min(...epochs.slice(1).map((e) => e.seconds));
  const cachedSeconds = fastestLater(cached);
  const recomputeSeconds = fastestLater(recomputed);
  const cachedF16Seconds = fastestLater(cachedF16);
  return {
    model: bench.description,
    examples: opts.examples,
    meanTokens: examples.reduce((s, e) => s + e.tokens.length, 0) / examples.length,
    batchSize: opts.batchSize,
    cachedEpochs: cached.map((e) => e.seconds),
    recomputeEpochs: recomputed.map((e) => e.seconds),
    cachedF16Epochs: cachedF16.map((e) => e.seconds),
    cachedSeconds,
    recomputeSeconds,
    cachedF16Seconds,
    ratio: cachedSeconds / recomputeSeconds,
    lossDifference,
    f16LossDifference: Math.max(...cachedF16.map((e, i) => Math.abs(e.meanLoss - cached[i]!.meanLoss))),
  };
}
