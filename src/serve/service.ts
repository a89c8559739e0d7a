// Mixed-task serving without a transport: many prompt files on one model, requests of any
// of their tasks batched together into one GPT-2 pass. Host-neutral (a page or a worker can
// put it behind its own transport); src/serve/http.ts puts it behind HTTP.
import type { GPT2 } from '../gpt2/model.ts';
import { PromptClassifier, type Task } from '../prompt/classifier.ts';
import { textLength, type PromptCheckpoint } from '../prompt/checkpoint.ts';
import { composeHeads } from '../prompt/compose.ts';
import type { Tokenizer } from '../prompt/fit.ts';
import { mixedLogits, taskPrediction, type MixedRow, type TaskPrediction } from '../prompt/mixed.ts';
import { Batcher, type BatcherHooks, type BatchLimits } from './batcher.ts';

/** A prompt file to serve, checked against the model by whoever read it. */
export interface ServedPrompt {
  source: string;
  checkpoint: PromptCheckpoint;
}

/** What a client learns about a task. */
export interface TaskInfo {
  name: string;
  kind: Task['kind'];
  labels: string[];
  /** The prompt file it came from. */
  source: string;
  /** Text tokens kept; longer texts are cut to their first maxLength tokens, as `predict` cuts them. */
  maxLength: number;
}

/** A request naming a task none of the prompt files has (HTTP 404). */
export class UnknownTaskError extends Error {
  override name = 'UnknownTaskError';
}

/** Each input's predictions, keyed by task name. */
export type RowPredictions = Record<string, TaskPrediction>;

interface QueuedRow extends MixedRow {
  tokenCount: number;
}

export class MixedTaskService {
  readonly tasks: readonly TaskInfo[];
  readonly batcher: Batcher<QueuedRow, Float32Array>;
  private readonly classifier: PromptClassifier;
  private readonly byName: Map<string, number>;

  /**
   * Composes the prompts into one classifier (task names must be unique and the prompt lengths
   * equal: composeHeads refuses otherwise, naming the files).
   */
  constructor(
    private readonly model: GPT2,
    private readonly tokenizer: Tokenizer,
    prompts: readonly ServedPrompt[],
    limits: BatchLimits,
    hooks: BatcherHooks = {},
  ) {
    const composite = composeHeads([...prompts]);
    this.classifier = new PromptClassifier(model, composite.params, composite.tasks);
    // As `predict` truncates with one file.
    this.tasks = prompts.flatMap(({ source, checkpoint }) => {
      const maxLength = textLength(model.config, checkpoint);
      return checkpoint.tasks.map((t) => ({ name: t.name, kind: t.kind, labels: [...t.labelNames], source, maxLength }));
    });
    this.byName = new Map(this.tasks.map((t, i) => [t.name, i]));
    this.batcher = new Batcher((rows) => mixedLogits(model, this.classifier, rows), limits, hooks);
  }

  /** Task indices of `names`, or UnknownTaskError naming the first unknown one. */
  taskIndices(names: readonly string[]): number[] {
    return names.map((name) => {
      const index = this.byName.get(name);
      if (index === undefined) {
        const shown = name.length > 80 ? `${name.slice(0, 80)}…` : name;
        throw new UnknownTaskError(`no task '${shown}' (tasks: ${this.tasks.map((t) => t.name).join(', ')})`);
      }
      return index;
    });
  }

  /**
   * Every named task's prediction for each input, from one encoding of it (cut to the shortest
   * maxLength of the tasks named). Rejects as the batcher does: full queue, shutdown, cancelled.
   */
  async predict(taskNames: readonly string[], inputs: readonly string[], signal?: AbortSignal): Promise<{ predictions: RowPredictions[]; queueMs: number; inferenceMs: number }> {
    const tasks = [...new Set(this.taskIndices(taskNames))];
    const maxLength = Math.min(...tasks.map((t) => this.tasks[t]!.maxLength));
    const rows = inputs.map((text): QueuedRow => {
      const tokens = Uint32Array.from(this.tokenizer.encode(text, maxLength));
      return { tokens, tasks, tokenCount: tokens.length };
    });
    const { outputs, queueMs, inferenceMs } = await this.batcher.submit(rows, signal);
    const composite = this.classifier.tasks;
    const predictions = outputs.map((logits) => Object.fromEntries(tasks.map((t) => [composite[t]!.name, taskPrediction(composite[t]!, logits)])));
    return { predictions, queueMs, inferenceMs };
  }

  /** A real one-row forward of every task (outside the queue); throws unless every logit is finite. */
  async warmUp(): Promise<void> {
    const tasks = this.tasks.map((_, i) => i);
    const [logits] = await mixedLogits(this.model, this.classifier, [{ tokens: Uint32Array.from(this.tokenizer.encode('warm up', 8)), tasks }]);
    if (!logits!.every(Number.isFinite)) throw new Error(`the warm-up forward gave non-finite logits: ${Array.from(logits!).join(', ')}`);
  }

  /** Frees the prompts (the model is the caller's). */
  dispose(): void {
    this.classifier.dispose();
  }
}
