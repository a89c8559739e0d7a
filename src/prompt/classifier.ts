// The method: P trainable prompt vectors run after each text's cached past through the
// frozen GPT-2, and a linear head on the final hidden state of the last prompt position.
// A head may be composite: several tasks' heads concatenated, each owning a column range.
import { Tensor, tensor, keep } from '../engine/tensor.js';
import { matmul } from '../ops/matmul.js';
import { gatherRows } from '../ops/gather.js';
import type { GPT2, ModelPast } from '../gpt2/model.js';
import { seededRandom } from '../util/random.js';

export type TaskKind = 'single' | 'multi';

/** One task's slice of the head: columns [start, start + labelNames.length). */
export interface Task {
  name: string;
  kind: TaskKind;
  labelNames: string[];
  start: number;
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

/**
 * Fresh parameters: prompt rows are the embeddings of random tokens; the head is
 * initialised like torch.nn.Linear (weight and bias uniform in ±1/√C).
 */
export function initialParams(wte: (tokenId: number) => Float32Array, vocabSize: number, nEmbd: number, promptTokens: number, classes: number, seed: number): ClassifierParams & { promptTokenIds: number[] } {
  const random = seededRandom(seed);
  const promptTokenIds = Array.from({ length: promptTokens }, () => Math.floor(random() * vocabSize));
  const prompt = new Float32Array(promptTokens * nEmbd);
  promptTokenIds.forEach((id, p) => prompt.set(wte(id), p * nEmbd));
  const bound = 1 / Math.sqrt(nEmbd);
  const uniform = () => (2 * random() - 1) * bound;
  const headWeight = Float32Array.from({ length: classes * nEmbd }, uniform);
  const headBias = Float32Array.from({ length: classes }, uniform);
  return { prompt, headWeight, headBias, promptTokenIds };
}

export class PromptClassifier {
  readonly prompt: Tensor; // [P, C]
  readonly headWeight: Tensor; // [K, C]
  readonly headBias: Tensor; // [K]
  readonly tasks: readonly Task[];

  constructor(model: GPT2, params: ClassifierParams, tasks: Task[]) {
    const C = model.config.nEmbd;
    const K = tasks.reduce((n, t) => Math.max(n, t.start + taskWidth(t)), 0);
    const P = params.prompt.length / C;
    if (!Number.isInteger(P) || P < 1) throw new RangeError(`prompt has ${params.prompt.length} values, not a whole number of ${C}-wide vectors`);
    if (params.headWeight.length !== K * C || params.headBias.length !== K) {
      throw new RangeError(`head has ${params.headWeight.length / C} rows and ${params.headBias.length} biases, but the tasks need ${K}`);
    }
    const gpu = model.gpu;
    this.prompt = keep(tensor(gpu, params.prompt, [P, C], { requiresGrad: true, label: 'prompt' }));
    this.headWeight = keep(tensor(gpu, params.headWeight, [K, C], { requiresGrad: true, label: 'head.weight' }));
    this.headBias = keep(tensor(gpu, params.headBias, [K], { requiresGrad: true, label: 'head.bias' }));
    this.tasks = tasks;
  }

  get promptTokens(): number {
    return this.prompt.shape[0]!;
  }

  get classes(): number {
    return this.headBias.size;
  }

  parameters(): Tensor[] {
    return [this.prompt, this.headWeight, this.headBias];
  }

  /** Logits [B, K] for a batch whose texts were encoded into `past`. */
  logits(model: GPT2, past: ModelPast): Tensor {
    const B = past.lengths.length;
    const P = this.promptTokens;
    const C = model.config.nEmbd;
    const hidden = model.forwardWithPast(past, this.prompt); // [B, P, C]
    const lastRows = Uint32Array.from({ length: B }, (_, b) => b * P + P - 1);
    const last = gatherRows(hidden.reshape([B * P, C]), lastRows); // [B, C]
    return matmul(last, this.headWeight, { transB: true, bias: this.headBias });
  }

  async params(): Promise<ClassifierParams> {
    const [prompt, headWeight, headBias] = await Promise.all(this.parameters().map((t) => t.readF32()));
    return { prompt: prompt!, headWeight: headWeight!, headBias: headBias! };
  }

  dispose(): void {
    for (const t of this.parameters()) t.dispose();
  }
}
