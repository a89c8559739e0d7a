// The prompt + head training step alone, run on any checkout of this repository: how the step's
// host time before and after a change is measured side by side (the issue's "record the before
// figure from the parent commit in the same session"). It loads the engine from ROOT, so it
// builds the step from the APIs every commit since the method landed has (PromptClassifier,
// Adam, batchLoss, encode), not from bench/pipeline.ts's promptTrainer, which older trees lack.
//
//   ROOT=/path/to/other/checkout GPT2_PROMPT_BACKEND=vulkan node --import tsx bench/step-ab.ts [--capture] [--encode]
//
// GPT-2 small's shape with random weights, 12 layers, batch 8, P 5, past 128; 7 timed steps after
// 2 warm-ups, each started with the GPU idle. Prints the medians of the process's CPU time, the
// main thread's own, and the wall time until the step's work is encoded, and the total. With
// --encode, first the median wall time of encoding 2 texts of 128 tokens until the GPU is done
// (3 timed, after the batch of 8 the step needs has warmed the kernels): GPT-2's forward alone.
import { resolve } from 'node:path';
import { median, timeSteps } from './overhead.ts';

const root = resolve(process.env.ROOT ?? '.');
const capture = process.argv.includes('--capture');
const timeEncode = process.argv.includes('--encode');
const BATCH = 8;
const PAST = 128;
const STEPS = 7;
const ENCODES = 3;
const ENCODE_BATCH = 2;

const { openGpu } = await import(`${root}/src/node/device.js`);
const { tidy } = await import(`${root}/src/engine.js`);
const { Adam } = await import(`${root}/src/engine.js`);
const { PromptClassifier, initialParams } = await import(`${root}/src/prompt/classifier.js`);
const { encode, disposePast, batchLoss } = await import(`${root}/src/prompt/train.js`);
const { seededRandom } = await import(`${root}/src/util/random.js`);
const { GPT2_EOS_ID } = await import(`${root}/src/gpt2/tokenizer.js`);
const { randomModel } = await import(`${root}/bench/pipeline.js`);

const gpu = await openGpu();
const bench = randomModel(gpu, 12);
const { model } = bench;
const random = seededRandom(1);
const ids = new Uint32Array(BATCH * PAST).map(() => Math.floor(random() * GPT2_EOS_ID));
const batch = { ids, lengths: new Uint32Array(BATCH).fill(PAST), width: PAST };
const past = encode(model, batch);
await gpu.sync();
const encodeMs: number[] = [];
const encodeBatch = { ids: ids.slice(0, ENCODE_BATCH * PAST), lengths: new Uint32Array(ENCODE_BATCH).fill(PAST), width: PAST };
for (let i = 0; timeEncode && i < ENCODES; i++) {
  const start = performance.now();
  const again = encode(model, encodeBatch);
  await gpu.sync();
  encodeMs.push(performance.now() - start);
  disposePast(again);
}
const tasks = [{ name: 'bench', kind: 'single', labelNames: ['negative', 'positive'], start: 0 }];
const classifier = new PromptClassifier(model, initialParams(bench.promptInit, model.config.nEmbd, 2, seededRandom(9)), tasks);
const optimizer = new Adam(classifier.parameters(), { lr: 1e-3 });
const examples = Array.from({ length: BATCH }, (_, b) => ({ tokens: new Uint32Array(PAST), task: 0, label: b % 2, targets: null }));
const indices = examples.map((_, i) => i);
const loss = () => {
  const l = batchLoss(classifier.logits(model, past), examples, indices, classifier.tasks, [{}]);
  l.backward();
  return l;
};

let encodeStep = () => {
  const l = tidy(loss);
  optimizer.step();
  optimizer.zeroGrad();
  return l;
};
if (capture) {
  const { CapturedStep } = await import(`${root}/src/engine.js`);
  const step = new CapturedStep(gpu, () => {
    const l = loss();
    optimizer.update();
    optimizer.zeroGrad();
    return l;
  });
  encodeStep = () => {
    optimizer.prepare();
    return step.run();
  };
}

const times = await timeSteps(gpu, encodeStep, STEPS, 'step');
const ms = (xs: number[]) => (xs.length ? median(xs).toFixed(2) : '–');
console.log(
  `${root} ${timeEncode ? `encode B${ENCODE_BATCH}×${PAST}: ${median(encodeMs).toFixed(0)} ms (median of ${ENCODES}); ` : ''}` +
    `${capture ? 'captured' : 'plain'} step: host CPU ${ms(times.hostCpu)} ms, main thread ${ms(times.hostThread)} ms, ` +
    `host wall ${ms(times.host)} ms, total ${ms(times.total)} ms (medians of ${STEPS}; ${times.dispatches} dispatches)`,
);
process.exit(0);
