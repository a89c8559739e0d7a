// `eval`, `predict` and `correlate`: running trained prompts over data. Texts are encoded
// once per batch; every prompt given runs over that same cached past.
import type { Dataset, DatasetSpec } from '../data/dataset.ts';
import { reportToDict } from '../metrics/classification.ts';
import { PromptClassifier, type Task } from '../prompt/classifier.ts';
import { predictLogits, type Example } from '../prompt/train.ts';
import { evaluateTask, formatEvaluation, taskLogits, crossTaskTable, crossTaskColumns, formatR, formatP } from '../prompt/evaluate.ts';
import { toExamples } from '../prompt/fit.ts';
import { textExamples, predictionRows, predictionsCsv } from '../prompt/predict.ts';
import { textLength, type PromptCheckpoint } from '../prompt/checkpoint.ts';
import { loadDataset, readTable } from '../node/dataset-file.ts';
import { writeFileAtomic, checkOutputFile } from '../node/files.ts';
import { ProgressBar } from '../node/progress.ts';
import { openSession, closeSession, readPromptFile, parseList, positiveInt, UsageError, type Session } from './common.ts';

export interface RunFlags {
  model?: string;
  prompt?: string | string[];
  data?: string;
  text?: string | string[];
  textColumn?: string;
  labelColumn?: string;
  labelColumns?: string;
  task?: string;
  predicted?: string;
  against?: string;
  batchSize?: number | string;
  json?: boolean;
  format?: string;
  out?: string;
  force?: boolean;
  backend?: string;
  quiet?: boolean;
}

const asList = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Loaded prompts, all checked against the session's model. */
async function loadPrompts(session: Session, paths: string[]): Promise<{ path: string; checkpoint: PromptCheckpoint; classifier: PromptClassifier }[]> {
  if (paths.length === 0) throw new UsageError('--prompt FILE is required');
  const out = [];
  for (const path of paths) {
    const checkpoint = await readPromptFile(path, session.identity);
    out.push({ path, checkpoint, classifier: new PromptClassifier(session.model, checkpoint.params, checkpoint.tasks) });
  }
  return out;
}

/** The text tokens every one of the prompts reads. */
function maxLengthFor(session: Session, prompts: { checkpoint: PromptCheckpoint }[]): number {
  return Math.min(...prompts.map((p) => textLength(session.model.config, p.checkpoint)));
}

function pickTask(checkpoint: PromptCheckpoint, name: string | undefined, path: string): Task {
  if (name === undefined) {
    if (checkpoint.tasks.length === 1) return checkpoint.tasks[0]!;
    throw new UsageError(`${path} holds tasks ${checkpoint.tasks.map((t) => t.name).join(', ')}; choose one with --task`);
  }
  const task = checkpoint.tasks.find((t) => t.name === name);
  if (!task) throw new UsageError(`${path} has no task '${name}' (it has ${checkpoint.tasks.map((t) => t.name).join(', ')})`);
  return task;
}

/** The dataset spec for evaluating `task`: its label names, and the label column(s) given. */
function specFor(task: Task, flags: RunFlags): DatasetSpec {
  const spec: DatasetSpec = { textColumn: flags.textColumn ?? 'text' };
  if (task.kind === 'multi') spec.labelColumns = parseList(flags.labelColumns) ?? task.labelNames;
  else {
    spec.labelColumn = flags.labelColumn ?? 'label';
    spec.labels = task.labelNames;
  }
  return spec;
}

async function runAll(session: Session, classifiers: PromptClassifier[], examples: Example[], batchSize: number, quiet?: boolean): Promise<Float32Array[]> {
  const bar = quiet ? null : new ProgressBar({ label: 'predict', total: examples.length });
  const logits = await predictLogits(session.model, classifiers, examples, batchSize, (done) => bar?.update(done));
  bar?.done();
  return logits;
}

export async function evalCommand(flags: RunFlags): Promise<void> {
  if (!flags.data) throw new UsageError('--data FILE is required');
  const session = await openSession(flags.model, flags.backend as never);
  try {
    const [prompt] = await loadPrompts(session, asList(flags.prompt).slice(0, 1));
    const task = pickTask(prompt!.checkpoint, flags.task, prompt!.path);
    const dataset = await loadDataset(flags.data, specFor(task, flags));
    const examples = toExamples(dataset, session.tokenizer, 0, maxLengthFor(session, [prompt!]));
    const [logits] = await runAll(session, [prompt!.classifier], examples, positiveInt(flags.batchSize ?? 16, '--batch-size'), flags.quiet || flags.json);
    const evaluation = evaluateTask(task, taskLogits(logits!, prompt!.classifier.classes, task), dataset);
    if (flags.json) {
      process.stdout.write(JSON.stringify({ task: task.name, kind: task.kind, data: flags.data, report: reportToDict(evaluation.report), pearson: evaluation.pearson }) + '\n');
    } else {
      process.stdout.write(formatEvaluation(evaluation) + '\n');
    }
  } finally {
    closeSession(session);
  }
}

export async function predictCommand(flags: RunFlags): Promise<void> {
  const texts = asList(flags.text);
  if (!flags.data && texts.length === 0) throw new UsageError('give --data FILE or --text "…"');
  const format = flags.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format must be jsonl or csv, got '${format}'`);
  if (flags.out) await checkOutputFile(flags.out, { overwrite: Boolean(flags.force) });
  const session = await openSession(flags.model, flags.backend as never);
  try {
    const prompts = await loadPrompts(session, asList(flags.prompt));
    let inputs: string[] = texts;
    if (flags.data) {
      const table = await readTable(flags.data);
      const column = flags.textColumn ?? 'text';
      if (!table.columns.includes(column)) throw new UsageError(`${flags.data}: no column '${column}' (columns: ${table.columns.join(', ')})`);
      inputs = table.rows.map((row, i) => {
        const v = row[column];
        if (typeof v !== 'string') throw new UsageError(`${flags.data}: row ${i + 1}, field ${column}: expected text, got ${v === null || v === undefined ? 'nothing' : typeof v}`);
        return v;
      });
    }
    const maxLength = maxLengthFor(session, prompts);
    const examples = textExamples(inputs, session.tokenizer, maxLength);
    const classifiers = prompts.map((p) => p.classifier);
    const predictions = predictionRows(classifiers, await runAll(session, classifiers, examples, positiveInt(flags.batchSize ?? 16, '--batch-size'), flags.quiet));
    const text = format === 'jsonl' ? predictions.rows.map((r, n) => JSON.stringify({ text: inputs[n], ...r })).join('\n') + '\n' : predictionsCsv(inputs, predictions);
    if (flags.out) await writeFileAtomic(flags.out, text, { overwrite: Boolean(flags.force) });
    else process.stdout.write(text);
  } finally {
    closeSession(session);
  }
}

/**
 * Runs one task's prompt over another task's data and correlates its 0/1 predicted labels with
 * that data's labels (the study's cross-task tables).
 */
export async function correlateCommand(flags: RunFlags): Promise<void> {
  if (!flags.data) throw new UsageError('--data FILE is required');
  const session = await openSession(flags.model, flags.backend as never);
  try {
    const [prompt] = await loadPrompts(session, asList(flags.prompt).slice(0, 1));
    const task = pickTask(prompt!.checkpoint, flags.task, prompt!.path);
    const labelColumns = parseList(flags.labelColumns);
    let dataset: Dataset;
    if (labelColumns) dataset = await loadDataset(flags.data, { textColumn: flags.textColumn ?? 'text', labelColumns });
    else dataset = await loadDataset(flags.data, { textColumn: flags.textColumn ?? 'text', labelColumn: flags.labelColumn ?? 'label' });
    const choice = { predicted: parseList(flags.predicted), against: parseList(flags.against) };
    crossTaskColumns(task, dataset.labelNames, choice); // a misspelt label fails before the long run
    const examples = toExamples(dataset, session.tokenizer, 0, maxLengthFor(session, [prompt!]));
    const [logits] = await runAll(session, [prompt!.classifier], examples, positiveInt(flags.batchSize ?? 16, '--batch-size'), flags.quiet || flags.json);
    const table = crossTaskTable(task, taskLogits(logits!, prompt!.classifier.classes, task), dataset, choice);
    if (flags.json) {
      process.stdout.write(JSON.stringify({ task: task.name, data: flags.data, n: examples.length, correlations: table }) + '\n');
      return;
    }
    process.stdout.write(`pearson r and p of ${task.name}'s 0/1 predicted labels (${prompt!.path}) with the labels of ${flags.data}, n=${examples.length}\n`);
    const wa = Math.max(...table.map((e) => e.a.length), 9);
    const wb = Math.max(...table.map((e) => e.b.length), 5);
    process.stdout.write(`  ${'predicted'.padEnd(wa)}  ${'truth'.padEnd(wb)}  ${'r'.padStart(7)}  ${'p'.padStart(9)}\n`);
    for (const e of table) process.stdout.write(`  ${e.a.padEnd(wa)}  ${e.b.padEnd(wb)}  ${formatR(e.r).padStart(7)}  ${formatP(e.p).padStart(9)}\n`);
  } finally {
    closeSession(session);
  }
}
