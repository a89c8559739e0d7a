// From table rows to a classification dataset: texts plus class indices (single-label) or a 0/1
// target matrix (multi-label), with every bad value reported by file, row and column.
import { DataError } from './error.ts';
import type { Table } from './table.ts';
import { seededRandom, shuffledIndices } from '../util/random.ts';

export { DataError } from './error.ts';

export interface DatasetSpec {
  textColumn: string;
  /** Single-label: the column holding each row's class. */
  labelColumn?: string;
  /** Multi-label: one 0/1 column per label. */
  labelColumns?: string[];
  /** Single-label class names in index order (e.g. from --labels); sorted unique values if absent. */
  labels?: string[];
}

export interface Dataset {
  kind: 'single' | 'multi';
  texts: string[];
  /** Class names (single) or label column names (multi), in index order. */
  labelNames: string[];
  /** single: class index per row; empty for multi. */
  labels: Uint32Array;
  /** multi: rows × labelNames.length, row-major, 0/1; empty for single. */
  targets: Float32Array;
  source: string;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}`;
  return String(v);
}

function isMissing(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
}

function textOf(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (isMissing(v)) throw new DataError(`${where}: missing text (${describe(v)}); an empty string is allowed, a null or NaN is not`);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  throw new DataError(`${where}: text must be a string, got ${describe(v)}`);
}

// Class values are compared as strings, so the same class reads the same from CSV ("1") and from
// Parquet or JSON (1).
function classKey(v: unknown, where: string): string {
  if (typeof v === 'string') {
    // An empty cell would otherwise become a class named "".
    if (v.trim() === '') throw new DataError(`${where}: empty label${v === '' ? '' : ` (${describe(v)})`}`);
    return v;
  }
  if (isMissing(v)) throw new DataError(`${where}: missing label (${describe(v)})`);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  throw new DataError(`${where}: label must be a string or number, got ${describe(v)}`);
}

function binaryValue(v: unknown, where: string): 0 | 1 {
  if (v === 0 || v === 1 || v === 0n || v === 1n) return Number(v) as 0 | 1;
  if (v === true || v === false) return v ? 1 : 0;
  if (typeof v === 'string' && /^\s*[01](\.0*)?\s*$/.test(v)) return Number(v) as 0 | 1;
  throw new DataError(`${where}: a multi-label value must be 0 or 1, got ${describe(v)}`);
}

/** Numbers sort numerically (2 before 10), anything else by code unit, as np.unique would. */
function sortClasses(keys: string[]): string[] {
  const numeric = keys.every((k) => k.trim() !== '' && Number.isFinite(Number(k)));
  return numeric ? keys.sort((a, b) => Number(a) - Number(b)) : keys.sort();
}

function checkNames(names: string[], what: string, source: string): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new DataError(`${source}: ${what} lists "${n}" twice`);
    seen.add(n);
  }
}

export function toDataset(table: Table, spec: DatasetSpec, source: string): Dataset {
  const single = spec.labelColumn !== undefined;
  if (single === (spec.labelColumns !== undefined)) {
    throw new DataError(`${source}: give exactly one of a label column (single-label) or label columns (multi-label)`);
  }
  if (!single && spec.labels !== undefined) throw new DataError(`${source}: a label list applies to single-label data only`);
  if (!single && spec.labelColumns!.length === 0) throw new DataError(`${source}: no label columns given`);
  const wanted = [spec.textColumn, ...(single ? [spec.labelColumn!] : spec.labelColumns!)];
  for (const c of wanted) {
    if (!table.columns.includes(c)) {
      throw new DataError(`${source}: unknown column "${c}" (available: ${table.columns.map((k) => JSON.stringify(k)).join(', ')})`);
    }
  }
  if (table.rows.length === 0) throw new DataError(`${source}: empty dataset, no data rows`);
  const where = (i: number, column: string) => `${source}: row ${i + 1}, column "${column}"`;
  const texts = table.rows.map((row, i) => textOf(row[spec.textColumn], where(i, spec.textColumn)));

  if (!single) {
    const names = spec.labelColumns!;
    checkNames(names, 'the label columns', source);
    const targets = new Float32Array(table.rows.length * names.length);
    table.rows.forEach((row, i) => names.forEach((c, j) => (targets[i * names.length + j] = binaryValue(row[c], where(i, c)))));
    return { kind: 'multi', texts, labelNames: [...names], labels: new Uint32Array(0), targets, source };
  }

  const column = spec.labelColumn!;
  const keys = table.rows.map((row, i) => classKey(row[column], where(i, column)));
  let names: string[];
  if (spec.labels !== undefined) {
    names = [...spec.labels];
    if (names.length === 0) throw new DataError(`${source}: the label list is empty`);
    checkNames(names, 'the label list', source);
  } else {
    names = sortClasses([...new Set(keys)]);
  }
  const index = new Map(names.map((n, k) => [n, k]));
  const labels = new Uint32Array(keys.length);
  keys.forEach((k, i) => {
    const c = index.get(k);
    if (c === undefined) {
      throw new DataError(`${where(i, column)}: label ${describe(k)} is not one of the given labels (${names.map((n) => JSON.stringify(n)).join(', ')})`);
    }
    labels[i] = c;
  });
  return { kind: 'single', texts, labelNames: names, labels, targets: new Float32Array(0), source };
}

/** Splits a --labels option ("bad,good") into class names, rejecting empty and repeated names. */
export function parseLabelList(option: string): string[] {
  const names = option.split(',').map((s) => s.trim());
  if (names.some((n) => n === '')) throw new DataError(`--labels "${option}": empty class name`);
  checkNames(names, '--labels', `--labels "${option}"`);
  return names;
}

/**
 * BCE positive-class weights: negatives / positives per label, computed on the training targets.
 * A label with no positives gets 1 (neutral) rather than Infinity; a label with no negatives gets 0,
 * the ratio itself.
 */
export function posWeights(targets: Float32Array, nLabels: number): Float32Array {
  if (nLabels <= 0 || targets.length % nLabels !== 0) throw new RangeError(`${targets.length} targets do not form rows × ${nLabels}`);
  const rows = targets.length / nLabels;
  const out = new Float32Array(nLabels);
  for (let j = 0; j < nLabels; j++) {
    let pos = 0;
    for (let i = 0; i < rows; i++) pos += targets[i * nLabels + j];
    out[j] = pos === 0 ? 1 : (rows - pos) / pos;
  }
  return out;
}

/**
 * scikit-learn's class_weight='balanced': n_samples / (n_classes · count). A class that never occurs
 * gets 1; it weighs no row, and sklearn would refuse it.
 */
export function balancedClassWeights(labels: Uint32Array, nClasses: number): Float32Array {
  const counts = new Float64Array(nClasses);
  for (const c of labels) {
    if (c >= nClasses) throw new RangeError(`class index ${c} is not below ${nClasses}`);
    counts[c]++;
  }
  return Float32Array.from(counts, (count) => (count === 0 ? 1 : labels.length / (nClasses * count)));
}

/** The given rows of a dataset, in the given order. */
export function pickRows(dataset: Dataset, rows: ArrayLike<number>): Dataset {
  const width = dataset.labelNames.length;
  const picked = Array.from(rows);
  const targets = new Float32Array(dataset.kind === 'multi' ? picked.length * width : 0);
  if (dataset.kind === 'multi') picked.forEach((r, i) => targets.set(dataset.targets.subarray(r * width, (r + 1) * width), i * width));
  return {
    ...dataset,
    texts: picked.map((r) => dataset.texts[r]!),
    labels: dataset.kind === 'single' ? Uint32Array.from(picked, (r) => dataset.labels[r]!) : new Uint32Array(0),
    targets,
  };
}

/**
 * `count` rows spread evenly over the dataset (rows ⌊i·n/count⌋), in order: a quick subset that
 * keeps the mix of a file sorted by label, where the first rows would all share one class.
 */
export function spreadSubset(dataset: Dataset, count: number): Dataset {
  const n = dataset.texts.length;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`a subset needs a positive row count, got ${count}`);
  if (count >= n) return dataset;
  return pickRows(dataset, Array.from({ length: count }, (_, i) => Math.floor((i * n) / count)));
}

/**
 * A validation split held out of `dataset`: `fraction` of its rows (at least one), drawn by a
 * seeded shuffle; both parts keep the file's row order. The rest trains.
 */
export function holdOut(dataset: Dataset, fraction: number, seed: number): { train: Dataset; val: Dataset } {
  const n = dataset.texts.length;
  if (!(fraction > 0 && fraction < 1)) throw new DataError(`${dataset.source}: the validation share must lie between 0 and 1 (exclusive), got ${fraction}`);
  const count = Math.max(1, Math.round(n * fraction));
  if (count >= n) throw new DataError(`${dataset.source}: ${n} rows are too few to hold out ${Math.round(fraction * 100)}% for validation and still train`);
  const chosen = shuffledIndices(n, seededRandom(seed)).subarray(0, count).sort();
  const isVal = new Uint8Array(n);
  for (const r of chosen) isVal[r] = 1;
  const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !isVal[i]);
  return { train: pickRows(dataset, rest), val: { ...pickRows(dataset, chosen), source: `${dataset.source} (held out)` } };
}

/** Rows per class (single-label) or positives per label column (multi-label), in label order. */
export function classCounts(dataset: Dataset): { label: string; count: number }[] {
  const width = dataset.labelNames.length;
  const counts = new Array<number>(width).fill(0);
  if (dataset.kind === 'single') for (const c of dataset.labels) counts[c]!++;
  else dataset.targets.forEach((v, i) => (counts[i % width]! += v));
  return dataset.labelNames.map((label, k) => ({ label, count: counts[k]! }));
}

/** A multi-label dataset restricted to some of its label columns (the study's joy-only task). */
export function withLabelColumns(dataset: Dataset, names: readonly string[]): Dataset {
  if (dataset.kind !== 'multi') throw new RangeError(`${dataset.source}: only multi-label data has label columns to choose`);
  const width = dataset.labelNames.length;
  const keep = names.map((name) => {
    const k = dataset.labelNames.indexOf(name);
    if (k < 0) throw new DataError(`${dataset.source}: no label column "${name}" (it has ${dataset.labelNames.join(', ')})`);
    return k;
  });
  const rows = dataset.texts.length;
  const targets = new Float32Array(rows * keep.length);
  for (let i = 0; i < rows; i++) keep.forEach((k, j) => (targets[i * keep.length + j] = dataset.targets[i * width + k]!));
  return { ...dataset, labelNames: [...names], targets };
}
