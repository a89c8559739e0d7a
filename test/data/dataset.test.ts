// Datasets from tables: label mapping, multi-label targets, every DataError, class weights, demo data.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { balancedClassWeights, classCounts, DataError, holdOut, parseLabelList, posWeights, spreadSubset, toDataset, withLabelColumns, type DatasetSpec } from '../../src/data/dataset.ts';
import { loadDataset } from '../../src/node/dataset-file.ts';
import { makeDemoDataset, makeDemoSplits } from '../../src/data/demo.ts';
import type { Table } from '../../src/data/table.ts';

const DATA = new URL('../../../shared/data/', import.meta.url).pathname;
const EMOTIONS = ['anger', 'anticipation', 'disgust', 'fear', 'joy', 'love', 'optimism', 'pessimism', 'sadness', 'surprise', 'trust'];
const dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-dataset-'));
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}
const table = (rows: Record<string, unknown>[], columns = Object.keys(rows[0] ?? {})): Table => ({ columns, rows });
const single: DatasetSpec = { textColumn: 'text', labelColumn: 'label' };

describe('real datasets', () => {
  it('IMDB: 25,000 rows, classes {bad, good}, balanced', async () => {
    const d = await loadDataset(join(DATA, 'imdb/train.gz.parquet'), single);
    expect(d.kind).toBe('single');
    expect(d.texts.length).toBe(25_000);
    expect(d.labelNames).toEqual(['bad', 'good']);
    expect(d.labels[0]).toBe(1);
    expect(d.labels[24_999]).toBe(0);
    expect(d.labels.reduce((s, c) => s + c, 0)).toBe(12_500);
    expect(d.targets.length).toBe(0);
  });

  it('SemEval 2018 E-c: 11 emotion labels as a 0/1 target matrix', async () => {
    const d = await loadDataset(join(DATA, 'semeval2018-ec/train.tsv'), { textColumn: 'Tweet', labelColumns: EMOTIONS });
    expect(d.kind).toBe('multi');
    expect(d.labelNames).toEqual(EMOTIONS);
    expect(d.texts.length).toBe(6838);
    expect(d.targets.length).toBe(6838 * 11);
    const row = (i: number) => EMOTIONS.filter((_, j) => d.targets[i * 11 + j] === 1);
    expect(row(0)).toEqual(['anticipation', 'optimism', 'trust']);
    expect(d.texts[1]).toBe('Whatever you decide to do make sure it makes you #happy.');
    expect(row(1)).toEqual(['joy', 'love', 'optimism']);
    expect(row(6837)).toEqual(['pessimism']);
    const dev = await loadDataset(join(DATA, 'semeval2018-ec/dev.tsv'), { textColumn: 'Tweet', labelColumns: EMOTIONS });
    expect(dev.texts.length).toBe(886);
    expect(dev.source).toMatch(/dev\.tsv$/);
  });
});

describe('single-label', () => {
  it('infers sorted class names, numerically when they are numbers', () => {
    const d = toDataset(table([{ text: 'a', label: 10 }, { text: 'b', label: 2 }, { text: 'c', label: 1 }, { text: 'd', label: 2 }]), single, 't');
    expect(d.labelNames).toEqual(['1', '2', '10']);
    expect([...d.labels]).toEqual([2, 1, 0, 1]);
  });

  it('matches CSV strings and JSON numbers as the same class', () => {
    const d = toDataset(table([{ text: 'a', label: '1' }, { text: 'b', label: 1 }]), single, 't');
    expect(d.labelNames).toEqual(['1']);
    expect([...d.labels]).toEqual([0, 0]);
  });

  it('orders classes as a --labels override says, even ones absent from the data', () => {
    const labels = parseLabelList(' good, bad ,meh');
    expect(labels).toEqual(['good', 'bad', 'meh']);
    const d = toDataset(table([{ text: 'x', label: 'bad' }, { text: 'y', label: 'good' }]), { ...single, labels }, 't');
    expect(d.labelNames).toEqual(['good', 'bad', 'meh']);
    expect([...d.labels]).toEqual([1, 0]);
  });

  it('rejects a label outside the given set, naming row, column and the set', () => {
    const t = table([{ text: 'x', label: 'good' }, { text: 'y', label: 'okay' }]);
    expect(() => toDataset(t, { ...single, labels: ['bad', 'good'] }, 'f.csv')).toThrow(
      new DataError('f.csv: row 2, column "label": label "okay" is not one of the given labels ("bad", "good")'),
    );
  });

  it('rejects bad --labels lists', () => {
    expect(() => parseLabelList('a,,b')).toThrow(/empty class name/);
    expect(() => parseLabelList('a,b,a')).toThrow(/"a" twice/);
    expect(() => toDataset(table([{ text: 'x', label: 'a' }]), { ...single, labels: [] }, 't')).toThrow(/label list is empty/);
  });

  it('accepts an empty text but rejects a null, missing or NaN one', () => {
    expect(toDataset(table([{ text: '', label: 'a' }]), single, 't').texts).toEqual(['']);
    const cases: Array<[unknown, string]> = [
      [null, 'null'],
      [undefined, 'undefined'],
      [NaN, 'NaN'],
    ];
    for (const [text, shown] of cases) {
      const t = table([{ text: 'ok', label: 'a' }, { text, label: 'a' }], ['text', 'label']);
      expect(() => toDataset(t, single, 'f.parquet')).toThrow(new DataError(`f.parquet: row 2, column "text": missing text (${shown}); an empty string is allowed, a null or NaN is not`));
    }
  });

  it('rejects a null label', () => {
    expect(() => toDataset(table([{ text: 'x', label: null }]), single, 't')).toThrow('t: row 1, column "label": missing label (null)');
  });

  it('rejects an empty or blank label cell instead of making a class named ""', () => {
    expect(() => toDataset(table([{ text: 'x', label: 'good' }, { text: 'y', label: '' }]), single, 't.csv')).toThrow(new DataError('t.csv: row 2, column "label": empty label'));
    expect(() => toDataset(table([{ text: 'x', label: '  ' }]), single, 't.csv')).toThrow(new DataError('t.csv: row 1, column "label": empty label ("  ")'));
  });
});

describe('multi-label', () => {
  const spec: DatasetSpec = { textColumn: 'text', labelColumns: ['a', 'b'] };

  it('reads 0/1 as strings, numbers, bigints and booleans', () => {
    const d = toDataset(table([{ text: 'x', a: '1', b: '0' }, { text: 'y', a: 0, b: 1n }, { text: 'z', a: true, b: '1.0' }]), spec, 't');
    expect(d.labelNames).toEqual(['a', 'b']);
    expect([...d.targets]).toEqual([1, 0, 0, 1, 1, 1]);
    expect(d.labels.length).toBe(0);
  });

  it('rejects a value other than 0/1, naming row and column', () => {
    expect(() => toDataset(table([{ text: 'x', a: '0', b: '1' }, { text: 'y', a: '2', b: '0' }]), spec, 'e.tsv')).toThrow(
      new DataError('e.tsv: row 2, column "a": a multi-label value must be 0 or 1, got "2"'),
    );
    expect(() => toDataset(table([{ text: 'y', a: '', b: '0' }]), spec, 'e.tsv')).toThrow(/row 1, column "a".*got ""/);
  });
});

describe('errors from files', () => {
  it('names an unknown column and lists the available ones', async () => {
    const path = file('cols.csv', 'Tweet,label\nhi,a\n');
    await expect(loadDataset(path, single)).rejects.toThrow(new DataError(`${path}: unknown column "text" (available: "Tweet", "label")`));
  });

  it('rejects a file with a header and no rows', async () => {
    const path = file('header-only.csv', 'text,label\n');
    await expect(loadDataset(path, single)).rejects.toThrow(new DataError(`${path}: empty dataset, no data rows`));
  });

  it('reports a missing file', async () => {
    await expect(loadDataset(join(dir, 'missing.jsonl'), single)).rejects.toThrow(/missing\.jsonl: file not found/);
  });

  it('reports a null text in JSON lines by row', async () => {
    const path = file('nulls.jsonl', '{"text": "fine", "label": "a"}\n{"text": null, "label": "a"}\n');
    await expect(loadDataset(path, single)).rejects.toThrow(`${path}: row 2, column "text": missing text (null)`);
  });

  it('rejects a spec with both or neither kind of label', () => {
    const t = table([{ text: 'x', label: 'a' }]);
    expect(() => toDataset(t, { textColumn: 'text' }, 't')).toThrow(DataError);
    expect(() => toDataset(t, { textColumn: 'text', labelColumn: 'label', labelColumns: ['label'] }, 't')).toThrow(DataError);
  });
});

describe('class weights', () => {
  it('posWeights is negatives / positives per label, 1 for a label with no positives', () => {
    // 4 rows × 3 labels: positives 1, 3, 0.
    const targets = Float32Array.of(1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0);
    expect([...posWeights(targets, 3)]).toEqual([3, 1 / 3, 1].map(Math.fround));
    expect(() => posWeights(new Float32Array(5), 3)).toThrow(RangeError);
  });

  it("balancedClassWeights is sklearn's n_samples / (n_classes * count)", () => {
    // sklearn compute_class_weight('balanced', classes=[0, 1, 2], y=[0, 0, 0, 1, 2, 2]) = [2/3, 2, 1].
    expect([...balancedClassWeights(Uint32Array.of(0, 0, 0, 1, 2, 2), 3)]).toEqual([2 / 3, 2, 1].map(Math.fround));
    // A class that never occurs weighs no row; it gets 1 rather than sklearn's error.
    expect([...balancedClassWeights(Uint32Array.of(0, 0), 2)]).toEqual([0.5, 1]);
    expect(() => balancedClassWeights(Uint32Array.of(0, 3), 2)).toThrow(RangeError);
  });
});

describe('demo dataset', () => {
  it('is deterministic by seed, balanced and single-label', () => {
    const a = makeDemoDataset(101, 7);
    expect(makeDemoDataset(101, 7)).toEqual(a);
    expect(a.kind).toBe('single');
    expect(a.labelNames).toEqual(['bad', 'good']);
    const good = a.labels.reduce((s, c) => s + c, 0);
    expect(Math.abs(101 - 2 * good)).toBe(1);
    expect(new Set(a.texts).size).toBeGreaterThan(80);
  });

  it('carries sentiment in cue words that never cross classes', () => {
    const { train, validation } = makeDemoSplits(400, 100, 3);
    expect(train.texts).not.toEqual(validation.texts.slice(0, 100));
    expect(validation.texts.length).toBe(100);
    const cues = [/awful|boring|terrible|dull|dreadful|tedious|disappointing|clumsy|bland|painful/, /great|wonderful|excellent|brilliant|delightful|superb|charming|moving|enjoyable|beautiful/];
    train.texts.forEach((t, i) => {
      const c = train.labels[i];
      expect(t, t).toMatch(cues[c]);
      expect(t, t).not.toMatch(cues[1 - c]);
    });
  });
});

describe('subsets', () => {
  const rows = Array.from({ length: 10 }, (_, i) => ({ text: `t${i}`, label: i < 5 ? 'good' : 'bad', a: i % 2, b: i % 3 === 0 ? 1 : 0 }));
  it('spreadSubset takes rows spread over the file, so a file sorted by label keeps both classes', () => {
    const d = spreadSubset(toDataset(table(rows), single, 't'), 4);
    expect(d.texts).toEqual(['t0', 't2', 't5', 't7']);
    expect(Array.from(d.labels).map((c) => d.labelNames[c])).toEqual(['good', 'good', 'bad', 'bad']);
    const m = spreadSubset(toDataset(table(rows), { textColumn: 'text', labelColumns: ['a', 'b'] }, 't'), 3);
    expect(m.texts).toEqual(['t0', 't3', 't6']);
    expect(Array.from(m.targets)).toEqual([0, 1, 1, 1, 0, 1]);
    expect(spreadSubset(m, 50)).toBe(m);
  });
  it('withLabelColumns keeps the chosen columns in the given order', () => {
    const m = withLabelColumns(toDataset(table(rows), { textColumn: 'text', labelColumns: ['a', 'b'] }, 't'), ['b']);
    expect(m.labelNames).toEqual(['b']);
    expect(Array.from(m.targets)).toEqual([1, 0, 0, 1, 0, 0, 1, 0, 0, 1]);
    expect(() => withLabelColumns(m, ['joy'])).toThrow(/no label column "joy"/);
  });
  it('holdOut draws a seeded share of the rows for validation, both parts in file order, labels and targets carried along', () => {
    const d = toDataset(table(rows), single, 't');
    const { train, val } = holdOut(d, 0.3, 7);
    expect(val.texts).toHaveLength(3);
    expect(train.texts).toHaveLength(7);
    expect([...train.texts, ...val.texts].sort()).toEqual([...d.texts].sort());
    for (const part of [train, val]) {
      const at = part.texts.map((t) => Number(t.slice(1)));
      expect(at).toEqual([...at].sort((a, b) => a - b));
      part.texts.forEach((t, i) => expect(part.labelNames[part.labels[i]!]).toBe(rows[Number(t.slice(1))]!.label));
    }
    expect(holdOut(d, 0.3, 7).val.texts).toEqual(val.texts);
    expect(holdOut(d, 0.3, 8).val.texts).not.toEqual(val.texts);
    const m = holdOut(toDataset(table(rows), { textColumn: 'text', labelColumns: ['a', 'b'] }, 't'), 0.2, 1).val;
    m.texts.forEach((t, i) => expect(Array.from(m.targets.subarray(2 * i, 2 * i + 2))).toEqual([rows[Number(t.slice(1))]!.a, rows[Number(t.slice(1))]!.b]));
    expect(() => holdOut(d, 0, 1)).toThrow(/validation share must lie between 0 and 1/);
    expect(() => holdOut(toDataset(table(rows.slice(0, 1)), single, 't'), 0.5, 1)).toThrow(/1 rows are too few/);
  });
  it('classCounts counts rows per class, or positives per label column', () => {
    expect(classCounts(toDataset(table(rows), single, 't'))).toEqual([{ label: 'bad', count: 5 }, { label: 'good', count: 5 }]);
    expect(classCounts(toDataset(table(rows), { textColumn: 'text', labelColumns: ['a', 'b'] }, 't'))).toEqual([{ label: 'a', count: 5 }, { label: 'b', count: 4 }]);
  });
});
