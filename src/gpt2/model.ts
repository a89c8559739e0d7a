// GPT-2 as the paper draws it, built from the engine's modules and laid out as Hugging Face's
// GPT2Model, so that its state dict is a GPT-2 checkpoint (transformers' names, order and
// Conv1D layout) and loading one is loadSafetensors + loadStateDict:
//
//   wte [V, C], wpe [nPositions, C]    token + position embeddings
//   h.0 … h.{L−1}                      blocks: x + attn(ln_1(x)), then x + mlp(ln_2(x))
//   ln_f                               the final layer norm; the output head is wte, tied
//
// Two entry points serve the method: encodePast() runs a right-padded batch of texts once and
// keeps every layer's keys and values; forwardWithPast() runs new vectors (a soft prompt) per
// example at the positions right after that example's own last real token, attending to its
// past. The kernels are the fused ones (matmul with its bias, layerNorm, gelu, attention with
// the past), one launch each.
import type { Gpu } from '../gpu/context.ts';
import { Tensor, fromGpuBuffer, keep, noGrad, tidy, isGradEnabled, shapeString, BYTES_PER_ELEMENT } from '../tensor/tensor.ts';
import { add } from '../ops/elementwise.ts';
import { matmul } from '../ops/matmul.ts';
import { gelu, GELU_TANH } from '../ops/gelu.ts';
import { attention, splitPast, type Past } from '../ops/attention.ts';
import { gatherRows } from '../ops/gather.ts';
import { Module, LayerNorm, ModuleList, type LoadResult, type StateDictLike } from '../nn/index.ts';
import { stateDictEntries } from '../nn/module.ts';
import { loadSafetensors } from '../nn/state-dict.ts';
import { parseSafetensors } from '../nn/safetensors.ts';
import { parseConfig, type GPT2Config } from './config.ts';
import { planCheckpoint, fileFingerprint, weightArrays, MASK_BUFFER, type CheckpointPlan, type GPT2HostWeights } from './checkpoint.ts';

/**
 * f32 storage for a parameter, not initialised: GPT-2's weights are always filled afterwards,
 * from a checkpoint (loadStateDict) or host arrays (initialWeights is GPT-2's initialisation),
 * and drawing 124M random values only to overwrite them costs seconds. Under tests the memory
 * is NaN-poisoned, so a weight nothing filled shows.
 */
function unfilled(gpu: Gpu, shape: number[], label: string): Tensor {
  return Tensor.empty(gpu, shape, 'f32', label);
}

/**
 * Hugging Face's Conv1D: y = x·W + b with W [in, out] — nn.Linear with its weight transposed,
 * the layout GPT-2's checkpoints store. x: [..., in] → [..., out], the bias fused into the matmul.
 */
export class Conv1D extends Module {
  readonly weight: Tensor; // [in, out]
  readonly bias: Tensor; // [out]

  constructor(gpu: Gpu, readonly inFeatures: number, readonly outFeatures: number, label = 'Conv1D') {
    super();
    this.weight = this.registerParameter('weight', unfilled(gpu, [inFeatures, outFeatures], `${label}.weight`));
    this.bias = this.registerParameter('bias', unfilled(gpu, [outFeatures], `${label}.bias`));
  }

  override forward(x: Tensor): Tensor {
    if (x.shape.at(-1) !== this.inFeatures) throw new RangeError(`Conv1D(${this.inFeatures}, ${this.outFeatures}): input ${shapeString(x.shape)} must end in ${this.inFeatures}`);
    return matmul(x, this.weight, { bias: this.bias });
  }
}

/**
 * An embedding table [rows, C] whose lookups bind it a row range at a time. GPT-2 small's wte
 * (50257 × 768 f32, 154 MB) exceeds one storage binding on many adapters (128 MiB is WebGPU's
 * default maxStorageBufferBindingSize), though not one buffer (maxBufferSize is at least
 * 256 MiB). So the weight is ONE parameter in ONE buffer — the state dict, loadStateDict's
 * copies (buffer copies, which have no binding limit), saving and optimizers all see one
 * [rows, C] tensor, as in torch — and `shards` are views of row ranges of that buffer, each
 * small enough to bind, over which gathers and the tied head run. Rather than a state-dict
 * entry assembled from separate shard tensors on save and split on load: no copy, and
 * loadStateDict fills the model's own storage in place.
 *
 * Gradients reach the weight only when it is one shard: views of a larger table are not
 * tensors of the tape, so lookups refuse to record a gradient for it.
 */
export class ShardedEmbedding extends Module {
  readonly weight: Tensor; // [rows, C]
  /** Row ranges of `weight` in order, each within one storage binding; [weight] itself when it fits one. */
  readonly shards: readonly Tensor[];

  constructor(gpu: Gpu, readonly numEmbeddings: number, readonly embeddingDim: number, label = 'embedding') {
    super();
    this.weight = this.registerParameter('weight', unfilled(gpu, [numEmbeddings, embeddingDim], `${label}.weight`));
    const rowBytes = embeddingDim * BYTES_PER_ELEMENT.f32;
    const maxBinding = gpu.limits.maxStorageBufferBindingSize;
    if (numEmbeddings * rowBytes <= maxBinding) {
      this.shards = [this.weight];
      return;
    }
    // A view starts at a multiple of minStorageBufferOffsetAlignment, so shards hold a multiple of `granule` rows.
    const align = gpu.limits.minStorageBufferOffsetAlignment;
    const granule = align / gcd(rowBytes, align);
    const rowsPerShard = Math.floor(maxBinding / rowBytes / granule) * granule;
    if (rowsPerShard === 0) throw new RangeError(`${label}: ${granule} rows of ${embeddingDim} f32 values exceed one storage binding (${maxBinding} bytes)`);
    const { buffer, offset } = this.weight.bufferRange();
    const shards: Tensor[] = [];
    for (let start = 0; start < numEmbeddings; start += rowsPerShard) {
      const rows = Math.min(rowsPerShard, numEmbeddings - start);
      // Kept as the weight is: a model built inside tidy() keeps its views.
      shards.push(keep(fromGpuBuffer(gpu, buffer, [rows, embeddingDim], { offset: offset + start * rowBytes, label: `${label}.weight[${start}:${start + rows}]` })));
    }
    this.shards = shards;
  }

  /** Rows of the table: [ids.length, C]. */
  override forward(ids: Uint32Array): Tensor {
    if (this.shards.length > 1 && this.weight.requiresGrad && isGradEnabled()) {
      throw new Error(`${this.weight.label}: a table in ${this.shards.length} row ranges takes no gradient (train it where it fits one storage binding, or look it up under noGrad)`);
    }
    return gatherRows(this.shards, ids);
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Causal self-attention: c_attn makes queries, keys and values [B, T, 3C]; c_proj mixes the heads' outputs. */
export class GPT2Attention extends Module {
  readonly cAttn: Conv1D; // [C, 3C]
  readonly cProj: Conv1D; // [C, C]

  constructor(gpu: Gpu, readonly config: GPT2Config, label: string) {
    super();
    const C = config.nEmbd;
    this.cAttn = this.registerModule('c_attn', new Conv1D(gpu, C, 3 * C, `${label}.c_attn`));
    this.cProj = this.registerModule('c_proj', new Conv1D(gpu, C, C, `${label}.c_proj`));
  }

  /** The heads over queries, keys and values qkv [B, T, 3C] (see attention's past and lengths), projected: [B, T, C]. */
  override forward(qkv: Tensor, opts: { past?: Past; newLengths?: Uint32Array } = {}): Tensor {
    return this.cProj.forward(attention(qkv, this.config.nHead, opts));
  }
}

/** The feed-forward network: c_proj(gelu(c_fc(x))), C → 4C → C. */
export class GPT2MLP extends Module {
  readonly cFc: Conv1D; // [C, 4C]
  readonly cProj: Conv1D; // [4C, C]

  constructor(gpu: Gpu, C: number, label: string) {
    super();
    this.cFc = this.registerModule('c_fc', new Conv1D(gpu, C, 4 * C, `${label}.c_fc`));
    this.cProj = this.registerModule('c_proj', new Conv1D(gpu, 4 * C, C, `${label}.c_proj`));
  }

  override forward(x: Tensor): Tensor {
    return this.cProj.forward(gelu(this.cFc.forward(x), GELU_TANH)); // [B, T, 4C] in between (GPT-2's gelu_new)
  }
}

/** One transformer block (pre-norm): x + attn(ln_1(x)), then x + mlp(ln_2(x)). */
export class GPT2Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln2: LayerNorm;
  readonly mlp: GPT2MLP;

  constructor(gpu: Gpu, config: GPT2Config, label: string) {
    super();
    const C = config.nEmbd;
    const eps = config.layerNormEps;
    this.ln1 = this.registerModule('ln_1', new LayerNorm(gpu, C, { eps }));
    this.attn = this.registerModule('attn', new GPT2Attention(gpu, config, `${label}.attn`));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(gpu, C, { eps }));
    this.mlp = this.registerModule('mlp', new GPT2MLP(gpu, C, `${label}.mlp`));
  }

  /** x [B, T, C] → the block's output [B, T, C], and the layer's queries, keys and values [B, T, 3C] (its past). */
  override forward(x: Tensor, opts: { past?: Past; newLengths?: Uint32Array } = {}): { out: Tensor; qkv: Tensor } {
    const qkv = this.queryKeyValue(x); // [B, T, 3C]
    const h = add(x, this.attn.forward(qkv, opts));
    return { out: add(h, this.mlp.forward(this.ln2.forward(h))), qkv };
  }

  /** c_attn(ln_1(x)): queries, keys and values [B, T, 3C] of x [B, T, C]. */
  queryKeyValue(x: Tensor): Tensor {
    return this.attn.cAttn.forward(this.ln1.forward(x));
  }
}

/** A batch's cached keys/values: one Past per layer, plus each example's real length. */
export interface ModelPast {
  layers: Past[];
  lengths: Uint32Array;
}

/** How a past is stored. */
export interface PastOptions {
  /** Keys and values in f16: half the memory, each rounded to a nearest half (see splitPast). */
  pastF16?: boolean;
}

/** A right-padded batch of token ids: ids[b*T + t], lengths[b] real tokens of example b. */
export interface TokenBatch {
  ids: Uint32Array;
  lengths: Uint32Array;
  /** Padded length T (≥ every length, ≥ 1). */
  width: number;
}

/**
 * GPT-2 (GPT2Model; the LM head is wte, tied). Frozen as built: the method trains only its
 * prompt, so the weights take no gradient until a trainer sets requiresGrad (Pretrainer does).
 */
export class GPT2 extends Module {
  readonly gpu: Gpu;
  readonly config: GPT2Config;
  readonly wte: ShardedEmbedding; // [V, C]
  readonly wpe: ShardedEmbedding; // [nPositions, C]
  readonly h: ModuleList<GPT2Block>;
  readonly lnF: LayerNorm;

  /**
   * The model with `weights` (host arrays, e.g. initialWeights or a checkpoint read on the
   * host); without them the weights are left for loadStateDict to fill (see loadGPT2).
   */
  constructor(gpu: Gpu, config: GPT2Config, weights?: GPT2HostWeights) {
    super();
    this.gpu = gpu;
    this.config = config;
    this.wte = this.registerModule('wte', new ShardedEmbedding(gpu, config.vocabSize, config.nEmbd, 'wte'));
    this.wpe = this.registerModule('wpe', new ShardedEmbedding(gpu, config.nPositions, config.nEmbd, 'wpe'));
    this.h = this.registerModule('h', new ModuleList(Array.from({ length: config.nLayer }, (_, i) => new GPT2Block(gpu, config, `h.${i}`))));
    this.lnF = this.registerModule('ln_f', new LayerNorm(gpu, config.nEmbd, { eps: config.layerNormEps }));
    for (const p of this.parameters()) p.requiresGrad = false;
    if (weights) this.writeWeights(weights);
  }

  /**
   * nn.Module's strict load, with the causal-mask buffers older transformers saved
   * (h.N.attn.bias, masked_bias) dropped first, as transformers' GPT-2 ignores them on load.
   */
  override loadStateDict(dict: StateDictLike, options: { strict?: boolean } = {}): LoadResult {
    return super.loadStateDict(new Map(stateDictEntries(dict).filter(([key]) => !MASK_BUFFER.test(key))), options);
  }

  /** Uploads host weights straight into the parameters (no second copy on the GPU). */
  private writeWeights(weights: GPT2HostWeights): void {
    const arrays = weightArrays(weights);
    const state = [...this.stateDict()];
    if (arrays.length !== state.length) throw new RangeError(`GPT2: ${arrays.length} host weight arrays for ${state.length} tensors (n_layer ${this.config.nLayer})`);
    state.forEach(([key, t], i) => {
      if (arrays[i]!.length !== t.size) throw new RangeError(`GPT2: host weights for ${key} hold ${arrays[i]!.length} values, ${shapeString(t.shape)} needs ${t.size}`);
      t.write(arrays[i]!);
    });
  }

  /**
   * The language model's final hidden states [B, T, C] of full sequences ids [B·T] (every
   * position real, each attending to itself and the ones before): what next-token training
   * reads through the tied head. Unlike encodePast it keeps no past.
   */
  hiddenStates(ids: Uint32Array, T: number): Tensor {
    const B = ids.length / T;
    if (!Number.isInteger(B) || B < 1) throw new RangeError(`hiddenStates: ${ids.length} ids do not make whole sequences of ${T}`);
    this.checkPositions(new Uint32Array(0), 0, T);
    let x = this.embed(ids, B, T);
    for (const block of this.h) x = block.forward(x).out;
    return this.lnF.forward(x);
  }

  /** wte(ids) + wpe(positions 0..T−1 of each sequence): [B, T, C]. */
  private embed(ids: Uint32Array, B: number, T: number): Tensor {
    const positions = new Uint32Array(B * T);
    for (let i = 0; i < positions.length; i++) positions[i] = i % T;
    return add(this.wte.forward(ids), this.wpe.forward(positions)).reshape([B, T, this.config.nEmbd]);
  }

  /** Bytes of GPU memory a past of this many examples × positions takes (keys and values, every layer). */
  pastBytes(examples: number, positions: number, opts: PastOptions = {}): number {
    return this.config.nLayer * 2 * examples * positions * this.config.nEmbd * BYTES_PER_ELEMENT[opts.pastF16 ? 'f16' : 'f32'];
  }

  /** Runs a right-padded batch of texts; returns each layer's keys/values and the final hidden states [B, T, C]. */
  encodePast(batch: TokenBatch, opts: PastOptions = {}): { past: ModelPast; hidden: Tensor } {
    const { past, x } = this.encodeLayers(batch, opts, true);
    const hidden = this.lnF.forward(x!);
    if (!isGradEnabled()) x!.dispose();
    return { past, hidden };
  }

  /**
   * Each layer's keys/values of a right-padded batch of texts, and nothing else: the last block
   * stops once it has them, since the rest of it only feeds the final hidden states (for
   * GPT-2 small that skips 3/4 of one block's matmul work in twelve). The same values as
   * encodePast's past.
   */
  pastOf(batch: TokenBatch, opts: PastOptions = {}): ModelPast {
    return this.encodeLayers(batch, opts, false).past;
  }

  /** The blocks over a batch of texts: every layer's past, and the last block's output when asked. */
  private encodeLayers(batch: TokenBatch, opts: PastOptions, lastOutput: boolean): { past: ModelPast; x: Tensor | null } {
    const { ids, lengths, width: T } = batch;
    const B = lengths.length;
    this.checkPositions(lengths, 0, T);
    if (ids.length !== B * T) throw new RangeError(`token batch has ${ids.length} ids, expected ${B}×${T}`);
    let x = this.embed(ids, B, T); // [B, T, C]
    const layers: Past[] = [];
    const split = (qkv: Tensor) => splitPast(qkv, this.config.nHead, lengths, { f16: opts.pastF16 ?? false });
    // Without autodiff nothing needs a layer's activations once the next layer has its input,
    // so each layer frees them: peak memory is the past plus one layer, not all twelve.
    const frozen = !isGradEnabled();
    const last = this.h.length - 1;
    for (const [i, block] of [...this.h].entries()) {
      if (i === last && !lastOutput) {
        layers.push(frozen ? tidy(() => split(block.queryKeyValue(x))) : split(block.queryKeyValue(x)));
        if (frozen) x.dispose();
        return { past: { layers, lengths }, x: null };
      }
      const layer = () => {
        const { out, qkv } = block.forward(x, { newLengths: lengths });
        return { out, past: split(qkv) };
      };
      const { out, past } = frozen ? tidy(layer) : layer();
      layers.push(past);
      if (frozen) x.dispose();
      x = out;
    }
    return { past: { layers, lengths }, x };
  }

  /**
   * Runs new input vectors — [P, C] shared by every example, or [B, P, C] — at positions
   * past.lengths[b] .. past.lengths[b]+P-1 of each example, attending to its past.
   * Returns the final hidden states [B, P, C]. Gradients flow to `vectors` only.
   */
  forwardWithPast(past: ModelPast, vectors: Tensor): Tensor {
    const B = past.lengths.length;
    const C = this.config.nEmbd;
    const P = vectors.shape.length === 2 ? vectors.shape[0]! : vectors.shape[1]!;
    if (vectors.shape.at(-1) !== C || (vectors.shape.length === 3 && vectors.shape[0] !== B) || vectors.shape.length < 2 || vectors.shape.length > 3) {
      throw new RangeError(`forwardWithPast: vectors of shape [${vectors.shape.join(', ')}], expected [P, ${C}] or [${B}, P, ${C}]`);
    }
    this.checkPositions(past.lengths, P, 0);
    const positions = new Uint32Array(B * P);
    for (let b = 0; b < B; b++) for (let p = 0; p < P; p++) positions[b * P + p] = past.lengths[b]! + p;
    let x = add(vectors, this.wpe.forward(positions).reshape([B, P, C])); // [B, P, C]
    [...this.h].forEach((block, i) => {
      x = block.forward(x, { past: past.layers[i]! }).out;
    });
    return this.lnF.forward(x);
  }

  /** Logits over the vocabulary for hidden states [N, C] through the tied embedding (read back per shard). */
  async lmLogits(hidden: Tensor): Promise<Float32Array> {
    const N = hidden.shape[0]!;
    const V = this.config.vocabSize;
    const logits = new Float32Array(N * V);
    let offset = 0;
    for (const shard of this.wte.shards) {
      const rows = shard.shape[0]!;
      const part = noGrad(() => matmul(hidden, shard, { transB: true }));
      const values = await part.readF32();
      part.dispose();
      for (let n = 0; n < N; n++) logits.set(values.subarray(n * rows, (n + 1) * rows), n * V + offset);
      offset += rows;
    }
    return logits;
  }

  private checkPositions(lengths: Uint32Array, extra: number, width: number): void {
    const max = Math.max(width, ...Array.from(lengths, (n) => n + extra));
    if (max > this.config.nPositions) {
      throw new RangeError(`a sequence of ${max} positions exceeds the model's n_positions of ${this.config.nPositions}; lower the max length`);
    }
  }
}

/** A checkpoint on the GPU: the model, and what loading learned of the file. */
export interface LoadedGPT2 {
  model: GPT2;
  /** The file key of each weight, the file's dtypes, the tensors GPT-2 does not use. */
  plan: CheckpointPlan;
  /** The model's id in prompt files (fingerprint() of these weights). */
  fingerprint: string;
}

/**
 * A Hugging Face GPT-2 checkpoint (config.json + model.safetensors) as a GPT2: its tensors
 * through loadSafetensors, into the model by loadStateDict. The keys may carry
 * GPT2LMHeadModel's `transformer.` prefix; the tied lm_head and old causal-mask buffers are
 * skipped. Every key, shape and config field is checked against the header before any data
 * is read, so a mismatch names the config field it contradicts.
 */
export async function loadGPT2(gpu: Gpu, configJson: string | object, safetensors: Uint8Array, name: string): Promise<LoadedGPT2> {
  const config = parseConfig(configJson, `${name}: config`);
  const file = parseSafetensors(safetensors, name);
  const plan = planCheckpoint(config, file.entries, name);
  const id = await fileFingerprint(plan, file);
  const tensors = loadSafetensors(gpu, safetensors, { name });
  const model = new GPT2(gpu, config);
  try {
    model.loadStateDict(new Map([...plan.keys].map(([key, fileKey]) => [key, tensors.get(fileKey)!])));
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { model, plan, fingerprint: id };
}
