// The trained-prompt file: msgpack, versioned, recording the model it was trained on so it
// is never applied to another one.
import { pack, unpack } from 'msgpackr';
import { promptGroups, type Task, type ClassifierParams } from './classifier.ts';
import type { GPT2Config } from '../gpt2/config.ts';

export const FORMAT = 'gpt2-prompt';
export const VERSION = 1;

export interface ModelIdentity {
  config: GPT2Config;
  fingerprint: string;
}

export interface OptimizerState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export interface PromptCheckpoint {
  model: ModelIdentity;
  tasks: Task[];
  promptTokens: number;
  params: ClassifierParams;
  /** Settings the run used (lr, batch size, max length, seed, loss weights …). */
  training: Record<string, unknown>;
  /** Where training stands, for --resume. */
  progress?: { epochsCompleted: number; optimizer: OptimizerState; history: { epoch: number; loss: number }[] };
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const floatsOf = (b: unknown, what: string): Float32Array => {
  if (!(b instanceof Uint8Array) || b.byteLength % 4 !== 0) throw new CheckpointError(`field ${what} is not a float32 array`);
  // Copy into a fresh buffer: msgpackr may hand back a view into a larger (Node Buffer) pool.
  return new Float32Array(new Uint8Array(b).buffer);
};

export function encodeCheckpoint(c: PromptCheckpoint): Uint8Array {
  return pack({
    format: FORMAT,
    version: VERSION,
    model: c.model,
    tasks: c.tasks,
    promptTokens: c.promptTokens,
    training: c.training,
    prompt: bytesOf(c.params.prompt),
    headWeight: bytesOf(c.params.headWeight),
    headBias: bytesOf(c.params.headBias),
    progress: c.progress && {
      epochsCompleted: c.progress.epochsCompleted,
      history: c.progress.history,
      step: c.progress.optimizer.step,
      m: c.progress.optimizer.m.map(bytesOf),
      v: c.progress.optimizer.v.map(bytesOf),
    },
  });
}

/** Decodes and validates a checkpoint; `source` names the file in errors. */
export function decodeCheckpoint(bytes: Uint8Array, source: string): PromptCheckpoint {
  let raw: Record<string, any>;
  try {
    raw = unpack(bytes) as Record<string, any>;
  } catch (error) {
    throw new CheckpointError(`${source}: not a readable prompt checkpoint (corrupt or truncated: ${(error as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || raw.format !== FORMAT) throw new CheckpointError(`${source}: not a gpt2-prompt checkpoint`);
  if (raw.version !== VERSION) throw new CheckpointError(`${source}: checkpoint format version ${raw.version}, this build reads version ${VERSION}`);
  try {
    const checkpoint: PromptCheckpoint = {
      model: raw.model,
      tasks: raw.tasks,
      promptTokens: raw.promptTokens,
      training: raw.training ?? {},
      params: { prompt: floatsOf(raw.prompt, 'prompt'), headWeight: floatsOf(raw.headWeight, 'headWeight'), headBias: floatsOf(raw.headBias, 'headBias') },
    };
    if (raw.progress) {
      checkpoint.progress = {
        epochsCompleted: raw.progress.epochsCompleted,
        history: raw.progress.history,
        optimizer: {
          step: raw.progress.step,
          m: raw.progress.m.map((b: unknown, i: number) => floatsOf(b, `progress.m[${i}]`)),
          v: raw.progress.v.map((b: unknown, i: number) => floatsOf(b, `progress.v[${i}]`)),
        },
      };
    }
    const C = checkpoint.model?.config?.nEmbd;
    const K = checkpoint.tasks.reduce((n, t) => Math.max(n, t.start + t.labelNames.length), 0);
    const G = promptGroups(checkpoint.tasks);
    if (!C || checkpoint.params.prompt.length !== G * checkpoint.promptTokens * C || checkpoint.params.headWeight.length !== K * C || checkpoint.params.headBias.length !== K) {
      throw new CheckpointError('parameter sizes disagree with the recorded model and tasks');
    }
    return checkpoint;
  } catch (error) {
    if (error instanceof CheckpointError) throw new CheckpointError(`${source}: ${error.message.replace(`${source}: `, '')}`);
    throw new CheckpointError(`${source}: malformed checkpoint (${(error as Error).message})`);
  }
}

/** Refuses a checkpoint trained on another model. */
export function checkSameModel(checkpoint: PromptCheckpoint, model: ModelIdentity, source: string): void {
  const a = checkpoint.model;
  if (a.fingerprint !== model.fingerprint) {
    const c = a.config;
    throw new CheckpointError(
      `${source} was trained on a different model (n_layer ${c.nLayer}, n_embd ${c.nEmbd}, vocab ${c.vocabSize}, fingerprint ${a.fingerprint}) ` +
        `than the one loaded (n_layer ${model.config.nLayer}, n_embd ${model.config.nEmbd}, vocab ${model.config.vocabSize}, fingerprint ${model.fingerprint})`,
    );
  }
}

/**
 * The text tokens a prompt file reads: n_positions − its prompt tokens, or fewer where it was
 * trained on shorter texts. Predicting, evaluating and serving cut longer texts to this.
 */
export function textLength(config: GPT2Config, checkpoint: PromptCheckpoint): number {
  return Math.min(config.nPositions - checkpoint.promptTokens, Number(checkpoint.training.maxLength) || Infinity);
}
