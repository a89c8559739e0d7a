// A character-level transformer language model written as nn modules: token and learned
// position embeddings, pre-norm blocks (LayerNorm → causal self-attention, LayerNorm → MLP, each
// added back to the residual stream), a final LayerNorm and a linear head over the characters —
// the layout of GPT-2 and nanoGPT, small enough to train in about a minute on a CPU adapter.
// It trains with Adam, saves its state dict as safetensors, reloads it into a fresh model (the
// same logits, bit for bit) and samples a line.
//
//   node --import tsx examples/char-transformer.ts
//
// Text: examples/data/devils-dictionary-a-c.txt, the preface and the letters A–C of "The Devil's
// Dictionary" by Ambrose Bierce (1911), a public-domain text (copyright expired; the edition
// says "A Public Domain Text, Copyright Expired"). The copy is lines 15–1320 of Debian's
// package dict-devil 1.0-13.1 (/usr/share/dictd/devil.dict.dz, unzipped), which took it from
// the Internet Wiretap 1st Online Edition (1993); see examples/data/README.md.
//
// Shapes: B batch, T positions (≤ context), D model width, H heads of D / H, V characters.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  nn,
  tensor,
  tidy,
  noGrad,
  add,
  mul,
  mean,
  cat,
  narrow,
  transpose,
  softmax,
  scaledDotProductAttention,
  crossEntropy,
  Adam,
  type Gpu,
  type Tensor,
} from '../src/index.ts';
import { openGpu, saveSafetensorsFile, loadSafetensorsFile } from '../src/node/index.ts';

export const TEXT_URL = new URL('data/devils-dictionary-a-c.txt', import.meta.url);

export interface CharConfig {
  /** V: the number of distinct characters. */
  vocab: number;
  /** The longest window the model sees (the position table's rows). */
  context: number;
  /** D */
  dim: number;
  /** H; must divide D. */
  heads: number;
  /** The number of blocks. */
  layers: number;
  /** Seeds every layer's initial values (each layer its own seed derived from it). */
  seed: number;
}

/** Causal multi-head self-attention: one Linear makes q, k and v, another mixes the heads' outputs. */
export class CausalSelfAttention extends nn.Module {
  readonly qkv: nn.Linear;
  readonly out: nn.Linear;

  constructor(gpu: Gpu, dim: number, readonly heads: number, seed: number) {
    super();
    if (dim % heads !== 0) throw new RangeError(`CausalSelfAttention: dim ${dim} is not a multiple of heads ${heads}`);
    this.qkv = this.registerModule('qkv', new nn.Linear(gpu, dim, 3 * dim, { seed }));
    this.out = this.registerModule('out', new nn.Linear(gpu, dim, dim, { seed: seed + 1 }));
  }

  /** x [B, T, D] → [B, T, D]; position t attends to positions ≤ t. */
  override forward(x: Tensor): Tensor {
    const [B, T, D] = x.shape as [number, number, number];
    const qkv = this.qkv.forward(x); // [B, T, 3D]
    // [B, T, D] → [B, H, T, D/H]: head h owns columns h·D/H … (h + 1)·D/H − 1.
    const heads = (i: number) => transpose(narrow(qkv, -1, i * D, D).reshape([B, T, this.heads, D / this.heads]), 1, 2);
    const y = scaledDotProductAttention(heads(0), heads(1), heads(2), { causal: true }); // [B, H, T, D/H]
    return this.out.forward(transpose(y, 1, 2).reshape([B, T, D]));
  }
}

/** A pre-norm block: x + attn(norm1(x)), then + mlp(norm2(·)), the MLP 4× wide with tanh GELU as GPT-2's. */
export class Block extends nn.Module {
  readonly norm1: nn.LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly norm2: nn.LayerNorm;
  readonly mlp: nn.Sequential;

  constructor(gpu: Gpu, dim: number, heads: number, seed: number) {
    super();
    this.norm1 = this.registerModule('norm1', new nn.LayerNorm(gpu, dim));
    this.attn = this.registerModule('attn', new CausalSelfAttention(gpu, dim, heads, seed));
    this.norm2 = this.registerModule('norm2', new nn.LayerNorm(gpu, dim));
    this.mlp = this.registerModule(
      'mlp',
      new nn.Sequential(new nn.Linear(gpu, dim, 4 * dim, { seed: seed + 2 }), new nn.GELU({ approximate: 'tanh' }), new nn.Linear(gpu, 4 * dim, dim, { seed: seed + 3 })),
    );
  }

  override forward(x: Tensor): Tensor {
    const h = add(x, this.attn.forward(this.norm1.forward(x)));
    return add(h, this.mlp.forward(this.norm2.forward(h)));
  }
}

/** ids [B, T] (u32) → logits [B, T, V] for the character after each position. */
export class CharTransformer extends nn.Module {
  readonly tokens: nn.Embedding;
  readonly positions: nn.Embedding;
  readonly blocks: nn.ModuleList<Block>;
  readonly norm: nn.LayerNorm;
  readonly head: nn.Linear;

  constructor(gpu: Gpu, readonly config: CharConfig) {
    super();
    const { vocab, context, dim, heads, layers, seed } = config;
    this.tokens = this.registerModule('tokens', new nn.Embedding(gpu, vocab, dim, { seed }));
    this.positions = this.registerModule('positions', new nn.Embedding(gpu, context, dim, { seed: seed + 1 }));
    this.blocks = this.registerModule('blocks', new nn.ModuleList(Array.from({ length: layers }, (_, i) => new Block(gpu, dim, heads, seed + 10 * (i + 1)))));
    this.norm = this.registerModule('norm', new nn.LayerNorm(gpu, dim));
    this.head = this.registerModule('head', new nn.Linear(gpu, dim, vocab, { seed: seed + 2 }));
  }

  override forward(ids: Tensor): Tensor {
    const [, T] = ids.shape as [number, number];
    if (ids.shape.length !== 2 || T > this.config.context) {
      throw new RangeError(`CharTransformer: ids must be [batch, T ≤ ${this.config.context}], got [${ids.shape.join(', ')}]`);
    }
    const positions = this.positions.forward(Uint32Array.from({ length: T }, (_, t) => t)); // [T, D]
    let x = add(this.tokens.forward(ids), positions); // [B, T, D]
    for (const block of this.blocks) x = block.forward(x);
    return this.head.forward(this.norm.forward(x)); // [B, T, V]
  }
}

/** The text's characters, sorted: a character's id is its index. */
export class CharVocab {
  readonly chars: string[];
  readonly #ids: Map<string, number>;

  constructor(text: string) {
    this.chars = [...new Set(text)].sort();
    this.#ids = new Map(this.chars.map((c, i) => [c, i]));
  }

  get size(): number {
    return this.chars.length;
  }

  encode(text: string): Uint32Array {
    return Uint32Array.from(text, (c) => {
      const id = this.#ids.get(c);
      if (id === undefined) throw new RangeError(`CharVocab: ${JSON.stringify(c)} is not one of the text's ${this.size} characters`);
      return id;
    });
  }

  decode(ids: ArrayLike<number>): string {
    return Array.from(ids, (id) => this.chars[id] ?? '?').join('');
  }
}

export function readText(url: URL = TEXT_URL): string {
  return readFileSync(url, 'utf8');
}

/** Seeded uniform [0, 1) numbers (mulberry32): batches and samples are reproducible. */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TrainOptions {
  steps: number;
  batch: number;
  /** T: the window each example trains on (≤ context). */
  window: number;
  lr: number;
  /** Seeds the windows drawn. */
  seed?: number;
  /** The loss is averaged and reported every this many steps (and after the first and the last). */
  every?: number;
  progress?: (line: string) => void;
}

export interface TrainResult {
  /** Mean training loss (nats per character) of each reported interval, in order; the first is step 1's alone. */
  losses: { step: number; loss: number }[];
  seconds: number;
}

/**
 * Trains on random windows of `ids` with Adam: each example is ids[s … s + T) predicting
 * ids[s + 1 … s + T]. The losses stay on the GPU until an interval ends (one read per interval,
 * not one wait per step).
 */
export async function train(model: CharTransformer, ids: Uint32Array, options: TrainOptions): Promise<TrainResult> {
  const { steps, batch, window: T, lr, seed = 1, every = 25, progress } = options;
  if (ids.length < T + 1) throw new RangeError(`train: the text has ${ids.length} characters, fewer than a window of ${T} + 1`);
  const gpu = model.head.weight.gpu;
  const random = seededUniform(seed);
  const optimizer = new Adam(model.parameters(), { lr });
  const started = performance.now();
  const losses: TrainResult['losses'] = [];
  let pending: Tensor[] = [];
  try {
    for (let step = 1; step <= steps; step++) {
      const inputs = new Uint32Array(batch * T);
      const targets = new Uint32Array(batch * T);
      for (let b = 0; b < batch; b++) {
        const start = Math.floor(random() * (ids.length - T));
        inputs.set(ids.subarray(start, start + T), b * T);
        targets.set(ids.subarray(start + 1, start + T + 1), b * T);
      }
      pending.push(
        tidy(() => {
          const logits = model.forward(tensor(gpu, inputs, [batch, T], { dtype: 'u32' }));
          const loss = crossEntropy(logits.reshape([batch * T, model.config.vocab]), targets);
          loss.backward();
          return loss;
        }),
      );
      optimizer.step();
      optimizer.zeroGrad();
      if (step === 1 || step % every === 0 || step === steps) {
        const average = tidy(() => mean(cat(pending, 0)));
        const loss = (await average.readF32())[0]!;
        average.dispose();
        for (const l of pending) l.dispose();
        pending = [];
        losses.push({ step, loss });
        progress?.(`step ${step}/${steps}: loss ${loss.toFixed(4)} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
      }
    }
    return { losses, seconds: (performance.now() - started) / 1000 };
  } finally {
    for (const l of pending) l.dispose();
    optimizer.dispose();
  }
}

/** The logits [1, T, V] of one text, without a tape. */
export async function logitsOf(model: CharTransformer, ids: Uint32Array): Promise<Float32Array> {
  const gpu = model.head.weight.gpu;
  const logits = tidy(() => noGrad(() => model.forward(tensor(gpu, ids, [1, ids.length], { dtype: 'u32' }))));
  const values = await logits.readF32();
  logits.dispose();
  return values;
}

export interface SampleOptions {
  /** Characters to add. */
  length: number;
  /** Divides the logits: below 1 sharper, above 1 flatter. */
  temperature?: number;
  seed: number;
}

/** Continues `prompt` one character at a time, drawing each from softmax(logits / temperature) with a seeded generator. */
export async function sample(model: CharTransformer, vocab: CharVocab, prompt: string, options: SampleOptions): Promise<string> {
  const { length, temperature = 1, seed } = options;
  if (!(temperature > 0)) throw new RangeError(`sample: temperature must be > 0, got ${temperature}`);
  const gpu = model.head.weight.gpu;
  const random = seededUniform(seed);
  const ids = [...vocab.encode(prompt)];
  if (ids.length === 0) throw new RangeError('sample: the prompt must have at least one character');
  for (let i = 0; i < length; i++) {
    const window = Uint32Array.from(ids.slice(-model.config.context));
    const probabilities = tidy(() =>
      noGrad(() => {
        const logits = model.forward(tensor(gpu, window, [1, window.length], { dtype: 'u32' }));
        const last = narrow(logits.reshape([window.length, vocab.size]), 0, window.length - 1, 1);
        return softmax(mul(last, 1 / temperature));
      }),
    );
    const p = await probabilities.readF32();
    probabilities.dispose();
    let u = random();
    let next = p.length - 1;
    for (let c = 0; c < p.length; c++) {
      u -= p[c]!;
      if (u < 0) {
        next = c;
        break;
      }
    }
    ids.push(next);
  }
  return vocab.decode(ids);
}

/** The full run's size: about a minute on llvmpipe (docs/examples.md has the measured loss curve). */
export const FULL_RUN = {
  model: { context: 32, dim: 48, heads: 4, layers: 2, seed: 1 },
  train: { steps: 300, batch: 16, window: 32, lr: 5e-3, seed: 1, every: 25 },
} as const;

async function main(): Promise<void> {
  const gpu = await openGpu();
  const text = readText();
  const vocab = new CharVocab(text);
  const ids = vocab.encode(text);
  const config: CharConfig = { vocab: vocab.size, ...FULL_RUN.model };
  const model = new CharTransformer(gpu, config);
  const parameters = model.parameters().reduce((n, p) => n + p.size, 0);
  console.error(`${text.length} characters, ${vocab.size} distinct (ln ${vocab.size} = ${Math.log(vocab.size).toFixed(3)}); ${parameters} parameters; ${gpu.adapterName}`);
  const result = await train(model, ids, { ...FULL_RUN.train, progress: (line) => console.error(line) });
  console.error(`trained in ${result.seconds.toFixed(1)} s`);

  const file = join(mkdtempSync(join(tmpdir(), 'char-transformer-')), 'model.safetensors');
  await saveSafetensorsFile(file, model.stateDict(), { metadata: { text: 'devils-dictionary-a-c.txt', config: JSON.stringify(config) } });
  const fresh = new CharTransformer(gpu, { ...config, seed: config.seed + 1000 });
  const dict = await loadSafetensorsFile(gpu, file);
  fresh.loadStateDict(dict);
  for (const t of dict.values()) t.dispose();
  const probe = ids.subarray(0, config.context);
  const [before, after] = [await logitsOf(model, probe), await logitsOf(fresh, probe)];
  const same = before.every((v, i) => Object.is(v, after[i]));
  console.error(`saved ${file}; reloaded into a fresh model: logits ${same ? 'identical' : 'DIFFERENT'} (${before.length} values)`);
  console.log(await sample(fresh, vocab, 'CAT, n.', { length: 160, temperature: 0.8, seed: 7 }));
  model.dispose();
  fresh.dispose();
  gpu.destroy();
  if (!same) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
