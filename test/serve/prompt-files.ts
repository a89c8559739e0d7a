// Two prompt files for the shipped small model, as separate training runs would leave them:
// a single-label task and a multi-label one, each with its own prompt and head (seeded random
// values: serving costs and numerics do not depend on how well a prompt was trained).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint } from '../../src/node/checkpoint-file.ts';
import { fingerprint } from '../../src/gpt2/checkpoint.ts';
import { encodeCheckpoint } from '../../src/prompt/checkpoint.ts';
import type { Task } from '../../src/prompt/classifier.ts';
import { seededRandom } from '../../src/util/random.ts';

export const SMALL_MODEL = join(import.meta.dirname, '..', '..', 'weights', 'small-gpt2');

export const SENTIMENT: Task = { name: 'sentiment', kind: 'single', labelNames: ['bad', 'good'], start: 0 };
export const EMOTION: Task = { name: 'emotion', kind: 'multi', labelNames: ['joy', 'love', 'anger'], start: 0 };

/** Writes sentiment.gpt2p and emotion.gpt2p into `dir`; returns their paths. */
export async function writePromptFiles(dir: string, promptTokens = 5): Promise<{ sentiment: string; emotion: string }> {
  const checkpoint = await readCheckpoint(SMALL_MODEL);
  const model = { config: checkpoint.config, fingerprint: await fingerprint(checkpoint) };
  const C = checkpoint.config.nEmbd;
  const write = (task: Task, seed: number) => {
    const random = seededRandom(seed);
    const values = (n: number, scale: number) => Float32Array.from({ length: n }, () => (2 * random() - 1) * scale);
    const K = task.labelNames.length;
    const path = join(dir, `${task.name}.gpt2p`);
    const params = { prompt: values(promptTokens * C, 0.5), headWeight: values(K * C, 1), headBias: values(K, 0.5) };
    writeFileSync(path, encodeCheckpoint({ model, tasks: [task], promptTokens, params, training: { seed } }));
    return path;
  };
  return { sentiment: write(SENTIMENT, 11), emotion: write(EMOTION, 12) };
}
