// Reading tabular files (Parquet, CSV, TSV, JSON lines) into plain rows. Parsing works on bytes
// with web-standard APIs only; reading them from disk is the Node edge's (src/node/dataset-file.ts).
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DataError } from './error.ts';

export interface Table {
  columns: string[];
  rows: Record<string, unknown>[];
}

export type TableFormat = 'parquet' | 'csv' | 'tsv' | 'jsonl';

const EXTENSIONS: Array<[string, TableFormat]> = [
  ['.parquet', 'parquet'],
  ['.csv', 'csv'],
  ['.tsv', 'tsv'],
  ['.tab', 'tsv'],
  ['.jsonl', 'jsonl'],
  ['.ndjson', 'jsonl'],
  ['.json', 'jsonl'],
];

/**
 * The format a file name implies. A trailing ".gz" (train.csv.gz) names a gzip-wrapped file of the
 * inner format; ".gz.parquet" is Parquet whatever its compression.
 */
export function tableFormat(name: string): TableFormat {
  const lower = name.toLowerCase().replace(/\.gz$/, '');
  for (const [ext, format] of EXTENSIONS) if (lower.endsWith(ext)) return format;
  throw new DataError(`${name}: unknown table format (supported: ${EXTENSIONS.map(([e]) => e).join(', ')}, optionally gzip-wrapped as .gz)`);
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
const isParquet = (b: Uint8Array) => b.length >= 8 && String.fromCharCode(...b.subarray(0, 4)) === 'PAR1';

async function gunzip(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([new Uint8Array(bytes)]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new DataError(`${name}: starts like a gzip file but does not decompress: ${(e as Error).message}`);
  }
}

function decodeText(bytes: Uint8Array, name: string): string {
  try {
    // The decoder drops a leading byte-order mark.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataError(`${name}: not valid UTF-8 text`);
  }
}

async function parseParquet(bytes: Uint8Array, name: string): Promise<Table> {
  if (!isParquet(bytes)) throw new DataError(`${name}: not a Parquet file (no PAR1 magic bytes)`);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  try {
    const columns = parquetSchema(parquetMetadata(file)).children.map((c) => c.element.name);
    // Pages may use any Parquet codec (the IMDB files use GZIP); hyparquet only has Snappy built in.
    const rows = await parquetReadObjects({ file, compressors });
    return { columns, rows };
  } catch (e) {
    throw new DataError(`${name}: cannot read Parquet: ${(e as Error).message}`);
  }
}

function parseDelimited(text: string, delimiter: string, name: string): Table {
  let records: string[][];
  try {
    // relax_quotes keeps a quote inside an unquoted field literal (He said "hi"), as Python's csv
    // module does; quoted fields follow RFC 4180 (doubled quotes, delimiters and newlines inside).
    records = parseCsv(text, { delimiter, relax_quotes: true, relax_column_count: true, skip_empty_lines: true });
  } catch (e) {
    throw new DataError(`${name}: malformed ${delimiter === '\t' ? 'TSV' : 'CSV'}: ${(e as Error).message}`);
  }
  if (records.length === 0) throw new DataError(`${name}: empty file, no header row`);
  const columns = records[0];
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw new DataError(`${name}: header names column "${c}" twice`);
    seen.add(c);
  }
  const rows = records.slice(1).map((fields, i) => {
    if (fields.length !== columns.length) {
      throw new DataError(`${name}: row ${i + 1} has ${fields.length} fields but the header has ${columns.length}`);
    }
    const row: Record<string, unknown> = {};
    columns.forEach((c, j) => (row[c] = fields[j]));
    return row;
  });
  return { columns, rows };
}

function asRow(v: unknown, name: string, row: number): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DataError(`${name}: row ${row} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** JSON lines; a file whose first character is "[" is read as one JSON array of row objects instead. */
function parseJsonLines(text: string, name: string): Table {
  const rows: Record<string, unknown>[] = [];
  if (text.trimStart().startsWith('[')) {
    let all: unknown;
    try {
      all = JSON.parse(text);
    } catch (e) {
      throw new DataError(`${name}: invalid JSON: ${(e as Error).message}`);
    }
    (all as unknown[]).forEach((v, i) => rows.push(asRow(v, name, i + 1)));
  } else {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new DataError(`${name}: row ${rows.length + 1} (line ${i + 1}): invalid JSON: ${(e as Error).message}`);
      }
      rows.push(asRow(v, name, rows.length + 1));
    });
  }
  // Columns in order of first appearance; a key missing from a row reads as a missing value.
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return { columns, rows };
}

/** Parses a table from its bytes; `name` (a file name or path) picks the format and labels errors. */
export async function parseTable(bytes: Uint8Array, name: string): Promise<Table> {
  const format = tableFormat(name);
  // Any format may arrive gzip-wrapped; Parquet with GZIP-compressed pages starts with PAR1 instead.
  if (isGzip(bytes)) bytes = await gunzip(bytes, name);
  switch (format) {
    case 'parquet':
      return parseParquet(bytes, name);
    case 'csv':
      return parseDelimited(decodeText(bytes, name), ',', name);
    case 'tsv':
      return parseDelimited(decodeText(bytes, name), '\t', name);
    case 'jsonl':
      return parseJsonLines(decodeText(bytes, name), name);
  }
}
