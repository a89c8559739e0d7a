// The study report and loss figure against the shipped published numbers, without a GPU: study
// results are built from the published numbers themselves (a run that agrees everywhere) or from
// constants (a run that agrees nowhere), so where every published number lands can be checked.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import type { Report, ReportRow } from '../../src/metrics/classification.ts';
import type { CorrelationEntry } from '../../src/metrics/correlation.ts';
import type { TaskEvaluation } from '../../src/prompt/evaluate.ts';
import { EMOTIONS, JOY_CLASSES, STUDY_EPOCHS, type StudyResult } from '../../src/prompt/study.ts';
import { parsePublishedStudy, PUBLISHED_EXPERIMENTS, type PublishedReport, type PublishedStudy } from '../../src/prompt/study-published.ts';
import { studyMarkdown } from '../../src/prompt/study-report.ts';
import { studyLossFigure } from '../../src/prompt/study-figure.ts';
import { numbersIn, publishedLeaves } from './published-numbers.ts';

const json = JSON.parse(readFileSync(new URL('../../data/study/published.json', import.meta.url), 'utf8'));
const published = parsePublishedStudy(json, 'data/study/published.json');
const context = { model: 'm', adapter: 'a', imdb: 'i', semeval: 's', date: 'd', figure: 'study.svg' };

/** How a made-up run derives its numbers from the published ones. */
interface Derive {
  score: (x: number) => number;
  count: (n: number) => number;
  loss: (x: number) => number;
  r: (x: number) => number;
}

const SAME: Derive = { score: (x) => x, count: (n) => n, loss: (x) => x, r: (x) => x };
/** Values no published number equals, so any published number in the report stands in a published column. */
const NOWHERE: Derive = { score: () => 0.001, count: () => 1, loss: () => 9.9999, r: () => 0.0001 };

function report(p: PublishedReport, names: string[], averages: string[], d: Derive): Report {
  const row = (name: string, r: PublishedReport['labels'][string]): ReportRow => ({ name, precision: d.score(r.precision), recall: d.score(r.recall), f1: d.score(r.f1), support: d.count(r.support) });
  return {
    classes: names.map((n) => row(n, p.labels[n]!)),
    ...(p.accuracy ? { accuracy: d.score(p.accuracy.value) } : {}),
    averages: averages.map((n) => row(n, p.averages[n]!)),
  };
}

function evaluation(task: string, kind: 'single' | 'multi', name: string, labels: string[], d: Derive): TaskEvaluation {
  const e = published.experiments[name]!;
  const averages = kind === 'single' ? ['macro avg', 'weighted avg'] : ['micro avg', 'macro avg', 'weighted avg', 'samples avg'];
  const pearson = labels.map((label) => {
    const c = e.pearson[label];
    return { label, r: d.r(c?.r ?? 0.25), p: c?.p ?? 0.5, probabilityR: 0.3 };
  });
  return { task, kind, report: report(e.report, labels, averages, d), pearson };
}

function crossEntries(table: Record<string, number>, d: Derive, side: 'a' | 'b'): CorrelationEntry[] {
  return Object.entries(table)
    .map(([emotion, r]) => ({ a: side === 'a' ? emotion : 'good', b: side === 'b' ? emotion : 'good', r: d.r(r), p: 0.01 }))
    .sort((u, v) => v.r - u.r);
}

function madeUpRun(p: PublishedStudy, d: Derive): StudyResult {
  const stages = STUDY_EPOCHS.map((epochs) => {
    const sentiment = evaluation('sentiment', 'single', `sentiment-${epochs}`, ['bad', 'good'], d);
    const emotion = evaluation('emotion', 'multi', `emotion-${epochs}`, EMOTIONS, d);
    return {
      epochs,
      sentiment,
      emotion,
      composite: { sentiment, emotion, identicalLogits: true, identicalReports: true },
      emotionOfImdb: crossEntries(p.crossTask.emotionOfImdb, d, 'a'),
      sentimentOfSemeval: crossEntries(p.crossTask.sentimentOfSemeval, d, 'b'),
      joy: evaluation('joy', 'single', `joy-${epochs}`, JOY_CLASSES, d),
    };
  });
  const s = p.data.semeval;
  const dev = p.experiments['emotion-3']!.report.labels;
  const each = (r: Record<string, number>, f: (x: number) => number) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, f(v)]));
  return {
    settings: { limit: null, seed: 0, batchSize: 32, promptTokens: 5, lr: 1e-3, maxLength: 1019, fingerprint: '0123456789abcdef0123', rows: { imdbTrain: 1, imdbTest: 1, semevalTrain: 1, semevalDev: 1 } },
    facts: {
      imdb: {
        trainRows: d.count(p.data.imdb.trainRows),
        trainLabelCounts: each(p.data.imdb.trainLabelCounts, d.count),
        testRows: d.count(p.data.imdb.testRows),
        testLabelCounts: each({ bad: p.experiments['sentiment-3']!.report.labels.bad!.support, good: p.experiments['sentiment-3']!.report.labels.good!.support }, d.count),
      },
      semeval: {
        trainRows: d.count(s.trainRows),
        devRows: d.count(s.devRows),
        trainPositiveFraction: each(s.trainPositiveFraction, d.score),
        posWeight: each(s.posWeight, d.score),
        joyBalancedClassWeights: each(s.joyBalancedClassWeights, d.score),
        devSupport: Object.fromEntries(EMOTIONS.map((e) => [e, d.count(dev[e]!.support)])),
      },
    },
    runs: PUBLISHED_EXPERIMENTS.map((name) => ({ name, epochs: p.experiments[name]!.epochs, history: p.experiments[name]!.meanLoss.map((loss, epoch) => ({ epoch, loss: d.loss(loss) })) })),
    stages,
  };
}

/** Every Markdown table of the report as header cells and rows of cells. */
function tables(markdown: string): { head: string[]; rows: string[][] }[] {
  const out: { head: string[]; rows: string[][] }[] = [];
  const cells = (line: string) => line.slice(2, -2).split(' | ');
  let lines: string[] = [];
  for (const line of [...markdown.split('\n'), '']) {
    if (line.startsWith('| ')) lines.push(line);
    else if (lines.length) {
      out.push({ head: cells(lines[0]!), rows: lines.slice(2).map(cells) });
      lines = [];
    }
  }
  return out;
}

describe('parsePublishedStudy', () => {
  it('reads the shipped file: six experiments, a loss per epoch, the references', () => {
    expect(Object.keys(published.experiments)).toEqual(PUBLISHED_EXPERIMENTS);
    for (const name of PUBLISHED_EXPERIMENTS) expect(published.experiments[name]!.meanLoss).toHaveLength(published.experiments[name]!.epochs);
    expect(published.references.lstmPearson.comparedWith).toBe('Bidirectional LSTM with pretraining');
    expect(published.references.leaderboard.rows.SpanEmo).toEqual([0.601, 0.713, 0.578]);
  });

  it('names the path of a missing or mistyped number', () => {
    const broken = structuredClone(json);
    delete broken.experiments['joy-10'].mean_loss;
    expect(() => parsePublishedStudy(broken, 'x.json')).toThrow(/x\.json: experiments\.joy-10\.mean_loss must be an array, got nothing/);
    const short = structuredClone(json);
    short.experiments['emotion-3'].mean_loss.pop();
    expect(() => parsePublishedStudy(short, 'x.json')).toThrow(/experiments\.emotion-3\.mean_loss must be 3 values \(one per epoch\)/);
    const text = structuredClone(json);
    text.cross_task.emotion_of_imdb.joy = '0.45';
    expect(() => parsePublishedStudy(text, 'x.json')).toThrow(/cross_task\.emotion_of_imdb\.joy must be a finite number, got "0\.45"/);
  });
});

describe('studyMarkdown beside the published study', () => {
  it('a run equal to the published one shows Δ 0 in every Δ column, and Kendall τ-b 1 for both cross-task tables', () => {
    const md = studyMarkdown(madeUpRun(published, SAME), context, published);
    let deltas = 0;
    for (const t of tables(md)) {
      const columns = t.head.flatMap((h, k) => (h.startsWith('Δ') ? [k] : []));
      const deltaRow = t.head[0]!.match(/^(sentiment|emotion|joy)-\d+$/) ? t.rows.find((r) => r[0] === 'Δ') : undefined;
      for (const row of t.rows) {
        for (const k of columns) {
          expect(row[k], `${t.head.join(' | ')}: ${row.join(' | ')}`).toMatch(/^(0(\.0+)?|n\/a|)$/);
          if (/^0/.test(row[k]!)) deltas++;
        }
      }
      for (const cell of deltaRow?.slice(1) ?? []) {
        expect(cell).toBe('0.0000');
        deltas++;
      }
    }
    // Hundreds: 36 losses, 43 data facts, and per epoch count every report cell, Pearson r and cross-task r.
    expect(deltas).toBeGreaterThan(450);
    expect(md.match(/Kendall's τ-b over the 11 labels with a defined r: \*\*1\.0000\*\*/g)).toHaveLength(2 * STUDY_EPOCHS.length);
  });

  it('a run that agrees nowhere still shows every number of published.json, and signs Δ as ours − published', () => {
    const md = studyMarkdown(madeUpRun(published, NOWHERE), context, published);
    const shown = numbersIn(md);
    const missing = publishedLeaves(json).filter(([, v]) => !shown.has(v));
    expect(missing).toEqual([]);
    const emotion3 = md.slice(md.indexOf('## After 3 epochs'), md.indexOf('## After 10 epochs'));
    expect(emotion3).toMatch(/\| joy \| 0\.00 \| 0\.82 \| -0\.82 \| 0\.00 \| 0\.83 \| -0\.83 \| 0\.00 \| 0\.83 \| -0\.83 \| 1 \| 400 \| -399 \|/);
    expect(emotion3).toMatch(/\| joy \| 0\.0001 \| 3\.852e-123 \| 0\.3000 \| 0\.683822 \| 3\.851568e-123 \| -0\.6837 \| 0\.62 \|/);
    expect(md).toMatch(/\| sentiment-3 \| epoch 1 \| epoch 2 \| epoch 3 \|\n\| --- \| --- \| --- \| --- \|\n\| ours \| 9\.9999 \| 9\.9999 \| 9\.9999 \|\n\| published \| 0\.3775 \| 0\.2392 \| 0\.2149 \|\n\| Δ \| \+9\.6224 \| \+9\.7607 \| \+9\.7850 \|/);
    expect(md).toContain('Kendall\'s τ-b over the 11 labels with a defined r: **undefined**');
    expect(md).toContain('![Mean training loss per epoch of each experiment');
    expect(md).toMatch(/the study's 10-epoch runs were fresh runs/);
  });

  it('a run with an undefined r leaves that label out of Kendall τ-b and says so', () => {
    const run = madeUpRun(published, SAME);
    const [first] = run.stages;
    first!.emotionOfImdb = [...first!.emotionOfImdb.filter((e) => e.a !== 'trust'), { a: 'trust', b: 'good', r: NaN, p: NaN }];
    const md = studyMarkdown(run, context, published);
    expect(md).toContain("Kendall's τ-b over the 10 labels with a defined r: **1.0000** (1: the same order, 0: unrelated, −1: reversed); 1 label with r undefined (a constant column) left out.");
    expect(md).toMatch(/\| trust \| nan \| nan \| n\/a \| 0\.480094 \| n\/a \| 3 \|/);
  });

  it('a published cross-task label missing from ours still shows, beside n/a, and is left out of τ-b', () => {
    const run = madeUpRun(published, SAME);
    run.stages[0]!.sentimentOfSemeval = run.stages[0]!.sentimentOfSemeval.filter((e) => e.b !== 'joy');
    const md = studyMarkdown(run, context, published);
    expect(md).toContain('| joy | n/a | n/a | n/a | 0.490373 | n/a | 1 |');
    expect(md).toContain("Kendall's τ-b over the 10 labels with a defined r: **1.0000** (1: the same order, 0: unrelated, −1: reversed).");
  });
  it("a published row with no counterpart in our report (other class names) still shows, beside n/a", () => {
    const run = madeUpRun(published, SAME);
    const sentiment = run.stages[0]!.sentiment;
    sentiment.report.classes = sentiment.report.classes.map((r, k) => ({ ...r, name: ['negative', 'positive'][k]! }));
    const md = studyMarkdown(run, context, published);
    const section = md.slice(md.indexOf('### IMDB sentiment'), md.indexOf('### SemEval-2018'));
    expect(section).toMatch(/\| negative \| 0\.93 \| n\/a \| n\/a \|/);
    expect(section).toContain('| bad | n/a | 0.93 | n/a | n/a | 0.91 | n/a | n/a | 0.92 | n/a | n/a | 12500 | n/a |');
    expect(section).toContain('| good | n/a | 0.92 | n/a | n/a | 0.93 | n/a | n/a | 0.92 | n/a | n/a | 12500 | n/a |');
  });
});

describe('studyLossFigure', () => {
  it('plots every published and every own mean loss, each point titled with its run, epoch and value', () => {
    const run = madeUpRun(published, { ...SAME, loss: (x) => x + 0.01 });
    const svg = studyLossFigure(run.runs, published, 'a note & more');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    expect(svg).toContain('a note &amp; more');
    for (const name of PUBLISHED_EXPERIMENTS) {
      published.experiments[name]!.meanLoss.forEach((loss, i) => {
        expect(svg).toContain(`<title>published, ${name}, epoch ${i + 1}: ${loss.toFixed(4)}</title>`);
        expect(svg).toContain(`<title>ours, ${name}, epoch ${i + 1}: ${(loss + 0.01).toFixed(4)}</title>`);
      });
    }
  });
});
