// `gpt2-prompt generate`: greedy or sampled continuation through the tied LM head, to check
// that real weights load and run correctly ("Hello, I'm a language model," should continue
// sensibly with openai-community/gpt2).
import { tidy, noGrad } from '../tensor/tensor.ts';
import { gatherRows } from '../ops/gather.ts';
import { seededRandom } from '../util/random.ts';
import { openSession, closeSession, positiveInt, nonNegativeNumber, integer } from './common.ts';

export async function generateCommand(text: string, flags: { model?: string; tokens?: number | string; temperature?: number | string; seed?: number | string; backend?: string }): Promise<void> {
  const count = positiveInt(flags.tokens ?? 20, '--tokens');
  const temperature = nonNegativeNumber(flags.temperature ?? 0, '--temperature');
  const random = seededRandom(integer(flags.seed ?? 0, '--seed'));
  const session = await openSession(flags.model, flags.backend as never);
  try {
    const { model, tokenizer } = session;
    const ids = tokenizer.encode(text);
    if (ids.length === 0) ids.push(tokenizer.eosId);
    process.stdout.write(text);
    for (let i = 0; i < count && ids.length < model.config.nPositions; i++) {
      const hidden = noGrad(() =>
        tidy(() => {
          const { hidden: h } = model.encodePast({ ids: Uint32Array.from(ids), lengths: Uint32Array.of(ids.length), width: ids.length });
          return gatherRows(h.reshape([ids.length, model.config.nEmbd]), Uint32Array.of(ids.length - 1));
        }),
      );
      const logits = await model.lmLogits(hidden);
      hidden.dispose();
      const next = temperature > 0 ? sample(logits, temperature, random) : logits.indexOf(Math.max(...logits));
      ids.push(next);
      process.stdout.write(tokenizer.decode([next]));
    }
    process.stdout.write('\n');
  } finally {
    closeSession(session);
  }
}

function sample(logits: Float32Array, temperature: number, random: () => number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const weights = logits.map((v) => Math.exp((v - max) / temperature));
  let r = random() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r <= 0) return i;
  }
  return weights.length - 1;
}
