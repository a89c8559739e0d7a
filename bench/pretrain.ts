// Pretraining speed: tokens/s of whole optimizer updates (forward, backward through every
// weight and the tied head over the full vocabulary, global-norm clipping, AdamW) of small
// GPT-2 language models. The values of weights and tokens do not change the work, so the data
// is a fixed pseudo-random token stream.
import type { Gpu } from '../src/gpu/context.ts';
import type { GPT2Config } from '../src/gpt2/config.ts';
import { GPT2 } from '../src/gpt2/model.ts';
import { Pretrainer, TokenWindows, initialWeights, DEFAULT_PRETRAIN_SETTINGS } from '../src/gpt2/pretrain.ts';
import { timeStep } from './timing.ts';

export interface PretrainShape {
  name: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  seqLen: number;
  batchSize: number;
}

export interface PretrainResult {
  name: string;
  parameters: number;
  tokensPerStep: number;
  msPerStep: number;
  tokensPerSec: number;
  samples: number;
  /** Loss of the last timed update (a check that the step computed something finite). */
  loss: number;
}

export async function pretrainBench(gpu: Gpu, shapes: PretrainShape[], samples: number): Promise<PretrainResult[]> {
  const results: PretrainResult[] = [];
  for (const s of shapes) {
    const config: GPT2Config = { vocabSize: 50257, nPositions: s.seqLen, nEmbd: s.nEmbd, nLayer: s.nLayer, nHead: s.nHead, layerNormEps: 1e-5, activation: 'gelu_new' };
    const model = new GPT2(gpu, config, initialWeights(config, 1));
    const tokens = Uint32Array.from({ length: 64 * (s.seqLen + 1) * s.batchSize }, (_, i) => (i * 7919 + ((i * i) % 101)) % config.vocabSize);
    const trainer = new Pretrainer(model, new TokenWindows(tokens, s.seqLen, 0), { ...DEFAULT_PRETRAIN_SETTINGS, seqLen: s.seqLen, batchSize: s.batchSize, steps: 1000 });
    let loss = NaN;
    // The first update compiles the kernels.
    await trainer.trainStep();
    const timing = await timeStep(async () => {
      loss = (await trainer.trainStep()).loss;
    }, samples);
    results.push({
      name: s.name,
      parameters: model.parameters().reduce((n, p) => n + p.size, 0),
      tokensPerStep: trainer.tokensPerStep,
      msPerStep: timing.ms,
      tokensPerSec: (1000 * trainer.tokensPerStep) / timing.ms,
      samples: timing.samples,
      loss,
    });
    trainer.dispose();
    model.dispose();
  }
  return results;
}
