// Pearson correlation with scipy.stats.pearsonr's conventions and two-sided p-value.
import { numpyMean } from './sum.ts';
import { regIncBeta } from './special.ts';

export interface Correlation {
  r: number;
  p: number;
}

/** Euclidean norm, scaled by the largest magnitude so squares cannot overflow or underflow. */
function norm(v: Float64Array): number {
  let scale = 0;
  for (let i = 0; i < v.length; i++) scale = Math.max(scale, Math.abs(v[i]));
  if (scale === 0) return 0;
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += (v[i] / scale) ** 2;
  return scale * Math.sqrt(ss);
}

function isConstant(v: ArrayLike<number>): boolean {
  for (let i = 1; i < v.length; i++) if (v[i] !== v[0]) return false;
  return true;
}

/**
 * Pearson's r and its two-sided p-value, as scipy.stats.pearsonr: under independence r follows a
 * Beta(n/2 − 1, n/2 − 1) law on (−1, 1) (equivalently t = r·√((n−2)/(1−r²)) has n − 2 degrees of
 * freedom), so p = 2·I_{(1−|r|)/2}(n/2 − 1, n/2 − 1). A constant input gives r = p = NaN; n = 2
 * gives r = ±1, p = 1.
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): Correlation {
  const n = x.length;
  if (y.length !== n) throw new RangeError(`x has ${n} values but y has ${y.length}`);
  if (n < 2) throw new RangeError(`pearson needs at least 2 values, got ${n}`);
  if (isConstant(x) || isConstant(y)) return { r: NaN, p: NaN };
  if (n === 2) return { r: Math.sign(x[1] - x[0]) * Math.sign(y[1] - y[0]), p: 1 };
  const xMean = numpyMean(x);
  const yMean = numpyMean(y);
  const xm = new Float64Array(n);
  const ym = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xm[i] = x[i] - xMean;
    ym[i] = y[i] - yMean;
  }
  const nx = norm(xm);
  const ny = norm(ym);
  let dot = 0;
  for (let i = 0; i < n; i++) dot += (xm[i] / nx) * (ym[i] / ny);
  const r = Math.max(-1, Math.min(1, dot));
  const ab = n / 2 - 1;
  // scipy evaluates the beta survival function at (|r| + 1)/2; its complement is formed exactly here.
  const upper = (Math.abs(r) + 1) / 2;
  return { r, p: 2 * regIncBeta(ab, ab, 1 - upper, upper) };
}

export interface CorrelationEntry {
  a: string;
  b: string;
  r: number;
  p: number;
}

/**
 * Pearson correlation of every column of `predictions` (n × A, row-major) with every column of
 * `targets` (n × B), sorted by r descending; pairs with an undefined r (a constant column) last.
 */
export function correlationTable(predictions: Float32Array, aNames: string[], targets: Float32Array, bNames: string[]): CorrelationEntry[] {
  const A = aNames.length;
  const B = bNames.length;
  if (A === 0 || B === 0) throw new RangeError('correlationTable needs at least one column on each side');
  const n = predictions.length / A;
  if (!Number.isInteger(n) || targets.length !== n * B) {
    throw new RangeError(`predictions (${predictions.length} values, ${A} columns) and targets (${targets.length} values, ${B} columns) do not share a row count`);
  }
  const column = (m: Float32Array, cols: number, j: number) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = m[i * cols + j];
    return out;
  };
  const targetCols = bNames.map((_, j) => column(targets, B, j));
  const entries: CorrelationEntry[] = [];
  for (let i = 0; i < A; i++) {
    const pred = column(predictions, A, i);
    for (let j = 0; j < B; j++) entries.push({ a: aNames[i], b: bNames[j], ...pearson(pred, targetCols[j]) });
  }
  // Array.prototype.sort is stable, so equal r (and all NaN pairs) keep column order.
  const undefinedLast = (e: CorrelationEntry) => (Number.isNaN(e.r) ? 1 : 0);
  return entries.sort((u, v) => undefinedLast(u) - undefinedLast(v) || (undefinedLast(u) ? 0 : v.r - u.r));
}

/**
 * Kendall's τ-b, as scipy.stats.kendalltau's default: (concordant − discordant pairs) /
 * √(pairs not tied in x) / √(pairs not tied in y), so ties on either side count as neither.
 * A constant input gives NaN (scipy: nan). Used for rank agreement, so n is small: all pairs.
 */
export function kendallTau(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (y.length !== n) throw new RangeError(`x has ${n} values but y has ${y.length}`);
  if (n < 2) throw new RangeError(`kendallTau needs at least 2 values, got ${n}`);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(x[i]) || Number.isNaN(y[i])) throw new RangeError(`kendallTau: ${Number.isNaN(x[i]) ? 'x' : 'y'}[${i}] is NaN; leave undefined values out`);
  }
  let concordantMinusDiscordant = 0;
  let xTies = 0;
  let yTies = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const sx = Math.sign(x[i] - x[j]);
      const sy = Math.sign(y[i] - y[j]);
      if (sx === 0) xTies++;
      if (sy === 0) yTies++;
      concordantMinusDiscordant += sx * sy;
    }
  }
  const pairs = (n * (n - 1)) / 2;
  if (xTies === pairs || yTies === pairs) return NaN;
  const tau = concordantMinusDiscordant / Math.sqrt(pairs - xTies) / Math.sqrt(pairs - yTies);
  return Math.max(-1, Math.min(1, tau));
}
