// Node edge for data: tables and datasets read from disk, parsed by the host-neutral src/data.
import { readFile } from 'node:fs/promises';
import { DataError } from '../data/error.ts';
import { parseTable, type Table } from '../data/table.ts';
import { toDataset, type Dataset, type DatasetSpec } from '../data/dataset.ts';

/** Reads a table file (Parquet, CSV, TSV, JSON lines; optionally gzip-wrapped). */
export async function readTable(path: string): Promise<Table> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(code === 'ENOENT' ? `${path}: file not found` : `${path}: cannot read: ${(e as Error).message}`);
  }
  return parseTable(bytes, path);
}

export async function loadDataset(path: string, spec: DatasetSpec): Promise<Dataset> {
  return toDataset(await readTable(path), spec, path);
}
