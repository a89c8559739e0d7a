// One short training of the default task on the shipped model, run the same way in every host
// (Node in the tests, Deno through deno-training.ts): the hosts must agree on its losses.
import { GPT2, GPT2Tokenizer, loadCheckpoint, fingerprint, fit, defaultTask, DEFAULT_MODEL_DIR, DEFAULT_TRAINING, type Gpu, type ReadShipped, type Dataset } from '../../src/index.ts';

/** Examples of the default task it trains on, and of its validation set. */
export const SHORT_TRAIN = 64;
export const SHORT_VAL = 40;

function firstRows(data: Dataset, n: number): Dataset {
  return { ...data, texts: data.texts.slice(0, n), labels: data.labels.slice(0, n) };
}

export interface ShortTraining {
  adapter: string;
  losses: number[];
  accuracy: number;
}

/** One epoch (8 steps) on the first examples of the default task, with the default settings. */
export async function shortTraining(gpu: Gpu, read: ReadShipped): Promise<ShortTraining> {
  const [config, weights] = await Promise.all([read(`${DEFAULT_MODEL_DIR}/config.json`), read(`${DEFAULT_MODEL_DIR}/model.safetensors`)]);
  const checkpoint = loadCheckpoint(new TextDecoder().decode(config), weights, DEFAULT_MODEL_DIR);
  const model = new GPT2(gpu, checkpoint.config, checkpoint.tensors);
  const task = await defaultTask(DEFAULT_TRAINING.seed, read);
  const losses: number[] = [];
  let accuracy = NaN;
  const { classifier } = await fit(model, new GPT2Tokenizer(), [{ name: task.name, train: firstRows(task.train, SHORT_TRAIN), val: firstRows(task.val, SHORT_VAL) }], {
    ...DEFAULT_TRAINING,
    identity: { config: checkpoint.config, fingerprint: await fingerprint(checkpoint) },
    epochs: 1,
    onStep: ({ loss }) => void losses.push(loss),
    onValidation: ([evaluation]) => void (accuracy = evaluation!.report.accuracy!),
  });
  classifier.dispose();
  model.dispose();
  return { adapter: gpu.adapterName, losses, accuracy };
}
