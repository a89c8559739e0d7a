// GPT-2 on the engine's ops, as in the paper: token + position embeddings, blocks of
// x + attn(ln_1(x)) and x + mlp(ln_2(x)), then ln_f. Two entry points serve the method:
// encodePast() runs a right-padded batch of texts once and keeps every layer's keys and
// values; forwardWithPast() runs new vectors (a soft prompt) per example at the positions
// right after that example's own last real token, attending to its past.
import type { Gpu } from '../gpu/context.ts';
import { Tensor, tensor, keep, noGrad, tidy, isGradEnabled, BYTES_PER_ELEMENT } from '../tensor/tensor.ts';
import { add } from '../ops/elementwise.ts';
import { matmul } from '../ops/matmul.ts';
import { layerNorm } from '../ops/layernorm.ts';
import { gelu, GELU_TANH } from '../ops/gelu.ts';
import { attention, splitPast, type Past } from '../ops/attention.ts';
import { gatherRows, shardRows } from '../ops/gather.ts';
import type { GPT2Config } from './config.ts';
import type { GPT2HostWeights } from './checkpoint.ts';

interface LayerNormWeights {
  weight: Tensor;
  bias: Tensor;
}

interface BlockWeights {
  ln1: LayerNormWeights;
  cAttnW: Tensor; // [C, 3C]
  cAttnB: Tensor; // [3C]
  attnProjW: Tensor; // [C, C]
  attnProjB: Tensor; // [C]
  ln2: LayerNormWeights;
  cFcW: Tensor; // [C, 4C]
  cFcB: Tensor; // [4C]
  mlpProjW: Tensor; // [4C, C]
  mlpProjB: Tensor; // [C]
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

export class GPT2 {
  readonly gpu: Gpu;
  readonly config: GPT2Config;
  /** Token embeddings [V, C], in row shards that each fit one storage binding. */
  readonly wte: readonly Tensor[];
  readonly wpe: Tensor; // [nPositions, C]
  readonly blocks: readonly BlockWeights[];
  readonly lnF: LayerNormWeights;

  constructor(gpu: Gpu, config: GPT2Config, host: GPT2HostWeights) {
    this.gpu = gpu;
    this.config = config;
    const C = config.nEmbd;
    const up = (data: Float32Array, shape: number[], label: string) => keep(tensor(gpu, data, shape, { label }));
    const ln = (w: { weight: Float32Array; bias: Float32Array }, label: string) => ({
      weight: up(w.weight, [C], `${label}.weight`),
      bias: up(w.bias, [C], `${label}.bias`),
    });
    this.wte = shardRows(gpu, host.wte, config.vocabSize, C, 'wte').map((t) => keep(t));
    this.wpe = up(host.wpe, [config.nPositions, C], 'wpe');
    this.blocks = host.blocks.map((b, i) => ({
      ln1: ln(b.ln1, `h.${i}.ln_1`),
      cAttnW: up(b.attn.cAttnW, [C, 3 * C], `h.${i}.attn.c_attn.weight`),
      cAttnB: up(b.attn.cAttnB, [3 * C], `h.${i}.attn.c_attn.bias`),
      attnProjW: up(b.attn.cProjW, [C, C], `h.${i}.attn.c_proj.weight`),
      attnProjB: up(b.attn.cProjB, [C], `h.${i}.attn.c_proj.bias`),
      ln2: ln(b.ln2, `h.${i}.ln_2`),
      cFcW: up(b.mlp.cFcW, [C, 4 * C], `h.${i}.mlp.c_fc.weight`),
      cFcB: up(b.mlp.cFcB, [4 * C], `h.${i}.mlp.c_fc.bias`),
      mlpProjW: up(b.mlp.cProjW, [4 * C, C], `h.${i}.mlp.c_proj.weight`),
      mlpProjB: up(b.mlp.cProjB, [C], `h.${i}.mlp.c_proj.bias`),
    }));
    this.lnF = ln(host.lnF, 'ln_f');
  }

  /**
   * Every weight with its checkpoint name, in the order of expectedTensors; the token embedding
   * as its row shards (`wte.weight` when there is one, else `wte.weight[shard s]`).
   */
  parameters(): Array<{ name: string; tensor: Tensor }> {
    const out = this.wte.map((t, s) => ({ name: this.wte.length === 1 ? 'wte.weight' : `wte.weight[shard ${s}]`, tensor: t }));
    out.push({ name: 'wpe.weight', tensor: this.wpe });
    this.blocks.forEach((b, i) => {
      const h = `h.${i}.`;
      out.push(
        { name: `${h}ln_1.weight`, tensor: b.ln1.weight }, { name: `${h}ln_1.bias`, tensor: b.ln1.bias },
        { name: `${h}attn.c_attn.weight`, tensor: b.cAttnW }, { name: `${h}attn.c_attn.bias`, tensor: b.cAttnB },
        { name: `${h}attn.c_proj.weight`, tensor: b.attnProjW }, { name: `${h}attn.c_proj.bias`, tensor: b.attnProjB },
        { name: `${h}ln_2.weight`, tensor: b.ln2.weight }, { name: `${h}ln_2.bias`, tensor: b.ln2.bias },
        { name: `${h}mlp.c_fc.weight`, tensor: b.cFcW }, { name: `${h}mlp.c_fc.bias`, tensor: b.cFcB },
        { name: `${h}mlp.c_proj.weight`, tensor: b.mlpProjW }, { name: `${h}mlp.c_proj.bias`, tensor: b.mlpProjB },
      );
    });
    out.push({ name: 'ln_f.weight', tensor: this.lnF.weight }, { name: 'ln_f.bias', tensor: this.lnF.bias });
    return out;
  }

  /** The current weights on the host, wte's shards joined (e.g. to save a checkpoint after training). */
  async hostWeights(): Promise<GPT2HostWeights> {
    const read = (t: Tensor) => t.readF32();
    const wte = new Float32Array(this.config.vocabSize * this.config.nEmbd);
    let offset = 0;
    for (const shard of this.wte) {
      wte.set(await read(shard), offset);
      offset += shard.size;
    }
    const ln = async (w: LayerNormWeights) => ({ weight: await read(w.weight), bias: await read(w.bias) });
    const blocks = [];
    for (const b of this.blocks) {
      blocks.push({
        ln1: await ln(b.ln1),
        attn: { cAttnW: await read(b.cAttnW), cAttnB: await read(b.cAttnB), cProjW: await read(b.attnProjW), cProjB: await read(b.attnProjB) },
        ln2: await ln(b.ln2),
        mlp: { cFcW: await read(b.cFcW), cFcB: await read(b.cFcB), cProjW: await read(b.mlpProjW), cProjB: await read(b.mlpProjB) },
      });
    }
    return { wte, wpe: await read(this.wpe), lnF: await ln(this.lnF), blocks };
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
    const positions = new Uint32Array(B * T);
    for (let i = 0; i < positions.length; i++) positions[i] = i % T;
    let x = add(gatherRows(this.wte, ids), gatherRows(this.wpe, positions)).reshape([B, T, this.config.nEmbd]);
    for (const block of this.blocks) x = this.block(block, x, {}).out;
    return this.finalNorm(x);
  }

  /** Bytes of GPU memory a past of this many examples × positions takes (keys and values, every layer). */
  pastBytes(examples: number, positions: number, opts: PastOptions = {}): number {
    return this.config.nLayer * 2 * examples * positions * this.config.nEmbd * BYTES_PER_ELEMENT[opts.pastF16 ? 'f16' : 'f32'];
  }

  /** Runs a right-padded batch of texts; returns each layer's keys/values and the final hidden states [B, T, C]. */
  encodePast(batch: TokenBatch, opts: PastOptions = {}): { past: ModelPast; hidden: Tensor } {
    const { past, x } = this.encodeLayers(batch, opts, true);
    const hidden = this.finalNorm(x!);
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
    const positions = new Uint32Array(B * T);
    for (let i = 0; i < positions.length; i++) positions[i] = i % T;
    // [B, T, C]
    let x = add(gatherRows(this.wte, ids), gatherRows(this.wpe, positions)).reshape([B, T, this.config.nEmbd]);
    const layers: Past[] = [];
    const split = (qkv: Tensor) => splitPast(qkv, this.config.nHead, lengths, { f16: opts.pastF16 ?? false });
    // Without autodiff nothing needs a layer's activations once the next layer has its input,
    // so each layer frees them: peak memory is the past plus one layer, not all twelve.
    const frozen = !isGradEnabled();
    const last = this.blocks.length - 1;
    for (const [i, block] of this.blocks.entries()) {
      if (i === last && !lastOutput) {
        layers.push(frozen ? tidy(() => split(this.queryKeyValue(block, x))) : split(this.queryKeyValue(block, x)));
        if (frozen) x.dispose();
        return { past: { layers, lengths }, x: null };
      }
      const layer = () => {
        const { out, qkv } = this.block(block, x, { newLengths: lengths });
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
    // [B, P, C]
    let x = add(vectors, gatherRows(this.wpe, positions).reshape([B, P, C]));
    this.blocks.forEach((block, i) => {
      x = this.block(block, x, { past: past.layers[i]! }).out;
    });
    return this.finalNorm(x);
  }

  /** Logits over the vocabulary for hidden states [N, C] through the tied embedding (read back per shard). */
  async lmLogits(hidden: Tensor): Promise<Float32Array> {
    const N = hidden.shape[0]!;
    const V = this.config.vocabSize;
    const logits = new Float32Array(N * V);
    let offset = 0;
    for (const shard of this.wte) {
      const rows = shard.shape[0]!;
      const part = noGrad(() => matmul(hidden, shard, { transB: true }));
      const values = await part.readF32();
      part.dispose();
      for (let n = 0; n < N; n++) logits.set(values.subarray(n * rows, (n + 1) * rows), n * V + offset);
      offset += rows;
    }
    return logits;
  }

  /** One transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). x: [B, T, C]. */
  private block(w: BlockWeights, x: Tensor, opts: { past?: Past; newLengths?: Uint32Array }): { out: Tensor; qkv: Tensor } {
    const eps = this.config.layerNormEps;
    const qkv = this.queryKeyValue(w, x); // [B, T, 3C]
    const attended = attention(qkv, this.config.nHead, opts); // [B, T, C]
    const h = add(x, matmul(attended, w.attnProjW, { bias: w.attnProjB }));
    const hidden = gelu(matmul(layerNorm(h, w.ln2.weight, w.ln2.bias, eps), w.cFcW, { bias: w.cFcB }), GELU_TANH); // [B, T, 4C]
    return { out: add(h, matmul(hidden, w.mlpProjW, { bias: w.mlpProjB })), qkv };
  }

  /** c_attn(ln_1(x)): queries, keys and values [B, T, 3C] of x [B, T, C]. */
  private queryKeyValue(w: BlockWeights, x: Tensor): Tensor {
    return matmul(layerNorm(x, w.ln1.weight, w.ln1.bias, this.config.layerNormEps), w.cAttnW, { bias: w.cAttnB });
  }

  private finalNorm(x: Tensor): Tensor {
    return layerNorm(x, this.lnF.weight, this.lnF.bias, this.config.layerNormEps);
  }

  private checkPositions(lengths: Uint32Array, extra: number, width: number): void {
    const max = Math.max(width, ...Array.from(lengths, (n) => n + extra));
    if (max > this.config.nPositions) {
      throw new RangeError(`a sequence of ${max} positions exceeds the model's n_positions of ${this.config.nPositions}; lower the max length`);
    }
  }

  /** Frees the weights. */
  dispose(): void {
    for (const t of [...this.wte, this.wpe, this.lnF.weight, this.lnF.bias]) t.dispose();
    for (const b of this.blocks) for (const t of Object.values(b)) (t instanceof Tensor ? [t] : [t.weight, t.bias]).forEach((x) => x.dispose());
  }
}
