// Several tasks in one pass: predicting 3 tasks over the same texts with one encode of the
// texts (every prompt attends to the same cached past) against running the tasks one after
// another (an encode per task). GPT-2 small-sized model with random weights.
//   node --import tsx bench/multitask.ts [--quick] [--json]
import { Bench } from 'tinybench';
import { openGpu } from '../src/node/device.ts';
import { GPT2 } from '../src/gpt2/model.ts';
import type { GPT2Config } from '../src/gpt2/config.ts';
import { PromptClassifier, initialParams, type Task } from '../src/prompt/classifier.ts';
import { predictLogits, type Example } from '../src/prompt/train.ts';
import { seededRandom } from '../src/util/random.ts';
import { randomWeights } from '../test/gpt2/reference.ts';

const quick = process.argv.includes('--quick');
const config: GPT2Config = { vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: quick ? 4 : 12, nHead: 12, layerNormEps: 1e-5, activation: 'gelu_new' };
const texts = quick ? 8 : 16;
const tokens = 64;

const gpu = await openGpu();
const model = new GPT2(gpu, config, randomWeights(config, 1));
const random = seededRandom(2);
const examples: Example[] = Array.from({ length: texts }, () => ({
  tokens: Uint32Array.from({ length: tokens - Math.floor(random() * 16) }, () => Math.floor(random() * 50000)),
  task: 0,
  label: 0,
  targets: null,
}));
const classifiers = [2, 11, 5].map((classes, i) => {
  const task: Task = { name: `task${i}`, kind: i === 1 ? 'multi' : 'single', labelNames: Array.from({ length: classes }, (_, k) => `l${k}`), start: 0 };
  const prompt = Float32Array.from({ length: 5 * 768 }, () => random() - 0.5);
  return new PromptClassifier(model, initialParams(prompt, 768, classes, random), [task]);
});

// Same numbers either way (the past does not depend on the prompt).
const together = await predictLogits(model, classifiers, examples, 8);
const apart = await Promise.all(classifiers.map(async (c) => (await predictLogits(model, [c], examples, 8))[0]!));
const maxDiff = Math.max(...together.map((t, k) => Math.max(...t.map((v, i) => Math.abs(v - apart[k]![i]!)))));
if (maxDiff !== 0) throw new Error(`one-pass and separate predictions differ by ${maxDiff}`);

const bench = new Bench({ iterations: quick ? 2 : 3, warmupIterations: 0, time: 0 });
bench.add('3 tasks, one encode', async () => void (await predictLogits(model, classifiers, examples, 8)));
bench.add('3 tasks, one after another', async () => {
  for (const c of classifiers) await predictLogits(model, [c], examples, 8);
});
await bench.run();
const [one, three] = bench.tasks.map((t) => t.result!.latency.mean);
const result = {
  adapter: gpu.adapterName,
  model: `${config.nLayer} layers × ${config.nEmbd}`,
  texts,
  tokensPerText: tokens,
  oneEncodeMs: one,
  oneAfterAnotherMs: three,
  saving: 1 - one! / three!,
};
if (process.argv.includes('--json')) console.log(JSON.stringify(result));
else {
  console.log(`adapter: ${gpu.adapterName}`);
  console.log(`3 tasks over ${texts} texts × ≤${tokens} tokens (${result.model}): one encode ${one!.toFixed(0)} ms, one after another ${three!.toFixed(0)} ms → ${(100 * result.saving).toFixed(0)}% saved`);
}
gpu.destroy();
