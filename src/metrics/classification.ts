// Classification reports with scikit-learn's semantics (classification_report with
// zero_division=0), computed in the same operation order so the numbers match it to the last bit
// in the common cases.
import { numpyMean, numpySum } from './sum.ts';

export interface ReportRow {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Report {
  /** One row per class (single-label) or per label (multi-label), in index order. */
  classes: ReportRow[];
  /** Fraction of rows predicted correctly; single-label reports only (sklearn's "accuracy" entry). */
  accuracy?: number;
  /** single-label: macro avg, weighted avg. multi-label: micro avg, macro avg, weighted avg, samples avg. */
  averages: ReportRow[];
}

/** The JSON shape sklearn's classification_report(output_dict=True) returns. */
export type ReportDict = Record<string, number | { precision: number; recall: number; 'f1-score': number; support: number }>;

function divide(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

// sklearn: (1 + beta²)·p·r / (beta²·p + r), with the denominator replaced by 1 when it is 0.
function fScore(p: number, r: number): number {
  const den = p + r;
  return (2 * p * r) / (den === 0 ? 1 : den);
}

interface Counts {
  tp: Float64Array;
  pred: Float64Array;
  true: Float64Array;
}

function perClass(c: Counts, names: string[]): ReportRow[] {
  return names.map((name, k) => {
    const precision = divide(c.tp[k], c.pred[k]);
    const recall = divide(c.tp[k], c.true[k]);
    return { name, precision, recall, f1: fScore(precision, recall), support: c.true[k] };
  });
}

function macro(rows: ReportRow[], support: number): ReportRow {
  return {
    name: 'macro avg',
    precision: numpyMean(rows.map((r) => r.precision)),
    recall: numpyMean(rows.map((r) => r.recall)),
    f1: numpyMean(rows.map((r) => r.f1)),
    support,
  };
}

function weighted(rows: ReportRow[], support: number): ReportRow {
  // sklearn returns zero_division (0 here) for every score when no row has a true label.
  if (support === 0) return { name: 'weighted avg', precision: 0, recall: 0, f1: 0, support };
  const w = (key: 'precision' | 'recall' | 'f1') => numpySum(rows.map((r) => r[key] * r.support)) / support;
  return { name: 'weighted avg', precision: w('precision'), recall: w('recall'), f1: w('f1'), support };
}

function checkIndex(v: number, n: number, what: string, i: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= n) {
    throw new RangeError(`${what}[${i}] = ${v} is not a class index in [0, ${n})`);
  }
}

/**
 * Single-label report: sklearn's classification_report(y_true, y_pred, labels=range(k),
 * target_names=labelNames, zero_division=0). Every class is listed, even one that is neither
 * true nor predicted anywhere (scores 0, support 0).
 */
export function classificationReport(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, labelNames: string[]): Report {
  const n = yTrue.length;
  const k = labelNames.length;
  if (yPred.length !== n) throw new RangeError(`yTrue has ${n} rows but yPred has ${yPred.length}`);
  if (n === 0) throw new RangeError('cannot report on zero rows');
  const c: Counts = { tp: new Float64Array(k), pred: new Float64Array(k), true: new Float64Array(k) };
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i];
    const p = yPred[i];
    checkIndex(t, k, 'yTrue', i);
    checkIndex(p, k, 'yPred', i);
    c.true[t]++;
    c.pred[p]++;
    if (t === p) {
      c.tp[t]++;
      correct++;
    }
  }
  const classes = perClass(c, labelNames);
  return { classes, accuracy: correct / n, averages: [macro(classes, n), weighted(classes, n)] };
}

function checkBinary(a: Float32Array, what: string, i: number): void {
  if (a[i] !== 0 && a[i] !== 1) throw new RangeError(`${what}[${i}] = ${a[i]} is not 0 or 1`);
}

/**
 * Multi-label report on 0/1 indicator matrices (rows × nLabels, row-major): sklearn's
 * classification_report on multilabel-indicator input with zero_division=0.
 */
export function multilabelReport(yTrue: Float32Array, yPred: Float32Array, nLabels: number, labelNames: string[]): Report {
  if (labelNames.length !== nLabels) throw new RangeError(`${labelNames.length} label names for ${nLabels} labels`);
  if (yTrue.length !== yPred.length) throw new RangeError(`yTrue has ${yTrue.length} values but yPred has ${yPred.length}`);
  if (nLabels <= 0 || yTrue.length % nLabels !== 0 || yTrue.length === 0) {
    throw new RangeError(`${yTrue.length} values do not form a non-empty rows × ${nLabels} matrix`);
  }
  const n = yTrue.length / nLabels;
  const c: Counts = { tp: new Float64Array(nLabels), pred: new Float64Array(nLabels), true: new Float64Array(nLabels) };
  const sampleP = new Float64Array(n);
  const sampleR = new Float64Array(n);
  const sampleF = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let tp = 0;
    let pred = 0;
    let tru = 0;
    for (let j = 0; j < nLabels; j++) {
      const at = i * nLabels + j;
      checkBinary(yTrue, 'yTrue', at);
      checkBinary(yPred, 'yPred', at);
      const t = yTrue[at];
      const p = yPred[at];
      tp += t * p;
      pred += p;
      tru += t;
      c.tp[j] += t * p;
      c.pred[j] += p;
      c.true[j] += t;
    }
    sampleP[i] = divide(tp, pred);
    sampleR[i] = divide(tp, tru);
    sampleF[i] = fScore(sampleP[i], sampleR[i]);
  }
  const classes = perClass(c, labelNames);
  const support = numpySum(c.true);
  const microP = divide(numpySum(c.tp), numpySum(c.pred));
  const microR = divide(numpySum(c.tp), support);
  return {
    classes,
    averages: [
      { name: 'micro avg', precision: microP, recall: microR, f1: fScore(microP, microR), support },
      macro(classes, support),
      weighted(classes, support),
      { name: 'samples avg', precision: numpyMean(sampleP), recall: numpyMean(sampleR), f1: numpyMean(sampleF), support },
    ],
  };
}

/** The report as sklearn's output_dict, key for key (for JSON output and comparison). */
export function reportToDict(report: Report): ReportDict {
  const out: ReportDict = {};
  const entry = (r: ReportRow) => ({ precision: r.precision, recall: r.recall, 'f1-score': r.f1, support: r.support });
  for (const r of report.classes) out[r.name] = entry(r);
  if (report.accuracy !== undefined) out.accuracy = report.accuracy;
  for (const r of report.averages) out[r.name] = entry(r);
  return out;
}

/**
 * Python's format(x, `.${digits}f`): like toFixed, except that exact binary ties (0.125 at two
 * digits) round half to even instead of up.
 */
export function pyFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const a = Math.abs(x);
  const rounded = a.toFixed(digits);
  if (digits > 70) return sign + rounded;
  // toFixed rounds exactly, so 30 extra places show either a tie's "5000…" or a non-zero digit
  // after the 5: a double near a tie differs from it within ~17 significant digits.
  const [int, frac] = a.toFixed(digits + 30).split('.');
  const tie = /^50*$/.test(frac.slice(digits));
  if (tie && Number(rounded[rounded.length - 1]) % 2 === 1) {
    return sign + int + (digits > 0 ? '.' + frac.slice(0, digits) : '');
  }
  return sign + rounded;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

// Python's "{:>{width}}": right-align by code points.
function right(s: string, width: number): string {
  return ' '.repeat(Math.max(0, width - codePoints(s))) + s;
}

/** The text table sklearn's classification_report prints, in the same layout. */
export function formatReport(report: Report, digits = 2): string {
  const heading = 'weighted avg';
  const width = Math.max(...report.classes.map((r) => codePoints(r.name)), heading.length, digits);
  const cell = (v: number) => ' ' + right(pyFixed(v, digits), 9);
  const line = (r: ReportRow) => right(r.name, width) + ' ' + cell(r.precision) + cell(r.recall) + cell(r.f1) + ' ' + right(String(r.support), 9) + '\n';
  let out = right('', width) + ' ' + ['precision', 'recall', 'f1-score', 'support'].map((h) => ' ' + right(h, 9)).join('') + '\n\n';
  for (const r of report.classes) out += line(r);
  out += '\n';
  if (report.accuracy !== undefined) {
    const a = report.accuracy;
    const n = report.averages[0].support;
    // sklearn prints the micro F1 here, which is computed from p = r = accuracy.
    out += right('accuracy', width) + ' ' + ' ' + right('', 9) + ' ' + right('', 9) + cell(fScore(a, a)) + ' ' + right(String(n), 9) + '\n';
  }
  for (const r of report.averages) out += line(r);
  return out;
}
