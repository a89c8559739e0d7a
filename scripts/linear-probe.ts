// Writes what a linear probe needs to say how much sentiment a model's features hold, apart from
// how well the prompt trainer finds it: for every review of the shipped IMDB slice, the final
// hidden state of the last position of an untrained prompt (seed 0; what the head reads), the
// mean of the text's final hidden states, its label and its token ids. scripts/linear-probe.py
// fits logistic regressions on them and, for a ceiling, on the reviews' bags of tokens.
//   node --import tsx scripts/linear-probe.ts MODEL_DIR OUT_DIR
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSession, closeSession } from '../src/cli/common.ts';
import { loadDataset } from '../src/node/dataset-file.ts';
import { toExamples, freshParams } from '../src/prompt/fit.ts';
import { PromptClassifier } from '../src/prompt/classifier.ts';
import { tokenBatch, disposePast, lengthBuckets } from '../src/prompt/train.ts';
import { tidy, noGrad } from '../src/tensor/tensor.ts';
import { DEFAULT_TRAINING } from '../src/prompt/defaults.ts';

const [modelDir, outDir] = process.argv.slice(2);
if (!modelDir || !outDir) throw new Error('usage: linear-probe.ts MODEL_DIR OUT_DIR');
const session = await openSession(modelDir);
const { model, tokenizer } = session;
const C = model.config.nEmbd;
const P = DEFAULT_TRAINING.promptTokens;
const labels = ['bad', 'good'];
const classifier = new PromptClassifier(model, await freshParams(model, P, labels.length, DEFAULT_TRAINING.seed), [
  { name: 'sentiment', kind: 'single', labelNames: labels, start: 0 },
]);
await mkdir(outDir, { recursive: true });
for (const split of ['train', 'test']) {
  const dataset = await loadDataset(`data/imdb/${split}.jsonl.gz`, { textColumn: 'text', labelColumn: 'label', labels });
  const examples = toExamples(dataset, tokenizer, 0, model.config.nPositions - P);
  const prompted = new Float32Array(examples.length * C);
  const pooled = new Float32Array(examples.length * C);
  for (const indices of lengthBuckets(examples.map((e) => e.tokens.length), 8)) {
    const batch = tokenBatch(examples, indices);
    const { past, hidden } = noGrad(() => tidy(() => model.encodePast(batch)));
    const last = noGrad(() => tidy(() => classifier.features(model, past)));
    const [lastValues, hiddenValues] = await Promise.all([last.readF32(), hidden.readF32()]);
    indices.forEach((i, b) => {
      prompted.set(lastValues.subarray(b * C, (b + 1) * C), i * C);
      const length = batch.lengths[b]!;
      for (let t = 0; t < length; t++) {
        for (let c = 0; c < C; c++) pooled[i * C + c]! += hiddenValues[(b * batch.width + t) * C + c]! / length;
      }
    });
    last.dispose();
    hidden.dispose();
    disposePast(past);
  }
  await writeFile(join(outDir, `${split}-prompted.f32`), prompted);
  await writeFile(join(outDir, `${split}-pooled.f32`), pooled);
  await writeFile(join(outDir, `${split}.json`), JSON.stringify({ width: C, labels: Array.from(dataset.labels), tokens: examples.map((e) => Array.from(e.tokens)) }));
}
classifier.dispose();
closeSession(session);
process.stderr.write(`wrote ${outDir}: features of ${modelDir} for scripts/linear-probe.py\n`);
