// Compares the engine with a reference fixture (the format of ../shared/fixtures/tiny-gpt2):
// hidden states, cached keys/values, prompt + head logits, first-step gradients, and three
// Adam steps for both losses. Any layer/head/width/position counts.
import type { Gpu } from '../gpu/context.ts';
import { tidy } from '../tensor/tensor.ts';
import { Adam } from '../optim/adam.ts';
import { loadGPT2, type GPT2 } from '../gpt2/model.ts';
import { parseSafetensors, type SafetensorsFile } from '../nn/safetensors.ts';
import { PromptClassifier, type Task } from './classifier.ts';
import { batchLoss, disposePast, encode, type Example } from './train.ts';

export interface GoldenResult {
  /** Max abs error per compared tensor. */
  errors: Record<string, number>;
  /** Max abs reference value per tensor (the scale errors are judged against). */
  scales: Record<string, number>;
  /** Tensors whose error exceeds tolerance × max(1, scale). */
  failed: string[];
  /** The engine's losses over the three Adam steps, per loss ('ce', 'bce'): hosts compare these. */
  losses: Record<string, number[]>;
}

/** Relative to max(1, |reference|max): f32 through a few layers lands near 1e-6..1e-5. */
export const GOLDEN_TOLERANCE = 1e-4;

/** Runs `model` (the fixture's weights; the caller keeps and disposes it) on the fixture's inputs. */
export async function compareWithFixture(model: GPT2, expected: SafetensorsFile): Promise<GoldenResult> {
  const errors: Record<string, number> = {};
  const scales: Record<string, number> = {};
  const trainingLosses: Record<string, number[]> = {};
  const record = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, include: (i: number) => boolean = () => true) => {
    if (got.length !== want.length) throw new Error(`${name}: engine gave ${got.length} values, fixture has ${want.length}`);
    let err = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      if (!include(i)) continue;
      const e = Math.abs(got[i]! - want[i]!);
      err = Number.isNaN(e) ? NaN : Math.max(err, e);
      scale = Math.max(scale, Math.abs(want[i]!));
    }
    errors[name] = err;
    scales[name] = scale;
  };

  const { config } = model;
  const [B, T] = expected.entry('input_ids').shape as [number, number];
  const ids = Uint32Array.from(expected.read('input_ids'));
  const mask = expected.read('attention_mask');
  const lengths = Uint32Array.from({ length: B }, (_, b) => mask.subarray(b * T, (b + 1) * T).reduce((s, v) => s + v, 0));
  const C = config.nEmbd;
  const H = config.nHead;
  const D = C / H;

  // Hidden states and the past, at real positions only.
  const { past, hidden } = tidy(() => model.encodePast({ ids, lengths, width: T }));
  record('hidden', await hidden.readF32(), expected.read('hidden'), (i) => mask[Math.floor(i / C)] === 1);
  hidden.dispose();
  const realPast = (i: number) => {
    const b = Math.floor(i / (H * T * D));
    const t = Math.floor(i / D) % T;
    return t < lengths[b]!;
  };
  record('past_k_layer0', await past.layers[0]!.k.readF32(), expected.read('past_k_layer0'), realPast);
  record('past_v_last', await past.layers.at(-1)!.v.readF32(), expected.read('past_v_last'), realPast);
  disposePast(past);

  for (const tag of ['ce', 'bce'] as const) {
    if (!expected.has(`${tag}.logits`)) continue;
    const K = expected.entry(`${tag}.head_bias`).shape[0]!;
    const task: Task = { name: tag, kind: tag === 'ce' ? 'single' : 'multi', labelNames: Array.from({ length: K }, (_, k) => `label${k}`), start: 0 };
    const classifier = new PromptClassifier(
      model,
      { prompt: expected.read('prompt'), headWeight: expected.read(`${tag}.head_weight`), headBias: expected.read(`${tag}.head_bias`) },
      [task],
    );
    const labels = expected.read(`${tag}.labels`);
    const examples: Example[] = Array.from({ length: B }, (_, b) => ({
      tokens: ids.subarray(b * T, b * T + lengths[b]!),
      task: 0,
      label: tag === 'ce' ? labels[b]! : 0,
      targets: tag === 'bce' ? labels.subarray(b * K, (b + 1) * K) : null,
    }));
    const indices = examples.map((_, b) => b);
    const losses = tag === 'bce' ? [{ posWeight: expected.read('bce.pos_weight') }] : [{}];
    const optimizer = new Adam(classifier.parameters(), { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    const batchPast = encode(model, { ids, lengths, width: T });
    const stepLosses: number[] = [];
    for (let step = 0; step < 3; step++) {
      const { logits, loss } = tidy(() => {
        const l = classifier.logits(model, batchPast);
        const value = batchLoss(l, examples, indices, [task], losses);
        value.backward();
        return { logits: l, loss: value };
      });
      if (step === 0) {
        record(`${tag}.logits`, await logits.readF32(), expected.read(`${tag}.logits`));
        record(`${tag}.grad_prompt`, await classifier.prompt.grad!.readF32(), expected.read(`${tag}.grad_prompt`));
        record(`${tag}.grad_head_weight`, await classifier.headWeight.grad!.readF32(), expected.read(`${tag}.grad_head_weight`));
        record(`${tag}.grad_head_bias`, await classifier.headBias.grad!.readF32(), expected.read(`${tag}.grad_head_bias`));
      }
      stepLosses.push((await loss.readF32())[0]!);
      logits.dispose();
      loss.dispose();
      optimizer.step();
      optimizer.zeroGrad();
    }
    disposePast(batchPast);
    trainingLosses[tag] = stepLosses;
    record(`${tag}.losses`, stepLosses, expected.read(`${tag}.losses`));
    const after = await classifier.params();
    record(`${tag}.prompt_after`, after.prompt, expected.read(`${tag}.prompt_after`));
    record(`${tag}.head_weight_after`, after.headWeight, expected.read(`${tag}.head_weight_after`));
    record(`${tag}.head_bias_after`, after.headBias, expected.read(`${tag}.head_bias_after`));
    optimizer.dispose();
    classifier.dispose();
  }
  const failed = Object.keys(errors).filter((k) => !(errors[k]! <= GOLDEN_TOLERANCE * Math.max(1, scales[k]!)));
  return { errors, scales, failed, losses: trainingLosses };
}

/** Reads one file of a fixture directory by name: config.json, model.safetensors, expected.safetensors. */
export type ReadFixture = (name: string) => Promise<Uint8Array>;

/** The line `npm run golden` (and its Deno and browser twins) prints. */
export interface GoldenReport {
  fixture: string;
  adapter: string;
  tolerance: number;
  maxAbsError: Record<string, number>;
  failed: string[];
  losses: Record<string, number[]>;
}

/** Compares the engine on `gpu` with the fixture `read` serves; `fixture` names it in the report. */
export async function goldenReport(gpu: Gpu, fixture: string, read: ReadFixture): Promise<GoldenReport> {
  const [config, weights, reference] = await Promise.all(['config.json', 'model.safetensors', 'expected.safetensors'].map(read));
  const expected = parseSafetensors(reference!, `${fixture}/expected.safetensors`);
  const { model } = await loadGPT2(gpu, new TextDecoder().decode(config), weights!, `${fixture}/model.safetensors`);
  let result: GoldenResult;
  try {
    result = await compareWithFixture(model, expected);
  } finally {
    model.dispose();
  }
  return { fixture, adapter: gpu.adapterName, tolerance: GOLDEN_TOLERANCE, maxAbsError: result.errors, failed: result.failed, losses: result.losses };
}
