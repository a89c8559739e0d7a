// GPT-2 weights from a Hugging Face checkpoint (config.json + model.safetensors), as host
// Float32Arrays. Conv1D weights keep the file's [in, out] layout.
import { parseConfig, hfConfigText, type GPT2Config } from './config.ts';
import { numel, decodeTensor, SafetensorsFile, encodeSafetensors, type TensorEntry, type TensorToWrite } from '../nn/safetensors.ts';

export interface LayerNormWeights {
  weight: Float32Array; // [C]
  bias: Float32Array; // [C]
}

export interface AttentionWeights {
  cAttnW: Float32Array; // [C, 3C]
  cAttnB: Float32Array; // [3C]
  cProjW: Float32Array; // [C, C]
  cProjB: Float32Array; // [C]
}

export interface MlpWeights {
  cFcW: Float32Array; // [C, 4C]
  cFcB: Float32Array; // [4C]
  cProjW: Float32Array; // [4C, C]
  cProjB: Float32Array; // [C]
}

export interface GPT2BlockWeights {
  ln1: LayerNormWeights;
  attn: AttentionWeights;
  ln2: LayerNormWeights;
  mlp: MlpWeights;
}

export interface GPT2HostWeights {
  wte: Float32Array; // [V, C]
  wpe: Float32Array; // [nPositions, C]
  lnF: LayerNormWeights;
  blocks: GPT2BlockWeights[];
}

export interface GPT2Checkpoint {
  /** The name used in messages (usually the file path). */
  name: string;
  config: GPT2Config;
  tensors: GPT2HostWeights;
  /** Distinct dtypes of the tensors read, e.g. ['F32']. */
  dtypes: string[];
  /** Tensors in the file that GPT-2 does not use (other than the attention-mask buffers and the tied lm_head). */
  ignored: string[];
}

/** Which file key holds each GPT-2 tensor, checked against the config without reading any data. */
export interface CheckpointPlan {
  config: GPT2Config;
  /** GPT-2 tensor name (no `transformer.` prefix) → key in the file. */
  keys: Map<string, string>;
  dtypes: string[];
  ignored: string[];
  parameterCount: number;
}

/** Every tensor GPT-2 needs, with its expected shape, in file order. */
export function expectedTensors(config: GPT2Config): Array<[string, number[]]> {
  const C = config.nEmbd;
  const out: Array<[string, number[]]> = [
    ['wte.weight', [config.vocabSize, C]],
    ['wpe.weight', [config.nPositions, C]],
  ];
  for (let i = 0; i < config.nLayer; i++) {
    const h = `h.${i}.`;
    out.push(
      [`${h}ln_1.weight`, [C]], [`${h}ln_1.bias`, [C]],
      [`${h}attn.c_attn.weight`, [C, 3 * C]], [`${h}attn.c_attn.bias`, [3 * C]],
      [`${h}attn.c_proj.weight`, [C, C]], [`${h}attn.c_proj.bias`, [C]],
      [`${h}ln_2.weight`, [C]], [`${h}ln_2.bias`, [C]],
      [`${h}mlp.c_fc.weight`, [C, 4 * C]], [`${h}mlp.c_fc.bias`, [4 * C]],
      [`${h}mlp.c_proj.weight`, [4 * C, C]], [`${h}mlp.c_proj.bias`, [C]],
    );
  }
  out.push(['ln_f.weight', [C]], ['ln_f.bias', [C]]);
  return out;
}

const PREFIX = 'transformer.';
/** Causal-mask buffers that transformers before 4.31 saved in the state dict: constants, not weights. */
export const MASK_BUFFER = /^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$/;
// The mask buffers, and GPT2LMHeadModel's head, tied to wte.
const SKIPPED = new RegExp(`${MASK_BUFFER.source}|^lm_head\\.weight$`);
const LAYER = /^(?:transformer\.)?h\.(\d+)\./;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

export function planCheckpoint(config: GPT2Config, entries: ReadonlyMap<string, TensorEntry>, name: string): CheckpointPlan {
  const lookup = (t: string): [string, TensorEntry] | undefined => {
    const plain = entries.get(t);
    if (plain) return [t, plain];
    const prefixed = entries.get(PREFIX + t);
    return prefixed ? [PREFIX + t, prefixed] : undefined;
  };

  // Embedding shapes are reported against the config fields they contradict.
  const wte = lookup('wte.weight')?.[1];
  if (wte && wte.shape.length === 2) {
    if (wte.shape[0] !== config.vocabSize) throw new Error(`${name}: wte.weight has ${wte.shape[0]} rows but config vocab_size is ${config.vocabSize}`);
    if (wte.shape[1] !== config.nEmbd) throw new Error(`${name}: wte.weight has width ${wte.shape[1]} but config n_embd is ${config.nEmbd}`);
  }
  const wpe = lookup('wpe.weight')?.[1];
  if (wpe && wpe.shape.length === 2 && wpe.shape[0] !== config.nPositions) {
    throw new Error(`${name}: wpe.weight has ${wpe.shape[0]} rows but config n_positions is ${config.nPositions}`);
  }
  let layers = 0;
  for (const key of entries.keys()) {
    const m = LAYER.exec(key);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (layers !== config.nLayer) {
    throw new Error(`${name}: config n_layer is ${config.nLayer} but the checkpoint has tensors for ${layers} layers`);
  }

  const keys = new Map<string, string>();
  const dtypes = new Set<string>();
  let parameterCount = 0;
  for (const [t, shape] of expectedTensors(config)) {
    const found = lookup(t);
    if (!found) throw new Error(`${name}: missing tensor ${t} (nor ${PREFIX}${t})`);
    const [key, entry] = found;
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${name}: tensor ${key} has shape ${fmt(entry.shape)}, expected ${fmt(shape)}`);
    }
    keys.set(t, key);
    dtypes.add(entry.dtype);
    parameterCount += numel(shape);
  }
  const used = new Set(keys.values());
  const ignored = [...entries.keys()].filter((k) => !used.has(k) && !SKIPPED.test(k));
  return { config, keys, dtypes: [...dtypes].sort(), ignored, parameterCount };
}

/**
 * Reads a checkpoint. Tensors are converted one at a time, so the peak is the file plus the
 * float32 weights; keys may carry GPT2LMHeadModel's `transformer.` prefix.
 */
export function loadCheckpoint(configJson: string | object, safetensors: Uint8Array | SafetensorsFile, name: string): GPT2Checkpoint {
  const config = parseConfig(configJson, `${name}: config`);
  const file = safetensors instanceof SafetensorsFile ? safetensors : new SafetensorsFile(safetensors, name);
  const plan = planCheckpoint(config, file.entries, name);
  const tensors = assembleWeights(config, (t) => file.read(plan.keys.get(t)!));
  return { name, config, tensors, dtypes: plan.dtypes, ignored: plan.ignored };
}

/** GPT-2's weights from a lookup by tensor name (those of expectedTensors, no `transformer.` prefix). */
export function assembleWeights(config: GPT2Config, get: (name: string) => Float32Array): GPT2HostWeights {
  const ln = (p: string): LayerNormWeights => ({ weight: get(`${p}.weight`), bias: get(`${p}.bias`) });
  const blocks: GPT2BlockWeights[] = [];
  for (let i = 0; i < config.nLayer; i++) {
    const h = `h.${i}.`;
    blocks.push({
      ln1: ln(`${h}ln_1`),
      attn: {
        cAttnW: get(`${h}attn.c_attn.weight`), cAttnB: get(`${h}attn.c_attn.bias`),
        cProjW: get(`${h}attn.c_proj.weight`), cProjB: get(`${h}attn.c_proj.bias`),
      },
      ln2: ln(`${h}ln_2`),
      mlp: {
        cFcW: get(`${h}mlp.c_fc.weight`), cFcB: get(`${h}mlp.c_fc.bias`),
        cProjW: get(`${h}mlp.c_proj.weight`), cProjB: get(`${h}mlp.c_proj.bias`),
      },
    });
  }
  return { wte: get('wte.weight'), wpe: get('wpe.weight'), lnF: ln('ln_f'), blocks };
}

/** Every weight array in a fixed order (that of expectedTensors). */
export function weightArrays(w: GPT2HostWeights): Float32Array[] {
  const out = [w.wte, w.wpe];
  for (const b of w.blocks) {
    out.push(b.ln1.weight, b.ln1.bias, b.attn.cAttnW, b.attn.cAttnB, b.attn.cProjW, b.attn.cProjB);
    out.push(b.ln2.weight, b.ln2.bias, b.mlp.cFcW, b.mlp.cFcB, b.mlp.cProjW, b.mlp.cProjB);
  }
  out.push(w.lnF.weight, w.lnF.bias);
  return out;
}

const SAMPLES_PER_TENSOR = 64;

/** One tensor as the fingerprint sees it: its length and its value at an index. */
interface Sampled {
  length: number;
  at(i: number): number;
}

/**
 * A short stable id of a model: SHA-256 over the config and an evenly spaced sample of every
 * tensor's values, as 16 hex digits. Two checkpoints that differ in any sampled value, in any
 * tensor's size, or in the config get different ids.
 */
export async function fingerprint(checkpoint: { config: GPT2Config; tensors: GPT2HostWeights }): Promise<string> {
  return sampleDigest(checkpoint.config, weightArrays(checkpoint.tensors).map((a) => ({ length: a.length, at: (i) => a[i]! })));
}

/**
 * The fingerprint of a planned checkpoint, read from its file without decoding it: only the
 * sampled elements are converted (the same float32 values the whole tensor would give), so
 * it equals fingerprint() of the checkpoint loadCheckpoint returns.
 */
export async function fileFingerprint(plan: CheckpointPlan, file: SafetensorsFile): Promise<string> {
  const tensors = expectedTensors(plan.config).map(([name]): Sampled => {
    const key = plan.keys.get(name)!;
    const entry = file.entry(key);
    const length = numel(entry.shape);
    const size = length === 0 ? 0 : (entry.end - entry.begin) / length;
    const where = `${file.name}: tensor ${key}`;
    return { length, at: (i) => decodeTensor(file.bytes.subarray(entry.begin + i * size, entry.begin + (i + 1) * size), entry.dtype, where)[0]! };
  });
  return sampleDigest(plan.config, tensors);
}

async function sampleDigest(config: GPT2Config, tensors: Sampled[]): Promise<string> {
  const configText = JSON.stringify([config.vocabSize, config.nPositions, config.nEmbd, config.nLayer, config.nHead, config.layerNormEps, config.activation]);
  const configBytes = new TextEncoder().encode(configText);
  // Float64 holds both the lengths (past 2^24) and the float32 values exactly.
  const sample = new Float64Array(tensors.length * (SAMPLES_PER_TENSOR + 1));
  let p = 0;
  for (const a of tensors) {
    sample[p++] = a.length;
    for (let i = 0; i < SAMPLES_PER_TENSOR; i++) {
      sample[p++] = a.length === 0 ? 0 : a.at(Math.floor((i * (a.length - 1)) / (SAMPLES_PER_TENSOR - 1)));
    }
  }
  const data = new Uint8Array(configBytes.length + sample.byteLength);
  data.set(configBytes);
  data.set(new Uint8Array(sample.buffer), configBytes.length);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', data));
  return [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A checkpoint's two files in the Hugging Face layout that loadCheckpoint (and transformers)
 * read: config.json text and model.safetensors bytes, tensors in expectedTensors order, in
 * F32 or (half the size) F16.
 */
export function encodeModel(config: GPT2Config, weights: GPT2HostWeights, dtype: 'F32' | 'F16' = 'F32', metadata: Record<string, string> = {}): { configJson: string; safetensors: Uint8Array } {
  const arrays = weightArrays(weights);
  const tensors: Record<string, TensorToWrite> = {};
  expectedTensors(config).forEach(([name, shape], i) => {
    if (arrays[i]!.length !== numel(shape)) throw new RangeError(`encodeModel: ${name} has ${arrays[i]!.length} values, expected [${shape.join(', ')}]`);
    tensors[name] = { dtype, shape, data: arrays[i]! };
  });
  return {
    configJson: hfConfigText(config),
    safetensors: encodeSafetensors(tensors, { format: 'pt', ...metadata }),
  };
}
