import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences, rng } from '../helpers.ts';
import { tensor, tidy } from '../../src/tensor/tensor.ts';
import { crossEntropy, bceWithLogits } from '../../src/ops/loss.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

interface CeOpts {
  weights?: Float32Array;
  columnStart?: Uint32Array;
  columnCount?: Uint32Array;
}

/** Row i's own column range and its log-sum-exp (max subtracted), in float64. */
function rowLogSumExp(x: Float64Array, cols: number, i: number, o: CeOpts) {
  const start = o.columnStart?.[i] ?? 0;
  const count = o.columnCount?.[i] ?? cols - start;
  const row = x.subarray(i * cols + start, i * cols + start + count);
  const m = Math.max(...row);
  return { start, count, row, lse: m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) };
}

/** float64 reference of torch's weighted-mean cross entropy, with per-row column ranges. */
function refCrossEntropy(x: Float64Array, cols: number, labels: Uint32Array, o: CeOpts): number {
  let num = 0;
  let den = 0;
  labels.forEach((y, i) => {
    const { start, row, lse } = rowLogSumExp(x, cols, i, o);
    const w = o.weights ? o.weights[start + y]! : 1;
    num += w * (lse - row[y]!);
    den += w;
  });
  return num / den;
}

/** Analytic float64 gradient, for logits too large for finite differences in float64. */
function refCrossEntropyGrad(x: Float64Array, cols: number, labels: Uint32Array, o: CeOpts, g: number): Float64Array {
  const grad = new Float64Array(x.length);
  let den = 0;
  labels.forEach((y, i) => (den += o.weights ? o.weights[(o.columnStart?.[i] ?? 0) + y]! : 1));
  labels.forEach((y, i) => {
    const { start, count, row, lse } = rowLogSumExp(x, cols, i, o);
    const w = (o.weights ? o.weights[start + y]! : 1) / den;
    for (let j = 0; j < count; j++) grad[i * cols + start + j] = g * w * (Math.exp(row[j]! - lse) - (j === y ? 1 : 0));
  });
  return grad;
}

/** Runs the loss forward and backward with incoming gradient g; returns [loss, dlogits]. */
async function run(x: Float64Array, shape: [number, number], loss: (t: ReturnType<typeof tensor>) => ReturnType<typeof tensor>, g: number) {
  const logits = tensor(gpu, x, shape, { requiresGrad: true });
  const out = tidy(() => {
    const l = loss(logits);
    l.backward(tensor(gpu, [g], [1]));
    return l;
  });
  expect(out.shape).toEqual([1]);
  const result = [(await out.readF32())[0]!, await logits.grad!.readF32()] as const;
  out.dispose();
  logits.dispose();
  return result;
}

describe('crossEntropy', () => {
  const cases: { name: string; rows: number; cols: number; scale: number; opts?: (u: () => number) => CeOpts }[] = [
    { name: 'batch 1, K=2', rows: 1, cols: 2, scale: 1 },
    { name: 'B=5, K=3', rows: 5, cols: 3, scale: 2 },
    { name: 'B=7, K=300 (not a workgroup multiple)', rows: 7, cols: 300, scale: 3 },
    { name: 'B=3, K=517 with class weights', rows: 3, cols: 517, scale: 1, opts: (u) => ({ weights: Float32Array.from({ length: 517 }, () => 0.1 + 2 * u()) }) },
    {
      name: 'B=6 composite head: per-row column ranges and weights',
      rows: 6,
      cols: 9,
      scale: 1.5,
      opts: (u) => ({
        columnStart: Uint32Array.of(0, 2, 5, 0, 2, 5),
        columnCount: Uint32Array.of(2, 3, 4, 2, 3, 4),
        weights: Float32Array.from({ length: 9 }, () => 0.5 + u()),
      }),
    },
  ];
  for (const c of cases) {
    it(`${c.name}: forward and gradient vs float64 finite differences`, async () => {
      const u = rng(c.rows * 100 + c.cols);
      const opts = c.opts?.(u) ?? {};
      const x = asF32(randn(c.rows * c.cols, c.cols, c.scale));
      const labels = Uint32Array.from({ length: c.rows }, (_, i) => Math.floor(u() * (opts.columnCount?.[i] ?? c.cols)));
      const g = 0.75;
      const [loss, grad] = await run(x, [c.rows, c.cols], (t) => crossEntropy(t, labels, opts), g);
      const f = (v: Float64Array) => g * refCrossEntropy(v, c.cols, labels, opts);
      expectClose(`crossEntropy ${c.name} forward`, [loss], [refCrossEntropy(x, c.cols, labels, opts)], { atol: 1e-5, rtol: 1e-5 });
      const fd = finiteDifferences(f, x, 1e-5);
      expectClose(`crossEntropy ${c.name} grad`, grad, fd, { atol: 2e-6, rtol: 1e-4 });
      expectClose(`crossEntropy ${c.name} grad (analytic)`, grad, refCrossEntropyGrad(x, c.cols, labels, opts, g), { atol: 1e-7, rtol: 1e-5 });
    });
  }

  it('logits of ±1e4 stay finite and match the float64 log-sum-exp', async () => {
    const rows = 4;
    const cols = 1000;
    const x = asF32(randn(rows * cols, 11, 4000).map((v) => Math.max(-1e4, Math.min(1e4, v))));
    // A near-tie at the top of row 0 and a row whose label is far below its max.
    x[5] = 1e4;
    x[6] = 1e4 - 0.5;
    const labels = Uint32Array.of(6, 0, 999, 500);
    const [loss, grad] = await run(x, [rows, cols], (t) => crossEntropy(t, labels), 1);
    // f32 logits near 1e4 are spaced ~1e-3 apart; the loss is a difference of such numbers.
    expectClose('crossEntropy ±1e4 forward', [loss], [refCrossEntropy(x, cols, labels, {})], { atol: 4e-3, rtol: 1e-6 });
    expectClose('crossEntropy ±1e4 grad', grad, refCrossEntropyGrad(x, cols, labels, {}, 1), { atol: 1e-5, rtol: 1e-3 });
  });

  it('B=300 rows reduce to one mean', async () => {
    const rows = 300;
    const cols = 4;
    const x = asF32(randn(rows * cols, 12));
    const labels = Uint32Array.from({ length: rows }, (_, i) => (i * 7) % cols);
    const [loss, grad] = await run(x, [rows, cols], (t) => crossEntropy(t, labels), 2);
    expectClose('crossEntropy B=300 forward', [loss], [refCrossEntropy(x, cols, labels, {})], { atol: 1e-5, rtol: 1e-5 });
    expectClose('crossEntropy B=300 grad', grad, refCrossEntropyGrad(x, cols, labels, {}, 2), { atol: 1e-7, rtol: 1e-4 });
  });

  it('without grad it records nothing', async () => {
    const logits = tensor(gpu, [1, 2, 3, 4], [2, 2]);
    const loss = crossEntropy(logits, Uint32Array.of(0, 1));
    expect(loss.node).toBeNull();
    expectClose('crossEntropy no-grad forward', await loss.readF32(), [refCrossEntropy(Float64Array.of(1, 2, 3, 4), 2, Uint32Array.of(0, 1), {})]);
    logits.dispose();
    loss.dispose();
  });

  for (const [rows, cols] of [[1, 2], [3, 259], [300, 4]] as const) {
    it(`targets as a u32 tensor, B=${rows} K=${cols}: float64 forward and finite-difference gradient, the same bits as host labels`, async () => {
      const u = rng(rows * 7 + cols);
      const x = asF32(randn(rows * cols, rows + cols, 2));
      const labels = Uint32Array.from({ length: rows }, () => Math.floor(u() * cols));
      const targets = tensor(gpu, labels, [rows], { dtype: 'u32' });
      const g = 1.5;
      const [loss, grad] = await run(x, [rows, cols], (t) => crossEntropy(t, targets), g);
      expectClose(`crossEntropy u32 tensor B=${rows} forward`, [loss], [refCrossEntropy(x, cols, labels, {})], { atol: 1e-5, rtol: 1e-5 });
      const fd = finiteDifferences((v) => g * refCrossEntropy(v, cols, labels, {}), x, 1e-5);
      expectClose(`crossEntropy u32 tensor B=${rows} grad`, grad, fd, { atol: 2e-6, rtol: 1e-4 });
      const [hostLoss, hostGrad] = await run(x, [rows, cols], (t) => crossEntropy(t, labels), g);
      expect(loss).toBe(hostLoss);
      expect(Array.from(grad)).toEqual(Array.from(hostGrad));
      targets.dispose();
    });
  }

  it('a u32 target out of range makes the loss and gradient NaN; bad targets tensors are rejected', async () => {
    const x = asF32(randn(6, 21));
    const targets = tensor(gpu, [1, 3], [2], { dtype: 'u32' });
    const [loss, grad] = await run(x, [2, 3], (t) => crossEntropy(t, targets), 1);
    expect(loss).toBeNaN();
    expect(grad.slice(3).every(Number.isNaN)).toBe(true);
    const logits = tensor(gpu, new Float32Array(6), [2, 3]);
    const f32Targets = tensor(gpu, [0, 1], [2]);
    const three = tensor(gpu, [0, 1, 2], [3], { dtype: 'u32' });
    expect(() => crossEntropy(logits, f32Targets)).toThrow(/targets tensor is f32, not u32/);
    expect(() => crossEntropy(logits, three)).toThrow(/targets \[3\] for 2 rows/);
    expect(() => crossEntropy(logits, targets, { weights: new Float32Array(3) })).toThrow(/need the targets on the host/);
    for (const t of [targets, logits, f32Targets, three]) t.dispose();
  });

  it('rejects bad labels and column ranges', () => {
    const logits = tensor(gpu, new Float32Array(6), [2, 3]);
    expect(() => crossEntropy(logits, Uint32Array.of(0, 3))).toThrow(/label 3 of row 1/);
    expect(() => crossEntropy(logits, Uint32Array.of(0))).toThrow(/1 labels for 2 rows/);
    expect(() => crossEntropy(logits, Uint32Array.of(0, 0), { columnStart: Uint32Array.of(0, 2), columnCount: Uint32Array.of(3, 2) })).toThrow(
      /row 1 uses columns \[2, 4\) of 3/,
    );
    expect(() => crossEntropy(logits, Uint32Array.of(0, 0), { weights: new Float32Array(3) })).toThrow(/sum to 0/);
    logits.dispose();
  });
});

/** float64 reference of torch's BCEWithLogitsLoss(pos_weight), masked mean. */
function refBce(x: Float64Array, cols: number, y: Float32Array, pw?: Float32Array, mask?: Float32Array): number {
  const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
  let sum = 0;
  let n = 0;
  x.forEach((v, i) => {
    const m = mask ? mask[i]! : 1;
    const p = pw ? pw[i % cols]! : 1;
    sum += m * (p * y[i]! * softplus(-v) + (1 - y[i]!) * softplus(v));
    n += m;
  });
  return n > 0 ? sum / n : 0;
}

describe('bceWithLogits', () => {
  const cases: { rows: number; cols: number; scale: number; pw: boolean; mask: boolean }[] = [
    { rows: 1, cols: 1, scale: 1, pw: false, mask: false },
    { rows: 9, cols: 1, scale: 3, pw: true, mask: false },
    { rows: 5, cols: 11, scale: 2, pw: true, mask: true },
    { rows: 3, cols: 300, scale: 4, pw: false, mask: true },
    { rows: 2, cols: 300, scale: 2, pw: true, mask: false },
  ];
  for (const c of cases) {
    const name = `B=${c.rows} K=${c.cols}${c.pw ? ' pos_weight' : ''}${c.mask ? ' mask' : ''}`;
    it(`${name}: forward and gradient vs float64 finite differences`, async () => {
      const u = rng(c.rows * 31 + c.cols);
      const n = c.rows * c.cols;
      const x = asF32(randn(n, c.cols + 40, c.scale));
      const y = Float32Array.from({ length: n }, () => (u() < 0.4 ? 1 : 0));
      const pw = c.pw ? Float32Array.from({ length: c.cols }, () => 0.5 + 3 * u()) : undefined;
      const mask = c.mask ? Float32Array.from({ length: n }, (_, i) => (i === 0 || u() < 0.7 ? 1 : 0)) : undefined;
      const g = 1.25;
      const [loss, grad] = await run(x, [c.rows, c.cols], (t) => bceWithLogits(t, y, { posWeight: pw, mask }), g);
      expectClose(`bce ${name} forward`, [loss], [refBce(x, c.cols, y, pw, mask)], { atol: 1e-6, rtol: 1e-5 });
      const fd = finiteDifferences((v) => g * refBce(v, c.cols, y, pw, mask), x, 1e-5);
      expectClose(`bce ${name} grad`, grad, fd, { atol: 1e-7, rtol: 1e-4 });
      if (mask) mask.forEach((m, i) => m === 0 && expect(grad[i]).toBe(0));
    });
  }

  it('|x| up to 100 stays finite and exact in the tails', async () => {
    const rows = 4;
    const cols = 3;
    const x = Float64Array.of(100, -100, 0, 50, -50, 30, -30, 17, -17, 1e-3, -88, 88);
    const y = Float32Array.of(0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0);
    const pw = Float32Array.of(2, 0.5, 3);
    const [loss, grad] = await run(x, [rows, cols], (t) => bceWithLogits(t, y, { posWeight: pw }), 1);
    expect(Number.isFinite(loss)).toBe(true);
    expectClose('bce |x|≤100 forward', [loss], [refBce(x, cols, y, pw)], { atol: 1e-4, rtol: 1e-6 });
    // Analytic d/dx = [(1−y)σ(x) − pw·y·σ(−x)]/N, evaluated in float64.
    const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
    const expected = x.map((v, i) => ((1 - y[i]!) * sigmoid(v) - pw[i % cols]! * y[i]! * sigmoid(-v)) / x.length);
    expectClose('bce |x|≤100 grad', grad, expected, { atol: 1e-9, rtol: 1e-5 });
  });

  it('an all-masked batch gives loss 0 and zero gradient', async () => {
    const x = asF32(randn(6, 13));
    const [loss, grad] = await run(x, [2, 3], (t) => bceWithLogits(t, new Float32Array(6).fill(1), { mask: new Float32Array(6) }), 1);
    expect(loss).toBe(0);
    expect(Array.from(grad)).toEqual(new Array(6).fill(0));
  });

  it('rejects mismatched targets, pos_weight and mask', () => {
    const logits = tensor(gpu, new Float32Array(6), [2, 3]);
    expect(() => bceWithLogits(logits, new Float32Array(5))).toThrow(/5 targets for 6 logits/);
    expect(() => bceWithLogits(logits, new Float32Array(6), { posWeight: new Float32Array(2) })).toThrow(/pos_weight/);
    expect(() => bceWithLogits(logits, new Float32Array(6), { mask: new Float32Array(7) })).toThrow(/mask/);
    logits.dispose();
  });
});
