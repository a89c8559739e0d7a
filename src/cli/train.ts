// `gpt2-prompt train`: trains a soft prompt and linear head on a frozen GPT-2, with progress
// bars, a checkpoint after every epoch, validation reports, and --resume.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { posWeights, balancedClassWeights, type Dataset, type DatasetSpec } from '../data/dataset.ts';
import { encodeCheckpoint, checkSameModel } from '../prompt/checkpoint.ts';
import type { TaskLoss } from '../prompt/train.ts';
import { fit, layoutTasks, type FitTask } from '../prompt/fit.ts';
import { formatEvaluation } from '../prompt/evaluate.ts';
import { defaultTask, DEFAULT_TRAINING, type DefaultTask } from '../prompt/defaults.ts';
import { loadDataset } from '../node/dataset-file.ts';
import { writeFileAtomic, exists, checkOutputFile } from '../node/files.ts';
import { ProgressBar } from '../node/progress.ts';
import { profile } from '../tensor/profile.ts';
import type { Gpu } from '../gpu/context.ts';
import { openSession, closeSession, readPromptFile, readShipped, parseList, positiveInt, positiveNumber, UsageError } from './common.ts';

export interface TrainFlags {
  model?: string;
  data?: string;
  val?: string;
  tasks?: string;
  name?: string;
  textColumn?: string;
  labelColumn?: string;
  labelColumns?: string;
  labels?: string;
  promptTokens?: number | string;
  epochs?: number | string;
  batchSize?: number | string;
  maxLength?: number | string;
  lr?: number | string;
  seed?: number | string;
  out?: string;
  force?: boolean;
  resume?: boolean;
  classWeights?: string;
  posWeight?: string;
  cacheMb?: number | string;
  hostCacheMb?: number | string;
  cacheF16?: boolean;
  backend?: string;
  quiet?: boolean;
  profile?: string;
}

/** The step --profile profiles: two warm-up steps first compile the kernels and fill the pools. */
const PROFILED_STEP = 2;

/** One task of a run: where its data is and how to read it. */
interface TaskSpec {
  name: string;
  data?: string;
  val?: string;
  spec: DatasetSpec;
  classWeights?: string;
  posWeight?: string;
}

function specsFromFlags(flags: TrainFlags): TaskSpec[] {
  const labelColumns = parseList(flags.labelColumns);
  const labels = parseList(flags.labels);
  const spec: DatasetSpec = { textColumn: flags.textColumn ?? 'text' };
  if (labelColumns) spec.labelColumns = labelColumns;
  else spec.labelColumn = flags.labelColumn ?? 'label';
  if (labels) spec.labels = labels;
  const t: TaskSpec = { name: flags.name ?? 'task', spec };
  if (flags.data) t.data = flags.data;
  if (flags.val) t.val = flags.val;
  if (flags.classWeights) t.classWeights = flags.classWeights;
  if (flags.posWeight) t.posWeight = flags.posWeight;
  return [t];
}

/** --tasks FILE: a JSON array of {name, data, val?, textColumn, labelColumn | labelColumns, labels?, classWeights?, posWeight?}. */
async function specsFromFile(path: string): Promise<TaskSpec[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--tasks ${path}: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new UsageError(`--tasks ${path}: expected a non-empty JSON array of tasks`);
  const base = dirname(resolve(path));
  return raw.map((t: Record<string, unknown>, i) => {
    if (typeof t.name !== 'string' || typeof t.data !== 'string') throw new UsageError(`--tasks ${path}: task ${i + 1} needs string fields "name" and "data"`);
    const spec: DatasetSpec = { textColumn: typeof t.textColumn === 'string' ? t.textColumn : 'text' };
    if (Array.isArray(t.labelColumns)) spec.labelColumns = t.labelColumns.map(String);
    else spec.labelColumn = typeof t.labelColumn === 'string' ? t.labelColumn : 'label';
    if (Array.isArray(t.labels)) spec.labels = t.labels.map(String);
    const out: TaskSpec = { name: t.name, data: resolve(base, t.data), spec };
    if (typeof t.val === 'string') out.val = resolve(base, t.val);
    if (typeof t.classWeights === 'string') out.classWeights = t.classWeights;
    if (typeof t.posWeight === 'string') out.posWeight = t.posWeight;
    return out;
  });
}

function lossFor(spec: TaskSpec, dataset: Dataset): TaskLoss {
  const n = dataset.labelNames.length;
  if (dataset.kind === 'single') {
    if (!spec.classWeights || spec.classWeights === 'none') return {};
    if (spec.classWeights !== 'balanced') throw new UsageError(`--class-weights must be 'balanced' or 'none', got '${spec.classWeights}'`);
    return { classWeights: balancedClassWeights(dataset.labels, n) };
  }
  const given = parseList(spec.posWeight);
  if (!given || given[0] === 'auto') return { posWeight: posWeights(dataset.targets, n) };
  if (given[0] === 'none') return {};
  if (given.length !== n || given.some((v) => !(Number(v) > 0))) {
    throw new UsageError(`--pos-weight needs ${n} positive numbers (one per label: ${dataset.labelNames.join(', ')}), got '${spec.posWeight}'`);
  }
  return { posWeight: Float32Array.from(given, Number) };
}

/** The tasks' data; without any data given, the default task. */
async function loadTasks(specs: TaskSpec[], defaults: DefaultTask | null): Promise<FitTask[]> {
  const out: FitTask[] = [];
  for (const s of specs) {
    if (!s.data) {
      out.push({ name: s.name, train: defaults!.train, val: defaults!.val, loss: lossFor(s, defaults!.train), data: 'demo' });
      continue;
    }
    const train = await loadDataset(s.data, s.spec);
    // Validation labels must use the training label order.
    const val = s.val ? await loadDataset(s.val, { ...s.spec, ...(train.kind === 'single' ? { labels: train.labelNames } : {}) }) : null;
    out.push({ name: s.name, train, val, loss: lossFor(s, train), data: s.data });
  }
  return out;
}

export async function trainCommand(flags: TrainFlags): Promise<void> {
  const out = flags.out ?? 'prompt.gpt2p';
  const resume = Boolean(flags.resume);
  // The output is checked, and a file to resume read, before any data is loaded or trained on.
  await checkOutputFile(out, { overwrite: resume || Boolean(flags.force), existsHint: 'pass --force to overwrite it or --resume to continue training it' });
  if (resume && !(await exists(out))) throw new UsageError(`${out} not found: nothing to resume (drop --resume to start training)`);
  const previous = resume ? await readPromptFile(out) : null;
  if (previous && !previous.progress) throw new UsageError(`${out} holds no training progress to resume`);
  const seed = Number(flags.seed ?? DEFAULT_TRAINING.seed);
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got '${flags.seed}'`);
  const defaults = flags.data || flags.tasks ? null : await defaultTask(seed, readShipped);
  const epochs = positiveInt(flags.epochs ?? defaults?.epochs ?? 3, '--epochs');
  const batchSize = positiveInt(flags.batchSize ?? DEFAULT_TRAINING.batchSize, '--batch-size');
  const lr = positiveNumber(flags.lr ?? DEFAULT_TRAINING.lr, '--lr');
  const cacheBytes = Number(flags.cacheMb ?? 1024) * 2 ** 20;
  if (!(cacheBytes >= 0)) throw new UsageError(`--cache-mb must be a number ≥ 0, got '${flags.cacheMb}'`);
  const hostCacheBytes = Number(flags.hostCacheMb ?? 4096) * 2 ** 20;
  if (!(hostCacheBytes >= 0)) throw new UsageError(`--host-cache-mb must be a number ≥ 0, got '${flags.hostCacheMb}'`);
  const cacheF16 = Boolean(flags.cacheF16);

  const specs = flags.tasks ? await specsFromFile(flags.tasks) : specsFromFlags(flags);
  if (defaults) {
    process.stderr.write(`gpt2-prompt: no --data given: training ${defaults.description}\n`);
    specs[0]!.name = defaults.name;
  }
  const tasks = await loadTasks(specs, defaults);
  const session = await openSession(flags.model, flags.backend as never);
  // Notices and progress go to stderr; the run's report (epoch losses, validation) to stdout.
  const log = (line: string) => process.stderr.write(line + '\n');
  const report = (line: string) => process.stdout.write(line + '\n');
  try {
    if (previous) checkSameModel(previous, session.identity, out);
    const promptTokens = previous?.promptTokens ?? positiveInt(flags.promptTokens ?? DEFAULT_TRAINING.promptTokens, '--prompt-tokens');
    const nPositions = session.model.config.nPositions;
    const maxLength = positiveInt(flags.maxLength ?? nPositions - promptTokens, '--max-length');
    if (maxLength + promptTokens > nPositions) {
      throw new UsageError(`--max-length ${maxLength} plus ${promptTokens} prompt tokens exceeds the model's ${nPositions} positions`);
    }
    const taskList = layoutTasks(tasks);
    if (previous && JSON.stringify(previous.tasks) !== JSON.stringify(taskList)) {
      throw new UsageError(`${out} was trained on tasks ${JSON.stringify(previous.tasks.map((t) => t.name))} with other labels; --resume needs the same data and label columns`);
    }
    let runBar: ProgressBar | null = null;
    let epochBar: ProgressBar | null = null;
    let stepsDone = 0;
    let interrupted = false;
    const onSigint = () => {
      interrupted = true;
      log(`\ninterrupted: ${out} holds the last complete epoch`);
      process.exit(130);
    };
    process.once('SIGINT', onSigint);
    const result = await fit(session.model, session.tokenizer, tasks, {
      identity: session.identity,
      epochs,
      batchSize,
      lr,
      seed,
      promptTokens,
      maxLength,
      cacheBytes,
      hostCacheBytes,
      cacheF16,
      ...(previous ? { resume: previous } : {}),
      ...(flags.profile ? { aroundStep: profiledStep(session.gpu, flags.profile, log) } : {}),
      onStart: ({ examples, stepsPerEpoch, startEpoch }) => {
        log(`training ${taskList.map((t) => `${t.name} (${t.kind}-label, ${t.labelNames.length} labels)`).join(' + ')} on ${examples} examples; ${session.gpu.adapterName}`);
        if (startEpoch >= epochs) log(`${out} already completed ${startEpoch} epochs; raise --epochs to train further`);
        else log('compiling kernels as the first batches use them (about a minute on a software adapter the first time on a machine; cached after that)');
        if (!flags.quiet) runBar = new ProgressBar({ label: 'run', total: Math.max(1, stepsPerEpoch * (epochs - startEpoch)) });
      },
      onStep: ({ epoch, step, steps: perEpoch, loss }) => {
        if (flags.quiet) return;
        if (step === 0) epochBar = new ProgressBar({ label: `epoch ${epoch + 1}/${epochs}`, total: perEpoch });
        stepsDone++;
        epochBar!.update(step + 1, `loss ${loss.toFixed(4)}`);
        runBar!.update(stepsDone);
      },
      onCheckpoint: async (checkpoint, { epoch, meanLoss, seconds }) => {
        epochBar?.done();
        await writeFileAtomic(out, encodeCheckpoint(checkpoint), { overwrite: true });
        report(`epoch ${epoch + 1}/${epochs}: mean loss ${meanLoss.toFixed(4)} (${seconds.toFixed(1)} s); saved ${out}`);
      },
      onValidation: (evaluations) => {
        for (const e of evaluations) report(formatEvaluation(e));
      },
    });
    process.off('SIGINT', onSigint);
    (runBar as ProgressBar | null)?.done();
    if (flags.profile && stepsDone <= PROFILED_STEP && !flags.quiet) log(`--profile: the run had ${stepsDone} steps, none after the warm-up to profile`);
    if (!interrupted) log(`done: ${out}`);
    result.classifier.dispose();
  } finally {
    closeSession(session);
  }
}

/** Runs the training steps, profiling step PROFILED_STEP: its trace to `file`, its summary to the log. */
function profiledStep(gpu: Gpu, file: string, log: (line: string) => void): (index: number, step: () => Promise<void>) => Promise<void> {
  return async (index, step) => {
    if (index !== PROFILED_STEP) return step();
    const p = await profile(gpu, step);
    await writeFileAtomic(file, p.toChromeTrace(), { overwrite: true });
    log(`\nprofile of training step ${index + 1} (${p.adapter}); trace written to ${file}\n${p.summary()}`);
  };
}
