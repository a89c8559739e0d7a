// The method end to end, for any host: a fresh prompt from random token embeddings, training
// with a checkpoint and validation after every epoch, and resuming from a checkpoint. Nothing
// here touches files or a terminal: the caller gets the checkpoint and the reports and decides
// where they go (the CLI writes files atomically, a web page draws them).
import { tidy, noGrad } from '../tensor/tensor.ts';
import { Adam } from '../optim/adam.ts';
import type { GPT2 } from '../gpt2/model.ts';
import type { GPT2Tokenizer } from '../gpt2/tokenizer.ts';
import type { Dataset } from '../data/dataset.ts';
import { seededRandom } from '../util/random.ts';
import { PromptClassifier, initialParams, randomPromptTokens, type Task, type ClassifierParams } from './classifier.ts';
import type { ModelIdentity, PromptCheckpoint } from './checkpoint.ts';
import { train, predictLogits, type Example, type TaskLoss } from './train.ts';
import { evaluateTask, taskLogits, type TaskEvaluation } from './evaluate.ts';
import { DEFAULT_TRAINING } from './defaults.ts';

/** What turns texts into token ids (GPT2Tokenizer, or any tokenizer of the model's vocabulary). */
export type Tokenizer = Pick<GPT2Tokenizer, 'encode'>;

/** Examples of one task from a dataset, texts truncated to maxLength tokens. */
export function toExamples(dataset: Dataset, tokenizer: Tokenizer, task: number, maxLength: number): Example[] {
  return dataset.texts.map((text, i) => ({
    tokens: Uint32Array.from(tokenizer.encode(text, maxLength)),
    task,
    label: dataset.kind === 'single' ? dataset.labels[i]! : 0,
    targets: dataset.kind === 'multi' ? dataset.targets.subarray(i * dataset.labelNames.length, (i + 1) * dataset.labelNames.length) : null,
  }));
}

/** Fresh parameters: the prompt starts as the embeddings of P random tokens, the head as torch.nn.Linear. */
export async function freshParams(model: GPT2, promptTokens: number, classes: number, seed: number): Promise<ClassifierParams> {
  const random = seededRandom(seed);
  const ids = randomPromptTokens(promptTokens, model.config.vocabSize, random);
  const rows = noGrad(() => tidy(() => model.wte.forward(ids)));
  const embeddings = await rows.readF32();
  rows.dispose();
  return initialParams(embeddings, model.config.nEmbd, classes, random);
}

/** One task of a run: its data and loss settings. */
export interface FitTask {
  name: string;
  train: Dataset;
  /** Reported after every epoch; its labels must use the training label order. */
  val?: Dataset | null;
  loss?: TaskLoss;
  /** What the checkpoint records as the task's data (default: the dataset's source). */
  data?: string;
}

/** The tasks' slices of one head, in the given order. */
export function layoutTasks(tasks: readonly FitTask[]): Task[] {
  let start = 0;
  return tasks.map((t) => {
    const task: Task = { name: t.name, kind: t.train.kind, labelNames: t.train.labelNames, start };
    start += t.train.labelNames.length;
    return task;
  });
}

export interface FitOptions {
  /** The model the prompt is trained on, recorded in every checkpoint. */
  identity: ModelIdentity;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Prompt vectors of a fresh prompt (default DEFAULT_TRAINING's; a resumed one keeps its own). */
  promptTokens?: number;
  /** Text tokens kept per example (default: the model's positions less the prompt). */
  maxLength?: number;
  /** As train(): GPU and host bytes for cached pasts (default 1 GiB and 0), and the f16 past. */
  cacheBytes?: number;
  hostCacheBytes?: number;
  cacheF16?: boolean;
  /** A checkpoint with progress, trained on the same tasks: training continues after its last epoch. */
  resume?: PromptCheckpoint;
  /** Stops training at the next step read back once aborted (fit then rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Before the first step. */
  onStart?: (info: { tasks: Task[]; examples: number; stepsPerEpoch: number; startEpoch: number }) => void;
  onStep?: (info: { epoch: number; step: number; steps: number; loss: number }) => void;
  /** Runs each step's work (see TrainOptions.aroundStep). */
  aroundStep?: (index: number, step: () => Promise<void>) => Promise<void>;
  /** After each epoch, with everything needed to resume from it; awaited before validation. */
  onCheckpoint?: (checkpoint: PromptCheckpoint, info: { epoch: number; meanLoss: number; seconds: number }) => Promise<void> | void;
  /** After each epoch's checkpoint: the report of every task that has validation data. */
  onValidation?: (evaluations: TaskEvaluation[], epoch: number) => Promise<void> | void;
}

export interface FitResult {
  /** The trained prompt and head on the device; the caller disposes it. */
  classifier: PromptClassifier;
  tasks: Task[];
  /** Text tokens kept per example, as trained. */
  maxLength: number;
  /** The last epoch's checkpoint (the resumed one when no epoch was left to train). */
  checkpoint: PromptCheckpoint | null;
}

/** Trains a soft prompt and linear head for `tasks` on the frozen model. */
export async function fit(model: GPT2, tokenizer: Tokenizer, tasks: readonly FitTask[], options: FitOptions): Promise<FitResult> {
  const previous = options.resume;
  const promptTokens = previous?.promptTokens ?? options.promptTokens ?? DEFAULT_TRAINING.promptTokens;
  const nPositions = model.config.nPositions;
  const maxLength = options.maxLength ?? nPositions - promptTokens;
  if (maxLength + promptTokens > nPositions) throw new RangeError(`max length ${maxLength} plus ${promptTokens} prompt tokens exceeds the model's ${nPositions} positions`);
  const taskList = layoutTasks(tasks);
  const classes = taskList.reduce((n, t) => n + t.labelNames.length, 0);
  const cacheF16 = options.cacheF16 ?? false;
  const params = previous?.params ?? (await freshParams(model, promptTokens, classes, options.seed));
  const classifier = new PromptClassifier(model, params, taskList);
  const optimizer = new Adam(classifier.parameters(), { lr: options.lr });
  try {
    const examples = tasks.flatMap((t, i) => toExamples(t.train, tokenizer, i, maxLength));
    const valSets = tasks.flatMap((t, i) => (t.val ? [{ task: taskList[i]!, data: t.val, examples: toExamples(t.val, tokenizer, i, maxLength) }] : []));
    const settings = {
      lr: options.lr,
      batchSize: options.batchSize,
      maxLength,
      seed: options.seed,
      epochs: options.epochs,
      promptTokens,
      cacheF16,
      data: tasks.map((t) => t.data ?? t.train.source),
      losses: tasks.map((t) => ({ classWeights: t.loss?.classWeights ? Array.from(t.loss.classWeights) : null, posWeight: t.loss?.posWeight ? Array.from(t.loss.posWeight) : null })),
    };
    if (previous?.progress) optimizer.loadState(previous.progress.optimizer);
    const history = previous?.progress?.history ? [...previous.progress.history] : [];
    const startEpoch = previous?.progress?.epochsCompleted ?? 0;
    let checkpoint: PromptCheckpoint | null = previous ?? null;
    options.signal?.throwIfAborted();
    options.onStart?.({ tasks: taskList, examples: examples.length, stepsPerEpoch: Math.ceil(examples.length / options.batchSize), startEpoch });
    await train(model, classifier, examples, {
      epochs: options.epochs,
      batchSize: options.batchSize,
      lr: options.lr,
      seed: options.seed,
      losses: tasks.map((t) => t.loss ?? {}),
      cacheBytes: options.cacheBytes ?? 2 ** 30,
      hostCacheBytes: options.hostCacheBytes ?? 0,
      cacheF16,
      startEpoch,
      optimizer,
      ...(options.aroundStep ? { aroundStep: options.aroundStep } : {}),
      onStep: (info) => {
        options.signal?.throwIfAborted();
        options.onStep?.(info);
      },
      onEpoch: async ({ epoch, meanLoss, seconds }) => {
        history.push({ epoch: epoch + 1, loss: meanLoss });
        checkpoint = {
          model: options.identity,
          tasks: taskList,
          promptTokens,
          params: await classifier.params(),
          training: settings,
          progress: { epochsCompleted: epoch + 1, optimizer: await optimizer.state(), history: [...history] },
        };
        await options.onCheckpoint?.(checkpoint, { epoch, meanLoss, seconds });
        if (valSets.length === 0 || !options.onValidation) return;
        const evaluations: TaskEvaluation[] = [];
        for (const v of valSets) {
          // Over the past the prompt was trained with.
          const [logits] = await predictLogits(model, [classifier], v.examples, options.batchSize, undefined, { pastF16: cacheF16 });
          evaluations.push(evaluateTask(v.task, taskLogits(logits!, classifier.classes, v.task), v.data));
        }
        await options.onValidation(evaluations, epoch);
      },
    });
    return { classifier, tasks: taskList, maxLength, checkpoint };
  } catch (error) {
    classifier.dispose();
    throw error;
  } finally {
    optimizer.dispose();
  }
}
