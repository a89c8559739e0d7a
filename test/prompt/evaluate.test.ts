// The study's analysis against scipy (fixtures from scripts/metrics-reference.py): Pearson r and p
// of each 0/1 predicted label with the truth, and the two cross-task tables.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { crossTaskColumns, crossTaskTable, evaluateTask, formatEvaluation, predictedLabels } from '../../src/prompt/evaluate.ts';
import type { Task } from '../../src/prompt/classifier.ts';

interface Expected {
  r: number | null;
  p: number | null;
  probabilityR: number | null;
}
interface EvaluationCase {
  name: string;
  kind: Task['kind'];
  labelNames: string[];
  logits: number[];
  labels: number[];
  targets: number[];
  expected: Expected[];
}
interface TableRow {
  a: string;
  b: string;
  r: number | null;
  p: number | null;
}
interface CrossTaskCase {
  name: string;
  task: { name: string; kind: Task['kind']; labelNames: string[] };
  logits: number[];
  other: { kind: Task['kind']; labelNames: string[]; labels: number[]; targets: number[] };
  predicted?: string[];
  against?: string[];
  expected: TableRow[];
}

const fixture: { cases: EvaluationCase[]; crossTask: CrossTaskCase[] } = JSON.parse(readFileSync(new URL('../metrics/fixtures/evaluation.json', import.meta.url), 'utf8'));

/** |got − scipy| ≤ tol (NaN only where scipy gives nan); returns the difference. */
function close(got: number, want: number | null, tol: number, what: string): number {
  if (want === null) {
    expect(got, what).toBeNaN();
    return 0;
  }
  const d = Math.abs(got - want);
  if (!(d <= tol)) throw new Error(`${what}: ${got}, scipy ${want}`);
  return d;
}

const taskOf = (c: { name: string; kind: Task['kind']; labelNames: string[] }): Task => ({ name: c.name, kind: c.kind, labelNames: c.labelNames, start: 0 });

describe('evaluateTask: Pearson on 0/1 predicted labels, as scipy.stats.pearsonr', () => {
  for (const c of fixture.cases) {
    it(`matches scipy: ${c.name}`, () => {
      const e = evaluateTask(taskOf(c), Float32Array.from(c.logits), { labels: Uint32Array.from(c.labels), targets: Float32Array.from(c.targets) });
      expect(e.pearson.map((x) => x.label)).toEqual(c.labelNames);
      e.pearson.forEach((got, k) => {
        const want = c.expected[k]!;
        close(got.r, want.r, 1e-12, `${c.name} ${got.label} r`);
        close(got.p, want.p, 1e-9 * (want.p ?? 0) + 1e-15, `${c.name} ${got.label} p`);
        // Probabilities are held in float32, scipy's in float64.
        close(got.probabilityR, want.probabilityR, 1e-6, `${c.name} ${got.label} r(prob)`);
      });
    });
  }

  it('the fixtures include an undefined r (a constant column), reported as nan rather than thrown', () => {
    const c = fixture.cases.find((k) => k.name === 'multi-11')!;
    expect(c.expected[9]!.r).toBeNull();
    const e = evaluateTask(taskOf(c), Float32Array.from(c.logits), { labels: new Uint32Array(0), targets: Float32Array.from(c.targets) });
    expect(formatEvaluation(e)).toMatch(/surprise {2}r= {4}nan {2}p= {6}nan/);
    expect(JSON.parse(JSON.stringify(e.pearson[9]))).toMatchObject({ label: 'surprise', r: null, p: null });
  });

  it('the predicted-label r differs from the probability r (the study reports the former)', () => {
    const c = fixture.cases.find((k) => k.name === 'multi-11')!;
    const e = evaluateTask(taskOf(c), Float32Array.from(c.logits), { labels: new Uint32Array(0), targets: Float32Array.from(c.targets) });
    expect(Math.abs(e.pearson[0]!.r - e.pearson[0]!.probabilityR)).toBeGreaterThan(1e-3);
  });

  it('predicted labels: logit > 0 per label, the argmax one-hot (first of equal maxima)', () => {
    expect(Array.from(predictedLabels(Float32Array.from([0, 1e-30, -2, 3]), 2, 'multi'))).toEqual([0, 1, 0, 1]);
    expect(Array.from(predictedLabels(Float32Array.from([0.5, 0.5, -1, 2]), 2, 'single'))).toEqual([1, 0, 0, 1]);
  });
});

describe('crossTaskTable: the study\'s "Emotion of IMDB" and "Sentiment of SemEval"', () => {
  for (const c of fixture.crossTask) {
    it(`matches scipy, sorted by r descending: ${c.name}`, () => {
      const other = { ...c.other, labels: Uint32Array.from(c.other.labels), targets: Float32Array.from(c.other.targets) };
      const choice = { ...(c.predicted ? { predicted: c.predicted } : {}), ...(c.against ? { against: c.against } : {}) };
      const got = crossTaskTable(taskOf(c.task), Float32Array.from(c.logits), other, choice);
      expect(got.map((e) => `${e.a}/${e.b}`)).toEqual(c.expected.map((e) => `${e.a}/${e.b}`));
      got.forEach((e, i) => {
        close(e.r, c.expected[i]!.r, 1e-12, `${e.a}/${e.b} r`);
        close(e.p, c.expected[i]!.p, 1e-9 * (c.expected[i]!.p ?? 0) + 1e-15, `${e.a}/${e.b} p`);
      });
    });
  }

  it('names a label that is not there', () => {
    const t: Task = { name: 'emotion', kind: 'multi', labelNames: ['joy', 'fear'], start: 0 };
    expect(() => crossTaskColumns(t, ['bad', 'good'], { against: ['great'] })).toThrow(/the data has no label 'great' \(it has bad, good\)/);
    expect(() => crossTaskColumns(t, ['bad', 'good'], { predicted: ['anger'] })).toThrow(/task emotion has no label 'anger'/);
    expect(crossTaskColumns(t, ['bad', 'good'], { against: ['good'] })).toEqual({ predicted: [0, 1], against: [1] });
  });
});
