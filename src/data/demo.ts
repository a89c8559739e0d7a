// A small synthetic sentiment dataset, so `gpt2-prompt train` runs without downloading anything.
// Sentiment is carried by unmistakable words, so a working trainer must reach high accuracy on it.
import type { Dataset } from './dataset.ts';
import { seededRandom } from '../util/random.ts';

const LABELS = ['bad', 'good'];

const WORDS = [
  ['awful', 'boring', 'terrible', 'dull', 'dreadful', 'tedious', 'disappointing', 'clumsy', 'bland', 'painful'],
  ['great', 'wonderful', 'excellent', 'brilliant', 'delightful', 'superb', 'charming', 'moving', 'enjoyable', 'beautiful'],
];

const VERDICTS = [
  ['I want my two hours back.', 'Avoid it.', 'I nearly walked out.', 'What a waste of time.'],
  ['I would watch it again.', 'Highly recommended.', 'I loved every minute.', 'What a treat.'],
];

const SUBJECTS = ['the movie', 'this film', 'the acting', 'the story', 'the soundtrack', 'the ending', 'the cast', 'the script', 'the plot', 'the direction'];
const NOUNS = ['movie', 'film', 'story', 'performance', 'picture', 'thriller', 'comedy', 'drama'];
const ADVERBS = ['really', 'very', 'quite', 'truly', 'just', 'rather', 'simply', 'absolutely'];

type Pick = <T>(items: readonly T[]) => T;

const capitalize = (s: string) => s[0].toUpperCase() + s.slice(1);
const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

const TEMPLATES: Array<(pick: Pick, c: number) => string> = [
  (pick, c) => `${capitalize(pick(SUBJECTS))} was ${pick(WORDS[c])}.`,
  (pick, c) => `I thought ${pick(SUBJECTS)} was ${pick(ADVERBS)} ${pick(WORDS[c])}.`,
  (pick, c) => {
    const adj = pick(WORDS[c]);
    return `What ${article(adj)} ${adj} ${pick(NOUNS)}! ${pick(VERDICTS[c])}`;
  },
  (pick, c) => `Honestly, ${pick(SUBJECTS)} felt ${pick(WORDS[c])} from start to finish.`,
  (pick, c) => `My friends and I found ${pick(SUBJECTS)} ${pick(ADVERBS)} ${pick(WORDS[c])}. ${pick(VERDICTS[c])}`,
  (pick, c) => `${capitalize(pick(SUBJECTS))} is ${pick(WORDS[c])} and ${pick(SUBJECTS)} is ${pick(WORDS[c])} too.`,
  (pick, c) => {
    const adj = pick(WORDS[c]);
    return `It was ${article(adj)} ${adj} evening at the cinema. ${pick(VERDICTS[c])}`;
  },
];

// Hashing the seed first gives neighbouring seeds (train 0, validation 1) unrelated streams.
const random = (seed: number) => seededRandom(Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0);

/**
 * n review-like sentences labelled bad (0) / good (1): classes balanced (they differ by at most one
 * row), rows shuffled, fully determined by the seed.
 */
export function makeDemoDataset(n: number, seed: number): Dataset {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`demo dataset size must be a positive integer, got ${n}`);
  const u = random(seed);
  const pick: Pick = (items) => items[Math.floor(u() * items.length)];
  const labels = Uint32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [labels[i], labels[j]] = [labels[j], labels[i]];
  }
  const texts = Array.from(labels, (c) => pick(TEMPLATES)(pick, c));
  return { kind: 'single', texts, labelNames: [...LABELS], labels, targets: new Float32Array(0), source: `demo(n=${n}, seed=${seed})` };
}

/** Train and validation splits drawn with different seeds. */
export function makeDemoSplits(nTrain: number, nValidation: number, seed = 0): { train: Dataset; validation: Dataset } {
  return { train: makeDemoDataset(nTrain, 2 * seed), validation: makeDemoDataset(nValidation, 2 * seed + 1) };
}
