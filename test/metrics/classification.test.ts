// Reports against scikit-learn's classification_report (fixtures from scripts/metrics-reference.py).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classificationReport, formatReport, multilabelReport, pyFixed, reportToDict, type ReportDict } from '../../src/metrics/classification.ts';

interface Case {
  name: string;
  labelNames: string[];
  yTrue: number[];
  yPred: number[];
  nLabels?: number;
  expected: ReportDict;
  text?: Record<string, string>;
}

const load = (file: string): Case[] => JSON.parse(readFileSync(new URL(`./fixtures/${file}`, import.meta.url), 'utf8')).cases;

function expectRel(actual: number, expected: number, what: string): void {
  const err = Math.abs(actual - expected);
  if (!(err <= 1e-12 * Math.abs(expected))) throw new Error(`${what}: got ${actual}, sklearn ${expected}`);
}

function expectDict(actual: ReportDict, expected: ReportDict, name: string): void {
  expect(Object.keys(actual)).toEqual(Object.keys(expected));
  for (const [key, want] of Object.entries(expected)) {
    const got = actual[key];
    if (typeof want === 'number') {
      expectRel(got as number, want, `${name} ${key}`);
      continue;
    }
    for (const field of ['precision', 'recall', 'f1-score', 'support'] as const) {
      expectRel((got as typeof want)[field], want[field], `${name} ${key} ${field}`);
    }
  }
}

function checkText(report: Parameters<typeof formatReport>[0], c: Case): number {
  let checked = 0;
  for (const [digits, text] of Object.entries(c.text ?? {})) {
    expect(formatReport(report, Number(digits)), `${c.name} digits=${digits}`).toBe(text);
    checked++;
  }
  return checked;
}

describe('classificationReport (single-label)', () => {
  const cases = load('classification.json');
  for (const c of cases) {
    it(`matches sklearn: ${c.name}`, () => {
      const report = classificationReport(Uint32Array.from(c.yTrue), Uint32Array.from(c.yPred), c.labelNames);
      expectDict(reportToDict(report), c.expected, c.name);
      checkText(report, c);
    });
  }

  it('compares printed text on several cases, including exact rounding ties', () => {
    const withText = cases.filter((c) => c.text);
    expect(withText.map((c) => c.name)).toContain('rounding-ties');
    expect(withText.length).toBeGreaterThanOrEqual(3);
    // The tie case only tests something if sklearn's text really has round-half-even results.
    expect(cases.find((c) => c.name === 'rounding-ties')!.text!['2']).toContain('0.12');
  });

  it('rejects class indices out of range and length mismatches', () => {
    expect(() => classificationReport([0, 2], [0, 1], ['a', 'b'])).toThrow(/yTrue\[1\] = 2/);
    expect(() => classificationReport([0, 1], [0], ['a', 'b'])).toThrow(RangeError);
    expect(() => classificationReport([], [], ['a'])).toThrow(RangeError);
  });
});

describe('multilabelReport', () => {
  for (const c of load('multilabel.json')) {
    it(`matches sklearn: ${c.name}`, () => {
      const report = multilabelReport(Float32Array.from(c.yTrue), Float32Array.from(c.yPred), c.nLabels!, c.labelNames);
      expectDict(reportToDict(report), c.expected, c.name);
      expect(checkText(report, c)).toBeGreaterThan(0);
    });
  }

  it('rejects non-0/1 values and ragged shapes', () => {
    expect(() => multilabelReport(Float32Array.of(0, 1, 0.5, 0), Float32Array.of(0, 1, 1, 0), 2, ['a', 'b'])).toThrow(/yTrue\[2\] = 0.5/);
    expect(() => multilabelReport(Float32Array.of(0, 1, 1), Float32Array.of(0, 1, 1), 2, ['a', 'b'])).toThrow(RangeError);
  });
});

describe('pyFixed', () => {
  it("follows Python's format(x, '.Nf') including half-to-even on exact ties", () => {
    const cases: Array<[number, number, string]> = [
      [0.125, 2, '0.12'],
      [0.375, 2, '0.38'],
      [0.625, 2, '0.62'],
      [0.875, 2, '0.88'],
      [0.5, 0, '0'],
      [1.5, 0, '2'],
      [2.5, 0, '2'],
      [9.5, 0, '10'],
      [0.0625, 3, '0.062'],
      [0.1 + 0.2, 2, '0.30'],
      [0.115, 2, '0.12'], // not a tie in binary: 0.115 is stored as 0.11500000000000000499…
      [0.145, 2, '0.14'], // stored as 0.14499999999999999…
      [1, 4, '1.0000'],
      [-0.125, 2, '-0.12'],
      [NaN, 2, 'nan'],
    ];
    for (const [x, d, want] of cases) expect(pyFixed(x, d), `${x} .${d}f`).toBe(want);
  });
});
