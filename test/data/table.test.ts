// Table readers: the real shared datasets, CSV/TSV quoting edge cases, JSON lines, gzip wrapping.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/error.ts';
import { tableFormat } from '../../src/data/table.ts';
import { readTable } from '../../src/node/dataset-file.ts';

const DATA = new URL('../../../shared/data/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-table-'));
function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('real datasets', () => {
  it('reads IMDB train: Parquet with GZIP-compressed pages', async () => {
    const path = join(DATA, 'imdb/train.gz.parquet');
    const head = readFileSync(path).subarray(0, 4).toString('latin1');
    expect(head).toBe('PAR1'); // not a gzip-wrapped file: the codec is inside
    const t = await readTable(path);
    expect(t.columns).toEqual(['label', 'text']);
    expect(t.rows.length).toBe(25_000);
    expect(t.rows[0].label).toBe('good');
    expect(t.rows[0].text).toMatch(/^Bromwell High is a cartoon comedy\./);
    expect(t.rows[24_999].label).toBe('bad');
    expect(t.rows[24_999].text).toMatch(/^This is one of the dumbest films/);
  });

  it('reads IMDB test, and the same file gzip-wrapped', async () => {
    const path = join(DATA, 'imdb/test.gz.parquet');
    const t = await readTable(path);
    expect(t.rows.length).toBe(25_000);
    expect(t.rows[0]).toMatchObject({ label: 'good' });
    expect(t.rows[0].text).toMatch(/^I went and saw this movie last night/);
    const wrapped = await readTable(file('wrapped.gz.parquet', gzipSync(readFileSync(path), { level: 1 })));
    expect(wrapped.rows.length).toBe(25_000);
    expect(wrapped.rows[12_345]).toEqual(t.rows[12_345]);
  });

  it('reads the SemEval TSV files (CRLF, no quoting)', async () => {
    const train = await readTable(join(DATA, 'semeval2018-ec/train.tsv'));
    expect(train.columns).toEqual(['ID', 'Tweet', 'anger', 'anticipation', 'disgust', 'fear', 'joy', 'love', 'optimism', 'pessimism', 'sadness', 'surprise', 'trust']);
    expect(train.rows.length).toBe(6838);
    expect(train.rows[0].ID).toBe('2017-En-21441');
    expect(train.rows[0].Tweet).toBe("“Worry is a down payment on a problem you may never have'. \u00a0Joyce Meyer.  #motivation #leadership #worry");
    expect(train.rows.at(-1)!.ID).toBe('2017-En-31003');
    expect(train.rows.at(-1)!.trust).toBe('0'); // no "\r" left on the last field
    const dev = await readTable(join(DATA, 'semeval2018-ec/dev.tsv'));
    expect(dev.rows.length).toBe(886);
    expect(dev.rows[0].ID).toBe('2018-En-00866');
  });
});

describe('CSV and TSV', () => {
  it('handles RFC 4180 quoting, a BOM, CRLF and an empty field', async () => {
    const csv = '\ufeffid,text,label\r\n1,"hello, world",good\r\n2,"she said ""wow""",bad\r\n3,"line one\r\nline two",good\r\n4,,bad\r\n5,plain "quoted" word,good\r\n';
    const t = await readTable(file('quoting.csv', csv));
    expect(t.columns).toEqual(['id', 'text', 'label']);
    expect(t.rows.map((r) => r.text)).toEqual(['hello, world', 'she said "wow"', 'line one\r\nline two', '', 'plain "quoted" word']);
    expect(t.rows.map((r) => r.label)).toEqual(['good', 'bad', 'good', 'bad', 'good']);
  });

  it('quotes TSV fields too, and skips blank lines', async () => {
    const t = await readTable(file('q.tsv', 'text\tlabel\n"tab\tinside"\t1\n\nno "quote" here\t0\n'));
    expect(t.rows).toEqual([
      { text: 'tab\tinside', label: '1' },
      { text: 'no "quote" here', label: '0' },
    ]);
  });

  it('reads a gzip-wrapped CSV', async () => {
    const t = await readTable(file('small.csv.gz', gzipSync('a,b\n1,2\n')));
    expect(t).toEqual({ columns: ['a', 'b'], rows: [{ a: '1', b: '2' }] });
  });

  it('reports a row with the wrong number of fields', async () => {
    const path = file('ragged.csv', 'a,b\n1,2\n3,4,5\n');
    await expect(readTable(path)).rejects.toThrow(`${path}: row 2 has 3 fields but the header has 2`);
  });

  it('reports an unterminated quote, an empty file and a repeated header name', async () => {
    await expect(readTable(file('open.csv', 'a,b\n1,"never closed\n'))).rejects.toThrow(/open\.csv: malformed CSV: .*[Qq]uote/);
    await expect(readTable(file('empty.csv', ''))).rejects.toThrow(/empty\.csv: empty file/);
    await expect(readTable(file('dup.csv', 'a,a\n1,2\n'))).rejects.toThrow(/dup\.csv: header names column "a" twice/);
  });
});

describe('JSON lines', () => {
  it('reads rows, skipping blank lines, with columns in order of appearance', async () => {
    const t = await readTable(file('rows.jsonl', '{"text": "a", "label": 1}\n\n{"label": 0, "text": "b", "extra": true}\r\n'));
    expect(t.columns).toEqual(['text', 'label', 'extra']);
    expect(t.rows).toEqual([
      { text: 'a', label: 1 },
      { label: 0, text: 'b', extra: true },
    ]);
  });

  it('reads a .json file holding an array of rows', async () => {
    const t = await readTable(file('rows.json', '[{"text": "x", "label": "good"}]'));
    expect(t.rows).toEqual([{ text: 'x', label: 'good' }]);
  });

  it('names the row of invalid JSON or a non-object', async () => {
    await expect(readTable(file('bad.jsonl', '{"text": "a"}\n{"text": \n'))).rejects.toThrow(/bad\.jsonl: row 2 \(line 2\): invalid JSON/);
    await expect(readTable(file('arr.jsonl', '{"text": "a"}\n[1, 2]\n'))).rejects.toThrow(/arr\.jsonl: row 2 is not a JSON object/);
  });
});

describe('files and formats', () => {
  it('reports a missing file by path', async () => {
    const path = join(dir, 'nope.csv');
    await expect(readTable(path)).rejects.toThrow(new DataError(`${path}: file not found`));
  });

  it('picks the format by extension and rejects unknown ones', () => {
    expect(tableFormat('x/train.gz.parquet')).toBe('parquet');
    expect(tableFormat('A.CSV')).toBe('csv');
    expect(tableFormat('a.tsv.gz')).toBe('tsv');
    expect(tableFormat('a.json')).toBe('jsonl');
    expect(() => tableFormat('data.xlsx')).toThrow(DataError);
  });

  it('rejects a .parquet file that is not Parquet, and text that is not UTF-8', async () => {
    await expect(readTable(file('fake.parquet', 'a,b\n1,2\n'))).rejects.toThrow(/fake\.parquet: not a Parquet file/);
    await expect(readTable(file('latin1.csv', Uint8Array.of(0x61, 0x0a, 0xe9, 0x0a)))).rejects.toThrow(/latin1\.csv: not valid UTF-8/);
  });
});
