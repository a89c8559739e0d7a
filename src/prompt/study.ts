// The published study, rerun end to end on any host: IMDB sentiment and SemEval-2018 E-c
// emotions after 3 and 10 epochs, the composite head restricted to each task, the two
// cross-task tables, and joy-only training. Trained prompts go through a store the caller
// provides (the CLI keeps one file per experiment), so an interrupted study resumes where it
// stopped; nothing here touches files or a terminal.
import type { GPT2 } from '../gpt2/model.ts';
import { balancedClassWeights, posWeights, spreadSubset, type Dataset, type DatasetSpec } from '../data/dataset.ts';
import type { CorrelationEntry } from '../metrics/correlation.ts';
import { PromptClassifier, type Task } from './classifier.ts';
import type { ModelIdentity, PromptCheckpoint } from './checkpoint.ts';
import { composeHeads } from './compose.ts';
import { fit, toExamples, type FitTask, type Tokenizer } from './fit.ts';
import { predictLogits } from './train.ts';
import { crossTaskTable, evaluateTask, taskLogits, type TaskEvaluation } from './evaluate.ts';

export const EMOTIONS = ['anger', 'anticipation', 'disgust', 'fear', 'joy', 'love', 'optimism', 'pessimism', 'sadness', 'surprise', 'trust'];

/** How the study reads its four files. */
export const STUDY_DATA = {
  imdb: { train: 'train.gz.parquet', test: 'test.gz.parquet', spec: { textColumn: 'text', labelColumn: 'label', labels: ['bad', 'good'] } as DatasetSpec },
  semeval: { train: 'train.tsv', dev: 'dev.tsv', spec: { textColumn: 'Tweet', labelColumns: EMOTIONS } as DatasetSpec },
};

/** The study's epoch counts: every experiment is reported after 3 and after 10 epochs. */
export const STUDY_EPOCHS = [3, 10] as const;

export interface StudyData {
  imdbTrain: Dataset;
  imdbTest: Dataset;
  semevalTrain: Dataset;
  semevalDev: Dataset;
}

/** Where trained prompts live between runs; `write` must be atomic (it is called after every epoch). */
export interface PromptStore {
  read(name: string): Promise<PromptCheckpoint | null>;
  write(name: string, checkpoint: PromptCheckpoint): Promise<void>;
}

export type StudyProgress =
  | { kind: 'experiment'; name: string; index: number; total: number; epochs: number; startEpoch: number; examples: number }
  | { kind: 'step'; name: string; epoch: number; epochs: number; step: number; steps: number; loss: number }
  | { kind: 'epoch'; name: string; epoch: number; epochs: number; meanLoss: number; seconds: number }
  | { kind: 'predict'; data: string; done: number; total: number };

export interface StudyOptions {
  identity: ModelIdentity;
  /** Rows per split, spread over each file (a quick run); all rows when absent. */
  limit?: number;
  seed?: number;
  /** The study's settings: batch 32, 5 prompt vectors, Adam lr 1e-3. */
  batchSize?: number;
  promptTokens?: number;
  lr?: number;
  /** As fit(): GPU and host bytes for pasts kept across epochs. */
  cacheBytes?: number;
  hostCacheBytes?: number;
  onProgress?: (event: StudyProgress) => void;
}

/** One trained experiment: its name in the store and its loss per epoch. */
export interface StudyRun {
  name: string;
  epochs: number;
  history: { epoch: number; loss: number }[];
}

export interface CompositeCheck {
  /** The composite head's report of each task, on that task's own data. */
  sentiment: TaskEvaluation;
  emotion: TaskEvaluation;
  /** Whether every logit of a task's columns equals the single-task prompt's, bit for bit. */
  identicalLogits: boolean;
  /** Whether each report and Pearson table equals the single-task one exactly. */
  identicalReports: boolean;
}

/** All results after one epoch count. */
export interface StudyStage {
  epochs: number;
  /** IMDB test, sentiment prompt. */
  sentiment: TaskEvaluation;
  /** SemEval dev, emotion prompt. */
  emotion: TaskEvaluation;
  composite: CompositeCheck;
  /** Emotion prompt's 0/1 predictions on IMDB test against IMDB's true `good`. */
  emotionOfImdb: CorrelationEntry[];
  /** Sentiment prompt's 0/1 `good` prediction on SemEval dev against each true emotion. */
  sentimentOfSemeval: CorrelationEntry[];
  /** SemEval dev, a prompt trained on the joy column alone. */
  joy: TaskEvaluation;
}

/**
 * The facts of the data the study printed: row and label counts, each emotion's training
 * frequency and BCE pos_weight (negatives / positives, in float64 as numpy computes it; training
 * uses its float32 rounding), joy-only training's balanced class weights, and the dev support of
 * every label.
 */
export interface StudyDataFacts {
  imdb: { trainRows: number; trainLabelCounts: Record<string, number>; testRows: number; testLabelCounts: Record<string, number> };
  semeval: {
    trainRows: number;
    devRows: number;
    trainPositiveFraction: Record<string, number>;
    posWeight: Record<string, number>;
    joyBalancedClassWeights: Record<string, number>;
    devSupport: Record<string, number>;
  };
}

function classCounts(d: Dataset): Record<string, number> {
  const counts = d.labelNames.map(() => 0);
  for (const c of d.labels) counts[c]!++;
  return Object.fromEntries(d.labelNames.map((name, k) => [name, counts[k]!]));
}

function positives(d: Dataset): Record<string, number> {
  const width = d.labelNames.length;
  const counts = d.labelNames.map(() => 0);
  d.targets.forEach((t, i) => (counts[i % width]! += t));
  return Object.fromEntries(d.labelNames.map((name, k) => [name, counts[k]!]));
}

export function studyDataFacts(data: StudyData): StudyDataFacts {
  const rows = data.semevalTrain.texts.length;
  const trainPositives = positives(data.semevalTrain);
  const joyTrain = joyOrNot(data.semevalTrain);
  const perEmotion = (f: (pos: number) => number) => Object.fromEntries(Object.entries(trainPositives).map(([name, pos]) => [name, f(pos)]));
  return {
    imdb: { trainRows: data.imdbTrain.texts.length, trainLabelCounts: classCounts(data.imdbTrain), testRows: data.imdbTest.texts.length, testLabelCounts: classCounts(data.imdbTest) },
    semeval: {
      trainRows: rows,
      devRows: data.semevalDev.texts.length,
      trainPositiveFraction: perEmotion((pos) => pos / rows),
      posWeight: perEmotion((pos) => (pos === 0 ? 1 : (rows - pos) / pos)),
      // As balancedClassWeights, in float64 (it gives the float32 that training uses).
      joyBalancedClassWeights: Object.fromEntries(Object.entries(classCounts(joyTrain)).map(([name, count]) => [name, count === 0 ? 1 : rows / (JOY_CLASSES.length * count)])),
      devSupport: positives(data.semevalDev),
    },
  };
}

export interface StudyResult {
  /** maxLength: the tokens of a text the model reads (its positions less the prompt). */
  settings: { limit: number | null; seed: number; batchSize: number; promptTokens: number; lr: number; maxLength: number; fingerprint: string; rows: Record<keyof StudyData, number> };
  /** The facts of the data this run used (a subset with a limit). */
  facts: StudyDataFacts;
  runs: StudyRun[];
  stages: StudyStage[];
}

/** The study's data, `limit` rows per split spread over each file. */
export function studyData(data: StudyData, limit?: number): StudyData {
  if (limit === undefined) return data;
  return {
    imdbTrain: spreadSubset(data.imdbTrain, limit),
    imdbTest: spreadSubset(data.imdbTest, limit),
    semevalTrain: spreadSubset(data.semevalTrain, limit),
    semevalDev: spreadSubset(data.semevalDev, limit),
  };
}

interface Experiment {
  /** Store name, e.g. "emotion-3". */
  name: string;
  task: FitTask;
  epochs: number;
  /** The shorter run this one continues: the study's per-epoch shuffles depend only on the seed and epoch, so 10 epochs continuing the 3-epoch checkpoint are the 10-epoch run. */
  continues?: string;
}

/** The classes of joy-only training, as the study names them. */
export const JOY_CLASSES = ['not-joy', 'joy'];

/**
 * SemEval's joy column as a two-class dataset (not-joy, joy): the study trains joy alone as a
 * single-label task with cross entropy and scikit-learn's balanced class weights.
 */
export function joyOrNot(semeval: Dataset): Dataset {
  const width = semeval.labelNames.length;
  const joy = semeval.labelNames.indexOf('joy');
  if (semeval.kind !== 'multi' || joy < 0) throw new RangeError(`${semeval.source}: joy-only training needs multi-label data with a joy column`);
  const labels = Uint32Array.from({ length: semeval.texts.length }, (_, i) => semeval.targets[i * width + joy]!);
  return { ...semeval, kind: 'single', labelNames: [...JOY_CLASSES], labels, targets: new Float32Array(0) };
}

function experiments(data: StudyData): Experiment[] {
  const sentiment: FitTask = { name: 'sentiment', train: data.imdbTrain, loss: {} };
  const emotion: FitTask = { name: 'emotion', train: data.semevalTrain, loss: { posWeight: posWeights(data.semevalTrain.targets, EMOTIONS.length) } };
  const joyTrain = joyOrNot(data.semevalTrain);
  const joy: FitTask = { name: 'joy', train: joyTrain, loss: { classWeights: balancedClassWeights(joyTrain.labels, JOY_CLASSES.length) } };
  const [short, long] = STUDY_EPOCHS;
  return [sentiment, emotion, joy].flatMap((task) => [
    { name: `${task.name}-${short}`, task, epochs: short },
    { name: `${task.name}-${long}`, task, epochs: long, continues: `${task.name}-${short}` },
  ]);
}

/** Bit-level equality of two float32 arrays (NaN equal to NaN). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Runs (or resumes) the whole study. */
export async function runStudy(model: GPT2, tokenizer: Tokenizer, allData: StudyData, store: PromptStore, options: StudyOptions): Promise<StudyResult> {
  const data = studyData(allData, options.limit);
  const seed = options.seed ?? 0;
  const batchSize = options.batchSize ?? 32;
  const promptTokens = options.promptTokens ?? 5;
  const lr = options.lr ?? 1e-3;
  const progress = options.onProgress ?? (() => {});
  const maxLength = model.config.nPositions - promptTokens;

  const plan = experiments(data);
  const trained = new Map<string, PromptCheckpoint>();
  for (const [index, e] of plan.entries()) {
    const resume = (await store.read(e.name)) ?? (e.continues ? trained.get(e.continues) : undefined);
    if (resume && JSON.stringify(resume.tasks.map((t) => [t.name, t.labelNames])) !== JSON.stringify([[e.task.name, e.task.train.labelNames]])) {
      throw new RangeError(`stored prompt ${e.name} was trained on other tasks (${resume.tasks.map((t) => t.name).join(', ')})`);
    }
    const startEpoch = resume?.progress?.epochsCompleted ?? 0;
    progress({ kind: 'experiment', name: e.name, index, total: plan.length, epochs: e.epochs, startEpoch, examples: e.task.train.texts.length });
    if (resume && startEpoch >= e.epochs) {
      trained.set(e.name, resume);
      continue;
    }
    const result = await fit(model, tokenizer, [e.task], {
      identity: options.identity,
      epochs: e.epochs,
      batchSize,
      lr,
      seed,
      promptTokens,
      maxLength,
      ...(options.cacheBytes !== undefined ? { cacheBytes: options.cacheBytes } : {}),
      ...(options.hostCacheBytes !== undefined ? { hostCacheBytes: options.hostCacheBytes } : {}),
      ...(resume ? { resume } : {}),
      onStep: ({ epoch, step, steps, loss }) => progress({ kind: 'step', name: e.name, epoch, epochs: e.epochs, step, steps, loss }),
      onCheckpoint: async (checkpoint, { epoch, meanLoss, seconds }) => {
        await store.write(e.name, checkpoint);
        progress({ kind: 'epoch', name: e.name, epoch, epochs: e.epochs, meanLoss, seconds });
      },
    });
    result.classifier.dispose();
    trained.set(e.name, result.checkpoint!);
  }

  const runs = plan.map((e) => ({ name: e.name, epochs: e.epochs, history: trained.get(e.name)!.progress?.history ?? [] }));
  const checkpoint = (name: string) => trained.get(name)!;
  const classifiers: PromptClassifier[] = [];
  const load = (c: PromptCheckpoint) => {
    const classifier = new PromptClassifier(model, c.params, c.tasks);
    classifiers.push(classifier);
    return classifier;
  };
  try {
    // Every prompt that reads a dataset runs over one encoding of it.
    const perStage = STUDY_EPOCHS.map((epochs) => {
      const sentiment = checkpoint(`sentiment-${epochs}`);
      const emotion = checkpoint(`emotion-${epochs}`);
      const composite = composeHeads([
        { source: `sentiment-${epochs}`, checkpoint: sentiment },
        { source: `emotion-${epochs}`, checkpoint: emotion },
      ]);
      return { epochs, sentiment: load(sentiment), emotion: load(emotion), joy: load(checkpoint(`joy-${epochs}`)), composite: load(composite) };
    });
    const run = async (dataset: Dataset, label: string, which: PromptClassifier[]) => {
      const examples = toExamples(dataset, tokenizer, 0, maxLength);
      const logits = await predictLogits(model, which, examples, batchSize, (done) => progress({ kind: 'predict', data: label, done, total: examples.length }));
      return (c: PromptClassifier, task: Task) => taskLogits(logits[which.indexOf(c)]!, c.classes, task);
    };
    const onImdb = await run(data.imdbTest, 'IMDB test', perStage.flatMap((s) => [s.sentiment, s.emotion, s.composite]));
    const onSemeval = await run(data.semevalDev, 'SemEval dev', perStage.flatMap((s) => [s.emotion, s.sentiment, s.joy, s.composite]));
    const joyDev = joyOrNot(data.semevalDev);

    const stages = perStage.map((s): StudyStage => {
      const [sentimentTask] = s.sentiment.tasks;
      const [emotionTask] = s.emotion.tasks;
      const own = { sentiment: onImdb(s.sentiment, sentimentTask!), emotion: onSemeval(s.emotion, emotionTask!) };
      const composed = {
        sentiment: onImdb(s.composite, s.composite.tasks.find((t) => t.name === 'sentiment')!),
        emotion: onSemeval(s.composite, s.composite.tasks.find((t) => t.name === 'emotion')!),
      };
      const sentiment = evaluateTask(sentimentTask!, own.sentiment, data.imdbTest);
      const emotion = evaluateTask(emotionTask!, own.emotion, data.semevalDev);
      const compositeSentiment = evaluateTask(sentimentTask!, composed.sentiment, data.imdbTest);
      const compositeEmotion = evaluateTask(emotionTask!, composed.emotion, data.semevalDev);
      return {
        epochs: s.epochs,
        sentiment,
        emotion,
        composite: {
          sentiment: compositeSentiment,
          emotion: compositeEmotion,
          identicalLogits: sameBits(own.sentiment, composed.sentiment) && sameBits(own.emotion, composed.emotion),
          identicalReports: JSON.stringify([sentiment, emotion]) === JSON.stringify([compositeSentiment, compositeEmotion]),
        },
        emotionOfImdb: crossTaskTable(emotionTask!, onImdb(s.emotion, emotionTask!), data.imdbTest, { against: ['good'] }),
        sentimentOfSemeval: crossTaskTable(sentimentTask!, onSemeval(s.sentiment, sentimentTask!), data.semevalDev, { predicted: ['good'] }),
        joy: evaluateTask(s.joy.tasks[0]!, onSemeval(s.joy, s.joy.tasks[0]!), joyDev),
      };
    });
    const rows = { imdbTrain: data.imdbTrain.texts.length, imdbTest: data.imdbTest.texts.length, semevalTrain: data.semevalTrain.texts.length, semevalDev: data.semevalDev.texts.length };
    return { settings: { limit: options.limit ?? null, seed, batchSize, promptTokens, lr, maxLength, fingerprint: options.identity.fingerprint, rows }, facts: studyDataFacts(data), runs, stages };
  } finally {
    for (const c of classifiers) c.dispose();
  }
}
