// Pearson r and p against scipy.stats.pearsonr (fixtures from scripts/metrics-reference.py); Kendall's τ-b
// against scipy.stats.kendalltau (fixture from scripts/kendall-reference.py).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { correlationTable, kendallTau, pearson } from '../../src/metrics/correlation.ts';
import { lnGamma, regIncBeta } from '../../src/metrics/special.ts';

interface PearsonCase {
  name: string;
  x: number[];
  y: number[];
  r: number | null;
  p: number | null;
}
interface TableCase {
  n: number;
  aNames: string[];
  bNames: string[];
  predictions: number[];
  targets: number[];
  expected: Array<{ a: string; b: string; r: number | null; p: number | null }>;
}

const fixture: { cases: PearsonCase[]; table: TableCase } = JSON.parse(readFileSync(new URL('./fixtures/pearson.json', import.meta.url), 'utf8'));

function expectR(actual: number, expected: number | null, what: string): void {
  if (expected === null) return void expect(actual, what).toBeNaN();
  if (!(Math.abs(actual - expected) <= 1e-12 * Math.abs(expected))) throw new Error(`${what}: r = ${actual}, scipy ${expected}`);
}

function expectP(actual: number, expected: number | null, what: string): void {
  if (expected === null) return void expect(actual, what).toBeNaN();
  const err = Math.abs(actual - expected);
  if (!(err <= 1e-9 * expected || err <= 1e-15)) throw new Error(`${what}: p = ${actual}, scipy ${expected}`);
}

describe('pearson', () => {
  for (const c of fixture.cases) {
    it(`matches scipy: ${c.name}`, () => {
      const { r, p } = pearson(c.x, c.y);
      expectR(r, c.r, c.name);
      expectP(p, c.p, c.name);
    });
  }

  it('covers n = 3, a tiny p-value, constant input and a perfect correlation', () => {
    const names = fixture.cases.map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['n3-random', 'n10-perfect', 'constant']));
    expect(Math.min(...fixture.cases.map((c) => (c.p === null || c.p === 0 ? 1 : c.p)))).toBeLessThan(1e-100);
  });

  it('takes Float32Array input', () => {
    const c = fixture.cases.find((k) => k.name === 'n300-float32')!;
    const { r, p } = pearson(Float32Array.from(c.x), Float32Array.from(c.y));
    expectR(r, c.r, c.name);
    expectP(p, c.p, c.name);
  });

  it('rejects mismatched or too short input', () => {
    expect(() => pearson([1, 2, 3], [1, 2])).toThrow(RangeError);
    expect(() => pearson([1], [2])).toThrow(RangeError);
  });
});

describe('special functions', () => {
  it('lnGamma matches known values', () => {
    // Zeros of lnΓ: the shift to z ≥ 10 leaves a cancellation of ~1e-15 absolute there.
    expect(Math.abs(lnGamma(1))).toBeLessThan(1e-14);
    expect(Math.abs(lnGamma(2))).toBeLessThan(1e-14);
    expect(Math.abs(lnGamma(0.5) / (0.5 * Math.log(Math.PI)) - 1)).toBeLessThan(1e-14);
    // ln(170!) from the exact integer.
    let f = 0;
    for (let k = 2; k <= 170; k++) f += Math.log(k);
    expect(Math.abs(lnGamma(171) - f) / f).toBeLessThan(1e-14);
  });

  it('regIncBeta matches closed forms', () => {
    // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(½, ½) = (2/π)·asin(√x).
    for (const x of [1e-12, 0.1, 0.5, 0.93]) {
      expect(Math.abs(regIncBeta(1, 1, x) - x) / x).toBeLessThan(1e-14);
      expect(Math.abs(regIncBeta(3.5, 1, x) - x ** 3.5) / x ** 3.5).toBeLessThan(1e-13);
      const arcsine = (2 / Math.PI) * Math.asin(Math.sqrt(x));
      expect(Math.abs(regIncBeta(0.5, 0.5, x) - arcsine) / arcsine).toBeLessThan(1e-13);
    }
    // Symmetry I_x(a, b) = 1 − I_{1−x}(b, a), at large parameters.
    expect(Math.abs(regIncBeta(400, 600, 0.41) + regIncBeta(600, 400, 0.59) - 1)).toBeLessThan(1e-13);
  });
});

describe('correlationTable', () => {
  it('matches scipy for every pair, sorted by r descending with constant columns last', () => {
    const t = fixture.table;
    const got = correlationTable(Float32Array.from(t.predictions), t.aNames, Float32Array.from(t.targets), t.bNames);
    expect(got.map((e) => `${e.a}/${e.b}`)).toEqual(t.expected.map((e) => `${e.a}/${e.b}`));
    got.forEach((e, i) => {
      expectR(e.r, t.expected[i].r, `${e.a}/${e.b}`);
      expectP(e.p, t.expected[i].p, `${e.a}/${e.b}`);
    });
    expect(t.expected.at(-1)!.r).toBeNull();
  });

  it('rejects predictions and targets with different row counts', () => {
    expect(() => correlationTable(new Float32Array(6), ['a', 'b'], new Float32Array(4), ['t'])).toThrow(RangeError);
  });
});

describe("kendallTau (τ-b)", () => {
  const kendall: { cases: { name: string; x: number[]; y: number[]; tau: number | null }[] } = JSON.parse(readFileSync(new URL('./fixtures/kendall.json', import.meta.url), 'utf8'));
  for (const c of kendall.cases) {
    it(`matches scipy.stats.kendalltau: ${c.name}`, () => {
      const tau = kendallTau(c.x, c.y);
      if (c.tau === null) return void expect(tau).toBeNaN();
      expect(Math.abs(tau - c.tau), `τ = ${tau}, scipy ${c.tau}`).toBeLessThanOrEqual(4e-16);
    });
  }

  it('counts by hand: one discordant pair of three gives 1/3; a tie in y leaves its pair out of both counts', () => {
    expect(kendallTau([1, 2, 3], [1, 3, 2])).toBeCloseTo(1 / 3, 15);
    // pairs (1,2): +, (1,3): +, (2,3): tied in y. τ-b = 2 / √3 / √2.
    expect(kendallTau([1, 2, 3], [1, 2, 2])).toBeCloseTo(2 / Math.sqrt(3) / Math.sqrt(2), 15);
  });

  it('refuses NaN, unequal lengths and fewer than two values by name', () => {
    expect(() => kendallTau([1, NaN, 3], [1, 2, 3])).toThrow(/x\[1\] is NaN/);
    expect(() => kendallTau([1, 2], [1, 2, 3])).toThrow(/x has 2 values but y has 3/);
    expect(() => kendallTau([1], [1])).toThrow(/at least 2 values/);
  });
});
