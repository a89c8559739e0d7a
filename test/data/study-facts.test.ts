// The published study's data facts, reproduced from the data files by our pipeline (file readers,
// datasets, pos_weight, class weights): facts of the data, so they must match exactly at the
// precision the study printed them.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset } from '../../src/node/dataset-file.ts';
import { balancedClassWeights, posWeights } from '../../src/data/dataset.ts';
import { pyFixed } from '../../src/metrics/classification.ts';
import { EMOTIONS, JOY_CLASSES, STUDY_DATA, joyOrNot, studyDataFacts, type StudyData, type StudyDataFacts } from '../../src/prompt/study.ts';
import { parsePublishedStudy, type PublishedStudy } from '../../src/prompt/study-published.ts';

const DATA = new URL('../../../shared/data/', import.meta.url).pathname;
const PUBLISHED = new URL('../../data/study/published.json', import.meta.url);

let data: StudyData;
let facts: StudyDataFacts;
let published: PublishedStudy;

beforeAll(async () => {
  const imdb = (file: string) => loadDataset(join(DATA, 'imdb', file), STUDY_DATA.imdb.spec);
  const semeval = (file: string) => loadDataset(join(DATA, 'semeval2018-ec', file), STUDY_DATA.semeval.spec);
  data = {
    imdbTrain: await imdb(STUDY_DATA.imdb.train),
    imdbTest: await imdb(STUDY_DATA.imdb.test),
    semevalTrain: await semeval(STUDY_DATA.semeval.train),
    semevalDev: await semeval(STUDY_DATA.semeval.dev),
  };
  facts = studyDataFacts(data);
  published = parsePublishedStudy(JSON.parse(readFileSync(PUBLISHED, 'utf8')), 'data/study/published.json');
}, 120_000);

/** A number as the study printed it: rounded to `digits` decimals (Python's format). */
const printed = (x: number, digits: number) => Number(pyFixed(x, digits));

describe("the published study's data facts, from ../shared/data", () => {
  it('IMDB: 25,000 train rows, 12,500 of each class; 25,000 test rows, the sentiment reports\' supports', () => {
    expect(facts.imdb.trainRows).toBe(published.data.imdb.trainRows);
    expect(facts.imdb.trainLabelCounts).toEqual(published.data.imdb.trainLabelCounts);
    expect(facts.imdb.testRows).toBe(published.data.imdb.testRows);
    for (const name of ['sentiment-3', 'sentiment-10']) {
      const report = published.experiments[name]!.report;
      expect(facts.imdb.testLabelCounts, name).toEqual(Object.fromEntries(Object.entries(report.labels).map(([label, row]) => [label, row.support])));
      expect(facts.imdb.testRows, name).toBe(report.accuracy!.support);
    }
  });

  it('SemEval: row counts, and each emotion\'s train frequency and pos_weight to 6 decimals', () => {
    const s = published.data.semeval;
    expect(facts.semeval.trainRows).toBe(s.trainRows);
    expect(facts.semeval.devRows).toBe(s.devRows);
    expect(s.labels).toEqual(EMOTIONS);
    expect(Object.keys(s.posWeight).sort()).toEqual([...EMOTIONS].sort());
    expect(Object.keys(s.trainPositiveFraction).sort()).toEqual([...EMOTIONS].sort());
    for (const e of EMOTIONS) {
      expect(printed(facts.semeval.posWeight[e]!, 6), `${e} pos_weight`).toBe(s.posWeight[e]);
      expect(printed(facts.semeval.trainPositiveFraction[e]!, 6), `${e} frequency`).toBe(s.trainPositiveFraction[e]);
    }
  });

  it('training uses the float32 rounding of those pos_weights, and of the joy-only class weights the study printed (4 decimals)', () => {
    const trained = posWeights(data.semevalTrain.targets, EMOTIONS.length);
    EMOTIONS.forEach((e, k) => expect(trained[k], e).toBe(Math.fround(facts.semeval.posWeight[e]!)));
    const joyWeights = balancedClassWeights(joyOrNot(data.semevalTrain).labels, JOY_CLASSES.length);
    JOY_CLASSES.forEach((c, k) => {
      expect(printed(facts.semeval.joyBalancedClassWeights[c]!, 4), c).toBe(published.data.semeval.joyBalancedClassWeights[c]);
      expect(joyWeights[k], c).toBe(Math.fround(facts.semeval.joyBalancedClassWeights[c]!));
    });
  });

  it("SemEval dev: every label's support equals the emotion and joy-only reports' support column", () => {
    for (const name of ['emotion-3', 'emotion-10']) {
      const report = published.experiments[name]!.report;
      expect(facts.semeval.devSupport, name).toEqual(Object.fromEntries(EMOTIONS.map((e) => [e, report.labels[e]!.support])));
      const total = EMOTIONS.reduce((n, e) => n + facts.semeval.devSupport[e]!, 0);
      for (const avg of Object.values(report.averages)) expect(avg.support, name).toBe(total);
    }
    for (const name of ['joy-3', 'joy-10']) {
      const report = published.experiments[name]!.report;
      expect(report.labels.joy!.support, name).toBe(facts.semeval.devSupport.joy);
      expect(report.labels['not-joy']!.support, name).toBe(facts.semeval.devRows - facts.semeval.devSupport.joy!);
      expect(report.accuracy!.support, name).toBe(facts.semeval.devRows);
    }
  });
});
