// Runs op-suite cases on a device and reports, per case, how far the GPU's forward and
// gradients are from float64: the forward from the case's reference, each gradient from
// central finite differences of Σ w·reference for seeded weights w, all in float64 on the host,
// or, for cases from PyTorch fixtures (torch.ts), PyTorch's float64 gradients for its recorded w.
// Host-neutral (no Node or vitest imports): Node, Deno and a web page each run it and assert.
import { FORWARD_TOLERANCE, GRADIENT_TOLERANCE, suiteCases, type Engine, type Gpu, type OpCase, type Tensor, type Tolerance } from './cases.ts';
import { normals } from './reference.ts';

export interface Check {
  /** 'forward', 'shape', or 'grad <input index>'. */
  what: string;
  n: number;
  maxAbsError: number;
  /** Largest |error| / |expected| over elements with expected ≠ 0. */
  maxRelError: number;
  ok: boolean;
  /** The first elements outside tolerance, for the failure message. */
  mismatches: string[];
}

export interface CaseResult {
  name: string;
  op: string;
  ok: boolean;
  checks: Check[];
  /** A thrown error (the case then fails). */
  error?: string;
  ms: number;
}

/** Seed of the weights w in the scalar Σ w·output whose gradient is checked. */
const WEIGHT_SEED = 999;

/** |actual − expected| ≤ atol + rtol·|expected| everywhere (NaN fails). */
export function compare(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): Check {
  let maxAbsError = 0;
  let maxRelError = 0;
  let ok = actual.length === expected.length;
  const mismatches: string[] = ok ? [] : [`${actual.length} values, expected ${expected.length}`];
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    const [a, e] = [actual[i]!, expected[i]!];
    const err = Math.abs(a - e);
    if (!(err <= tol.atol + tol.rtol * Math.abs(e))) {
      ok = false;
      if (mismatches.length < 6) mismatches.push(`[${i}] got ${a}, expected ${e}`);
    }
    maxAbsError = Number.isNaN(err) ? NaN : Math.max(maxAbsError, err);
    if (e !== 0) maxRelError = Number.isNaN(err) ? NaN : Math.max(maxRelError, err / Math.abs(e));
  }
  return { what, n: expected.length, maxAbsError, maxRelError, ok, mismatches };
}

/** Central finite differences of a float64 scalar function at x, element by element. */
export function centralDifferences(f: (x: Float64Array) => number, x: Float64Array): Float64Array {
  const probe = Float64Array.from(x);
  return Float64Array.from(x, (v, i) => {
    const h = 1e-6 * Math.max(1, Math.abs(v));
    probe[i] = v + h;
    const up = f(probe);
    probe[i] = v - h;
    const down = f(probe);
    probe[i] = v;
    return (up - down) / (2 * h);
  });
}

/** The expected gradient of Σ w·reference with respect to input k, by finite differences in float64. */
function expectedGradient(c: OpCase, xs: Float64Array[], w: Float64Array, k: number): Float64Array {
  const loss = (probe: Float64Array) => {
    const out = c.reference(xs.map((x, j) => (j === k ? probe : x)));
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * w[i]!;
    return s;
  };
  return centralDifferences(loss, xs[k]!);
}

export async function runCase(e: Engine, gpu: Gpu, c: OpCase): Promise<CaseResult> {
  const started = performance.now();
  const checks: Check[] = [];
  const leaves: Tensor[] = [];
  const outputs: Tensor[] = [];
  try {
    for (const x of c.inputs) leaves.push(e.tensor(gpu, x.data, x.shape, { requiresGrad: x.grad, dtype: x.dtype ?? 'f32' }));
    const withGrad = c.inputs.some((x) => x.grad);
    const size = c.shape.reduce((a, b) => a * b, 1);
    const w = c.expected?.outputGradient ?? normals(size, WEIGHT_SEED);
    const out = e.tidy(() => {
      const y = c.run(e, leaves, gpu);
      if (withGrad) y.backward(e.tensor(gpu, w, y.shape));
      return y;
    });
    outputs.push(out);
    const shapeOk = out.shape.length === c.shape.length && out.shape.every((n, i) => n === c.shape[i]);
    checks.push({ what: 'shape', n: c.shape.length, maxAbsError: 0, maxRelError: 0, ok: shapeOk, mismatches: shapeOk ? [] : [`got [${out.shape.join(', ')}], expected [${c.shape.join(', ')}]`] });
    const xs = c.inputs.map((x) => x.data);
    checks.push(compare('forward', await out.read(), c.reference(xs), c.tol ?? FORWARD_TOLERANCE));
    for (const [k, x] of c.inputs.entries()) {
      if (!x.grad) continue;
      const grad = leaves[k]!.grad;
      const what = `grad ${k}`;
      if (!grad) {
        checks.push({ what, n: x.data.length, maxAbsError: NaN, maxRelError: NaN, ok: false, mismatches: ['no gradient reached the input'] });
        continue;
      }
      const expected = c.expected ? c.expected.gradients[k] : expectedGradient(c, xs, w, k);
      if (!expected) throw new Error(`${c.name}: input ${k} is marked grad but its fixture has no gradient`);
      checks.push(compare(what, await grad.readF32(), expected, c.gradTol ?? GRADIENT_TOLERANCE));
    }
    return { name: c.name, op: c.op, ok: checks.every((ch) => ch.ok), checks, ms: performance.now() - started };
  } catch (error) {
    return { name: c.name, op: c.op, ok: false, checks, error: String((error as Error).stack ?? error), ms: performance.now() - started };
  } finally {
    for (const t of [...leaves.flatMap((l) => (l.grad ? [l.grad] : [])), ...leaves, ...outputs]) if (!t.disposed) t.dispose();
  }
}

/**
 * Runs `cases` (the whole suite by default) one after another with new buffers poisoned
 * with NaN, so an op that leaves elements unwritten fails.
 */
export async function runSuite(e: Engine, gpu: Gpu, cases: readonly OpCase[] = suiteCases()): Promise<CaseResult[]> {
  const poisoned = gpu.poison;
  gpu.poison = true;
  try {
    const results: CaseResult[] = [];
    for (const c of cases) results.push(await runCase(e, gpu, c));
    return results;
  } finally {
    gpu.poison = poisoned;
  }
}

/** One line per check of a failed case, for an assertion's message. */
export function describeFailure(r: CaseResult): string {
  const lines = [`${r.name}:${r.error ? ` threw ${r.error}` : ''}`];
  for (const ch of r.checks.filter((x) => !x.ok)) lines.push(`  ${ch.what}: max abs error ${ch.maxAbsError}; ${ch.mismatches.join('; ')}`);
  return lines.join('\n');
}
