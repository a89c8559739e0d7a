import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../../src/node/dataset-file.ts';
import { GPT2Tokenizer } from '../../src/gpt2/tokenizer.ts';

const path = (split: string) => fileURLToPath(new URL(`../../data/imdb/${split}.jsonl.gz`, import.meta.url));

describe('the shipped IMDB slice (data/imdb)', () => {
  it('is balanced, labelled bad/good, and every text fits 123 tokens (128 positions less 5 prompt tokens)', async () => {
    const tokenizer = new GPT2Tokenizer();
    for (const [split, perClass] of [['train', 1000], ['test', 250]] as const) {
      const d = await loadDataset(path(split), { textColumn: 'text', labelColumn: 'label', labels: ['bad', 'good'] });
      expect(d.texts.length).toBe(2 * perClass);
      expect(d.labels.reduce((n, l) => n + l, 0)).toBe(perClass);
      for (const text of d.texts) {
        expect(text.length).toBeGreaterThan(0);
        expect(tokenizer.encode(text).length).toBeLessThanOrEqual(123);
      }
    }
  });
});
