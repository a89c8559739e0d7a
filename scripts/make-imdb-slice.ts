// Writes the shipped IMDB slice, data/imdb/{train,test}.jsonl.gz: a balanced random sample of
// the Large Movie Review Dataset (Maas et al., 2011) — 1,000 good and 1,000 bad train reviews,
// 250 of each from test — each kept to its last MAX_TOKENS GPT-2 tokens (the tail of a review
// usually holds its verdict), cut at a word boundary, so a text and 5 prompt tokens fit the
// shipped model's 128 positions. Seeded: running it again writes the same texts.
//   node --import tsx scripts/make-imdb-slice.ts [../shared/data/imdb] [data/imdb]
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readTable } from '../src/node/dataset-file.ts';
import { GPT2Tokenizer } from '../src/gpt2/tokenizer.ts';
import { seededRandom, shuffledIndices } from '../src/util/random.ts';

const MAX_TOKENS = 123;
const SEED = 13;
const source = process.argv[2] ?? '../shared/data/imdb';
const outDir = process.argv[3] ?? 'data/imdb';
const tokenizer = new GPT2Tokenizer();

/** The text's last MAX_TOKENS tokens, starting at a word: as text that encodes to at most MAX_TOKENS. */
function tail(text: string): string {
  const ids = tokenizer.encode(text);
  if (ids.length <= MAX_TOKENS) return text;
  let kept = MAX_TOKENS;
  for (;;) {
    let t = tokenizer.decode(ids.slice(ids.length - kept));
    // Drop a partial first word (or a cut multi-byte character).
    t = t.replace(/^\S*\s+/, '');
    if (tokenizer.encode(t).length <= MAX_TOKENS) return t;
    kept--;
  }
}

async function slice(split: 'train' | 'test', perClass: number): Promise<{ rows: string; counts: Record<string, number> }> {
  const table = await readTable(join(source, `${split}.gz.parquet`));
  const random = seededRandom(SEED + (split === 'test' ? 1 : 0));
  const byLabel = new Map<string, number[]>();
  table.rows.forEach((row, i) => {
    const label = String(row.label);
    byLabel.set(label, [...(byLabel.get(label) ?? []), i]);
  });
  const chosen: number[] = [];
  const counts: Record<string, number> = {};
  for (const label of [...byLabel.keys()].sort()) {
    const rows = byLabel.get(label)!;
    const order = shuffledIndices(rows.length, random);
    for (let k = 0; k < perClass; k++) chosen.push(rows[order[k]!]!);
    counts[label] = perClass;
  }
  // Interleave the classes in a seeded order, so a prefix of the file is balanced too.
  const order = shuffledIndices(chosen.length, random);
  const lines = Array.from(order, (k) => {
    const row = table.rows[chosen[k]!]!;
    return JSON.stringify({ text: tail(String(row.text)), label: String(row.label) });
  });
  return { rows: `${lines.join('\n')}\n`, counts };
}

await mkdir(outDir, { recursive: true });
for (const [split, perClass] of [['train', 1000], ['test', 250]] as const) {
  const { rows, counts } = await slice(split, perClass);
  // mtime 0 in the gzip header: the same texts give the same bytes.
  const file = join(outDir, `${split}.jsonl.gz`);
  await writeFile(file, gzipSync(rows, { level: 9 }));
  process.stderr.write(`wrote ${file}: ${JSON.stringify(counts)}\n`);
}
