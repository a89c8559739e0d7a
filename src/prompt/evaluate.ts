// Turning logits into predictions and the reports users know from scikit-learn and scipy. The
// study's Pearson r is scipy.stats.pearsonr on the 0/1 predicted labels (logit > 0 per label for
// multi-label tasks, argmax for single-label), and so is every r here unless named otherwise.
import { classificationReport, multilabelReport, formatReport, type Report } from '../metrics/classification.ts';
import { pearson, correlationTable, type CorrelationEntry } from '../metrics/correlation.ts';
import type { Task } from './classifier.ts';

export interface LabelCorrelation {
  label: string;
  /** Pearson r and two-sided p of the label's 0/1 prediction with its 0/1 truth; NaN where either is constant. */
  r: number;
  p: number;
  /** Pearson r of the label's predicted probability with its truth (an extra; the study does not report it). */
  probabilityR: number;
}

export interface TaskEvaluation {
  task: string;
  kind: Task['kind'];
  report: Report;
  pearson: LabelCorrelation[];
}

/** The truth of a dataset: class indices (single-label) or a rows × labels 0/1 matrix (multi-label). */
export interface Truth {
  labels: Uint32Array;
  targets: Float32Array;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** The task's columns of composite logits [N, K] → [N, width]. */
export function taskLogits(logits: Float32Array, K: number, task: Task): Float32Array {
  const width = task.labelNames.length;
  const N = logits.length / K;
  const out = new Float32Array(N * width);
  for (let n = 0; n < N; n++) out.set(logits.subarray(n * K + task.start, n * K + task.start + width), n * width);
  return out;
}

/** Per-row probabilities: softmax for single-label tasks, sigmoid per label for multi-label. */
export function probabilities(logits: Float32Array, width: number, kind: Task['kind']): Float32Array {
  if (kind === 'multi') return logits.map(sigmoid);
  const out = new Float32Array(logits.length);
  for (let n = 0; n < logits.length / width; n++) {
    const row = logits.subarray(n * width, (n + 1) * width);
    const max = Math.max(...row);
    let z = 0;
    for (let k = 0; k < width; k++) z += Math.exp(row[k]! - max);
    for (let k = 0; k < width; k++) out[n * width + k] = Math.exp(row[k]! - max) / z;
  }
  return out;
}

/** Single-label: argmax per row (the first of equal maxima, as numpy.argmax). */
export function argmaxRows(values: Float32Array, width: number): Uint32Array {
  return Uint32Array.from({ length: values.length / width }, (_, n) => {
    let best = 0;
    for (let k = 1; k < width; k++) if (values[n * width + k]! > values[n * width + best]!) best = k;
    return best;
  });
}

/** Class indices → a rows × width one-hot matrix. */
function oneHot(classes: Uint32Array, width: number): Float32Array {
  const out = new Float32Array(classes.length * width);
  classes.forEach((c, n) => (out[n * width + c] = 1));
  return out;
}

/** The 0/1 predicted labels [N, width]: logit > 0 per label (multi-label), the argmax one-hot (single-label). */
export function predictedLabels(logits: Float32Array, width: number, kind: Task['kind']): Float32Array {
  return kind === 'multi' ? logits.map((x) => (x > 0 ? 1 : 0)) : oneHot(argmaxRows(logits, width), width);
}

/** The truth as a rows × width 0/1 matrix (single-label: one indicator column per class). */
export function truthIndicators(truth: Truth, kind: Task['kind'], width: number): Float32Array {
  return kind === 'multi' ? truth.targets : oneHot(truth.labels, width);
}

function column(m: Float32Array, width: number, k: number): Float64Array {
  return Float64Array.from({ length: m.length / width }, (_, n) => m[n * width + k]!);
}

/** Evaluates one task's logits [N, width] against its truth. */
export function evaluateTask(task: Task, logits: Float32Array, truth: Truth): TaskEvaluation {
  const width = task.labelNames.length;
  const predicted = predictedLabels(logits, width, task.kind);
  const probs = probabilities(logits, width, task.kind);
  const truthMatrix = truthIndicators(truth, task.kind, width);
  const report =
    task.kind === 'single'
      ? classificationReport(truth.labels, argmaxRows(logits, width), task.labelNames)
      : multilabelReport(truth.targets, predicted, width, task.labelNames);
  const correlations = task.labelNames.map((label, k) => {
    const t = column(truthMatrix, width, k);
    return { label, ...pearson(column(predicted, width, k), t), probabilityR: pearson(column(probs, width, k), t).r };
  });
  return { task: task.name, kind: task.kind, report, pearson: correlations };
}

/** r and p as printed: NaN (a constant column, where scipy also gives nan) reads "nan". */
export const formatR = (r: number) => (Number.isNaN(r) ? 'nan' : r.toFixed(4));
export const formatP = (p: number) => (Number.isNaN(p) ? 'nan' : p.toExponential(3));

export function formatEvaluation(e: TaskEvaluation): string {
  const lines = [`task ${e.task}`, formatReport(e.report), 'pearson r and p of each 0/1 predicted label with the truth (scipy.stats.pearsonr); r(prob): of the predicted probability'];
  const width = Math.max(...e.pearson.map((c) => c.label.length), 5);
  for (const c of e.pearson) {
    const note = Number.isNaN(c.r) ? '  (constant column: r undefined)' : '';
    lines.push(`  ${c.label.padStart(width)}  r=${formatR(c.r).padStart(7)}  p=${formatP(c.p).padStart(9)}  r(prob)=${formatR(c.probabilityR).padStart(7)}${note}`);
  }
  return lines.join('\n');
}

/** Another dataset's labels for a cross-task table: its kind, label names and truth. */
export interface LabelledTruth extends Truth {
  kind: Task['kind'];
  labelNames: string[];
}

function pick(names: string[], chosen: string[] | undefined, what: string): number[] {
  if (chosen === undefined) return names.map((_, k) => k);
  if (chosen.length === 0) throw new RangeError(`no ${what} chosen`);
  return chosen.map((name) => {
    const k = names.indexOf(name);
    if (k < 0) throw new RangeError(`${what} has no label '${name}' (it has ${names.join(', ')})`);
    return k;
  });
}

function selectColumns(m: Float32Array, width: number, keep: number[]): Float32Array {
  const N = m.length / width;
  const out = new Float32Array(N * keep.length);
  for (let n = 0; n < N; n++) keep.forEach((k, j) => (out[n * keep.length + j] = m[n * width + k]!));
  return out;
}

export interface CrossTaskChoice {
  /** The task's labels to correlate (default all). */
  predicted?: string[];
  /** The other dataset's labels to correlate with (default all). */
  against?: string[];
}

/** The column indices a choice names, on each side; throws on a name that is not there. */
export function crossTaskColumns(task: Task, otherLabels: string[], choice: CrossTaskChoice = {}): { predicted: number[]; against: number[] } {
  return { predicted: pick(task.labelNames, choice.predicted, `task ${task.name}`), against: pick(otherLabels, choice.against, 'the data') };
}

/**
 * A cross-task table: Pearson r and p of each of `task`'s 0/1 predicted labels (logits [N, width]
 * on another dataset's texts) with each 0/1 truth column of that dataset, sorted by r descending,
 * undefined r (a constant column) last. The study's "Emotion of IMDB" takes IMDB's `good` only,
 * its "Sentiment of SemEval" the `good` prediction only.
 */
export function crossTaskTable(task: Task, logits: Float32Array, other: LabelledTruth, choice: CrossTaskChoice = {}): CorrelationEntry[] {
  const width = task.labelNames.length;
  const B = other.labelNames.length;
  const { predicted: a, against: b } = crossTaskColumns(task, other.labelNames, choice);
  return correlationTable(
    selectColumns(predictedLabels(logits, width, task.kind), width, a),
    a.map((k) => task.labelNames[k]!),
    selectColumns(truthIndicators(other, other.kind, B), B, b),
    b.map((k) => other.labelNames[k]!),
  );
}
