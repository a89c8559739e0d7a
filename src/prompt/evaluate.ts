// Turning logits into predictions and the reports users know from scikit-learn and scipy.
import { classificationReport, multilabelReport, formatReport, type Report } from '../metrics/classification.js';
import { pearson } from '../metrics/correlation.js';
import type { Task } from './classifier.js';

export interface TaskEvaluation {
  task: string;
  kind: Task['kind'];
  report: Report;
  /** Pearson r (and two-sided p) of each label's predicted probability with its 0/1 truth. */
  pearson: { label: string; r: number; p: number }[];
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

/** Single-label: argmax per row. */
export function argmaxRows(values: Float32Array, width: number): Uint32Array {
  return Uint32Array.from({ length: values.length / width }, (_, n) => {
    let best = 0;
    for (let k = 1; k < width; k++) if (values[n * width + k]! > values[n * width + best]!) best = k;
    return best;
  });
}

/** Evaluates one task's logits [N, width] against its truth. */
export function evaluateTask(task: Task, logits: Float32Array, truth: { labels: Uint32Array; targets: Float32Array }): TaskEvaluation {
  const width = task.labelNames.length;
  const probs = probabilities(logits, width, task.kind);
  const N = logits.length / width;
  const indicator = (n: number, k: number) => (task.kind === 'single' ? Number(truth.labels[n] === k) : truth.targets[n * width + k]!);
  const report =
    task.kind === 'single'
      ? classificationReport(truth.labels, argmaxRows(logits, width), task.labelNames)
      : multilabelReport(truth.targets, logits.map((x) => (x > 0 ? 1 : 0)), width, task.labelNames);
  const correlations = task.labelNames.map((label, k) => {
    const p = Float64Array.from({ length: N }, (_, n) => probs[n * width + k]!);
    const t = Float64Array.from({ length: N }, (_, n) => indicator(n, k));
    return { label, ...pearson(p, t) };
  });
  return { task: task.name, kind: task.kind, report, pearson: correlations };
}

export function formatEvaluation(e: TaskEvaluation): string {
  const lines = [`task ${e.task}`, formatReport(e.report), 'pearson r (predicted probability vs truth)'];
  const width = Math.max(...e.pearson.map((c) => c.label.length), 5);
  for (const c of e.pearson) lines.push(`  ${c.label.padStart(width)}  r=${c.r.toFixed(4)}  p=${c.p.toExponential(3)}`);
  return lines.join('\n');
}
