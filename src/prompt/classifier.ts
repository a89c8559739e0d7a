// The method: P trainable prompt vectors run after each text's cached past through the
// frozen GPT-2, and a linear head on the final hidden state of the last prompt position.
// A head may be composite: several tasks' heads concatenated, each owning a column range.
import { Tensor, tensor, keep } from '../tensor/tensor.ts';
import { matmul } from '../ops/matmul.ts';
import { gatherRows } from '../ops/gather.ts';
import type { GPT2, ModelPast } from '../gpt2/model.ts';

export type TaskKind = 'single' | 'multi';

/** One task's slice of the head: columns [start, start + labelNames.length). */
export interface Task {
  name: string;
  kind: TaskKind;
  labelNames: string[];
  start: number;
  /**
   * Which prompt the task reads (composite heads of separately trained prompts keep each
   * task's own prompt; default 0). Prompt g is rows g·P … g·P+P−1 of the prompt.
   */
  group?: number;
}

/** Number of prompts (groups) the tasks use. */
export function promptGroups(tasks: readonly Task[]): number {
  return tasks.reduce((n, t) => Math.max(n, (t.group ?? 0) + 1), 1);
}

/** Host copies of a classifier's parameters. */
export interface ClassifierParams {
  prompt: Float32Array; // [P, C]
  headWeight: Float32Array; // [K, C]
  headBias: Float32Array; // [K]
}

export function taskWidth(task: Task): number {
  return task.labelNames.length;
}

/** P random token ids whose embeddings initialise the prompt. */
export function randomPromptTokens(promptTokens: number, vocabSize: number, random: () => number): Uint32Array {
  return Uint32Array.from({ length: promptTokens }, () => Math.floor(random() * vocabSize));
}

/**
 * Fresh parameters: the prompt starts as the given embeddings of random tokens; the head is
 * initialised like torch.nn.Linear (weight and bias uniform in ±1/√C).
 */
export function initialParams(promptEmbeddings: Float32Array, nEmbd: number, classes: number, random: () => number): ClassifierParams {
  const bound = 1 / Math.sqrt(nEmbd);
  const uniform = () => (2 * random() - 1) * bound;
  const headWeight = Float32Array.from({ length: classes * nEmbd }, uniform);
  const headBias = Float32Array.from({ length: classes }, uniform);
  return { prompt: Float32Array.from(promptEmbeddings), headWeight, headBias };
}

export class PromptClassifier {
  readonly prompt: Tensor; // [G·P, C]
  readonly headWeight: Tensor; // [K, C]
  readonly headBias: Tensor; // [K]
  readonly tasks: readonly Task[];

  constructor(model: GPT2, params: ClassifierParams, tasks: Task[]) {
    const C = model.config.nEmbd;
    const K = tasks.reduce((n, t) => Math.max(n, t.start + taskWidth(t)), 0);
    const G = promptGroups(tasks);
    const P = params.prompt.length / C / G;
    if (!Number.isInteger(P) || P < 1) throw new RangeError(`prompt has ${params.prompt.length} values, not ${G} prompt(s) of ${C}-wide vectors`);
    if (params.headWeight.length !== K * C || params.headBias.length !== K) {
      throw new RangeError(`head has ${params.headWeight.length / C} rows and ${params.headBias.length} biases, but the tasks need ${K}`);
    }
    const gpu = model.gpu;
    this.prompt = keep(tensor(gpu, params.prompt, [G * P, C], { requiresGrad: true, label: 'prompt' }));
    this.headWeight = keep(tensor(gpu, params.headWeight, [K, C], { requiresGrad: true, label: 'head.weight' }));
    this.headBias = keep(tensor(gpu, params.headBias, [K], { requiresGrad: true, label: 'head.bias' }));
    this.tasks = tasks;
  }

  get groups(): number {
    return promptGroups(this.tasks);
  }

  get promptTokens(): number {
    return this.prompt.shape[0]! / this.groups;
  }

  get classes(): number {
    return this.headBias.size;
  }

  parameters(): Tensor[] {
    return [this.prompt, this.headWeight, this.headBias];
  }

  /** What the head reads [B, C]: the final hidden state of prompt `group`'s last position, for a batch encoded into `past`. */
  features(model: GPT2, past: ModelPast, group = 0): Tensor {
    const B = past.lengths.length;
    const P = this.promptTokens;
    const C = model.config.nEmbd;
    const prompt = this.groups === 1 ? this.prompt : gatherRows(this.prompt, Uint32Array.from({ length: P }, (_, p) => group * P + p));
    return lastPositions(model.forwardWithPast(past, prompt), B, P, C);
  }

  /**
   * Features [B, C] of a batch whose rows run different prompts: row b runs prompt groups[b]
   * (a per-row gather of the prompts, as Punica gathers per-row adapters), so rows of different
   * tasks share one pass. Each row's features are the ones features() gives it alone.
   */
  rowFeatures(model: GPT2, past: ModelPast, groups: Uint32Array): Tensor {
    const B = past.lengths.length;
    const P = this.promptTokens;
    const C = model.config.nEmbd;
    if (groups.length !== B) throw new RangeError(`rowFeatures: ${groups.length} prompt groups for a batch of ${B} rows`);
    const bad = groups.findIndex((g) => g >= this.groups);
    if (bad >= 0) throw new RangeError(`rowFeatures: row ${bad} asks for prompt group ${groups[bad]}, the classifier has ${this.groups}`);
    const rows = Uint32Array.from({ length: B * P }, (_, i) => groups[Math.floor(i / P)]! * P + (i % P));
    const prompts = gatherRows(this.prompt, rows).reshape([B, P, C]);
    return lastPositions(model.forwardWithPast(past, prompts), B, P, C);
  }

  /** Logits [B, K] of a batch whose row b runs prompt groups[b] (only the columns of that group's tasks are meaningful for the row). */
  rowLogits(model: GPT2, past: ModelPast, groups: Uint32Array): Tensor {
    return matmul(this.rowFeatures(model, past, groups), this.headWeight, { transB: true, bias: this.headBias });
  }

  /**
   * Logits [B, K] for a batch whose texts were encoded into `past`, through prompt `group`
   * (only the columns of that group's tasks are meaningful).
   */
  logits(model: GPT2, past: ModelPast, group = 0): Tensor {
    return matmul(this.features(model, past, group), this.headWeight, { transB: true, bias: this.headBias });
  }

  async params(): Promise<ClassifierParams> {
    const [prompt, headWeight, headBias] = await Promise.all(this.parameters().map((t) => t.readF32()));
    return { prompt: prompt!, headWeight: headWeight!, headBias: headBias! };
  }

  dispose(): void {
    for (const t of this.parameters()) t.dispose();
  }
}

/** The final hidden state of each row's last prompt position: [B, C] of hidden [B, P, C]. */
function lastPositions(hidden: Tensor, B: number, P: number, C: number): Tensor {
  const lastRows = Uint32Array.from({ length: B }, (_, b) => b * P + P - 1);
  return gatherRows(hidden.reshape([B * P, C]), lastRows);
}
