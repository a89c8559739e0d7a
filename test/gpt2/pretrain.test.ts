import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { testGpu, expectClose } from '../helpers.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { GPT2, loadGPT2 } from '../../src/gpt2/model.ts';
import { parseConfig, hfConfigText, type GPT2Config } from '../../src/gpt2/config.ts';
import { assembleWeights, expectedTensors, weightArrays } from '../../src/gpt2/checkpoint.ts';
import { saveSafetensors } from '../../src/nn/state-dict.ts';
import { SafetensorsFile } from '../../src/nn/safetensors.ts';
import {
  Pretrainer, TokenWindows, initialWeights, learningRate, lmLoss, encodeOptimizerState, decodeOptimizerState,
  type PretrainSettings, type WindowSource,
} from '../../src/gpt2/pretrain.ts';

// Float64 PyTorch ground truth from scripts/pretrain-reference.py (an independent GPT-2).
const fixture = new SafetensorsFile(new Uint8Array(readFileSync(new URL('./fixtures/pretrain-reference.safetensors', import.meta.url))), 'pretrain-reference');
const refConfig: GPT2Config = parseConfig(JSON.parse(fixture.metadata.config!));
const refSettings = JSON.parse(fixture.metadata.settings!) as PretrainSettings;
const refLosses = JSON.parse(fixture.metadata.losses!) as number[];
const refNorms = JSON.parse(fixture.metadata.grad_norms!) as number[];
const refWeights = (prefix: string) => assembleWeights(refConfig, (name) => fixture.read(`${prefix}.${name}`));

/** The fixture's micro-batches, in order. */
const fixtureBatches: WindowSource = {
  seqLen: refSettings.seqLen,
  batch: (j, batchSize) => {
    const ids = Uint32Array.from(fixture.read(`batch.${j}`));
    expect(ids.length).toBe(batchSize * (refSettings.seqLen + 1));
    return ids;
  },
};

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/** Every weight of the model as the host reads it, in state-dict order. */
const stateArrays = (model: GPT2) => Promise.all([...model.stateDict().values()].map((t) => t.readF32()));

/** The weight class of a tensor name, for reporting: h.0.attn.c_attn.weight → attn.c_attn.weight. */
const weightClass = (name: string) => name.replace(/^h\.\d+\./, '');

describe('pretraining against float64 PyTorch', () => {
  it('the next-token loss and the gradient of every weight match (within 1e-4)', async () => {
    const model = new GPT2(gpu, refConfig, refWeights('init'));
    const params = [...model.namedParameters()].map(([name, tensor]) => ({ name, tensor }));
    for (const p of params) p.tensor.requiresGrad = true;
    const loss = lmLoss(model, fixtureBatches.batch(0, refSettings.batchSize), refSettings.seqLen);
    loss.backward();
    const worst = new Map<string, number>();
    for (const { name, tensor } of params) {
      const got = await tensor.grad!.readF32();
      const want = fixture.read(`grad.${name}`);
      expectClose(`d loss / d ${name}`, got, want, { atol: 1e-4, rtol: 0 });
      let max = 0;
      got.forEach((g, i) => (max = Math.max(max, Math.abs(g - want[i]!))));
      worst.set(weightClass(name), Math.max(worst.get(weightClass(name)) ?? 0, max));
    }
    expect(params.map((p) => p.name)).toEqual(expectedTensors(refConfig).map(([n]) => n));
    const keyBias = (await params.find((p) => p.name === 'h.0.attn.c_attn.bias')!.tensor.grad!.readF32()).subarray(refConfig.nEmbd, 2 * refConfig.nEmbd);
    expect(Math.max(...keyBias.map(Math.abs))).toBeLessThan(1e-6);
    console.log(`gradient max |error| by weight class: ${[...worst].map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
    expectClose('next-token loss of micro-batch 0', await loss.readF32(), [JSON.parse(fixture.metadata.loss0!) as number], { atol: 1e-5, rtol: 0 });
    loss.dispose();
    model.dispose();
  });

  it('five AdamW updates (warm-up + cosine, accumulation 2, clipping, decay on matrices only) give the same losses and weights', async () => {
    const model = new GPT2(gpu, refConfig, refWeights('init'));
    const trainer = new Pretrainer(model, fixtureBatches, refSettings);
    const losses: number[] = [];
    const norms: number[] = [];
    for (let s = 0; s < refSettings.steps; s++) {
      const r = await trainer.trainStep();
      expect(r.step).toBe(s + 1);
      expect(r.lr).toBeCloseTo(learningRate(s, refSettings), 12);
      losses.push(r.loss);
      norms.push(r.gradNorm);
    }
    console.log(`AdamW losses: engine ${losses.map((l) => l.toFixed(6)).join(' ')}; torch ${refLosses.map((l) => l.toFixed(6)).join(' ')}`);
    expectClose('losses of 5 updates', losses, refLosses, { atol: 1e-4, rtol: 0 });
    expectClose('global gradient norms before clipping', norms, refNorms, { atol: 1e-4, rtol: 0 });
    // Clipping was in force at every update (norms above clipNorm), so a wrong clip shows in the weights.
    expect(Math.min(...refNorms)).toBeGreaterThan(refSettings.clipNorm);
    const got = await stateArrays(model);
    const want = weightArrays(refWeights('final'));
    const C = refConfig.nEmbd;
    expectedTensors(refConfig).forEach(([name], i) => {
      // The key bias adds q·b to all of a query's scores alike, which softmax ignores: its true
      // gradient is 0, both sides hold rounding noise there, and Adam scales noise up to lr-sized
      // steps. Only its query and value thirds are comparable.
      const keep = name.endsWith('c_attn.bias') ? (_: number, j: number) => j < C || j >= 2 * C : () => true;
      expectClose(`${name} after 5 updates`, got[i]!.filter(keep), want[i]!.filter(keep), { atol: 1e-4, rtol: 0 });
    });
    trainer.dispose();
    model.dispose();
  });
});

describe('a pretraining run resumed from its checkpoint', () => {
  it('continues bit for bit: weights and optimizer saved as bytes, reloaded, two more updates', async () => {
    const config = parseConfig({ vocab_size: 97, n_positions: 12, n_embd: 16, n_layer: 2, n_head: 2 });
    const settings: PretrainSettings = { ...refSettings, seqLen: 12, batchSize: 2, accumulation: 2, steps: 4, warmupSteps: 1, seed: 5 };
    const tokens = Uint32Array.from({ length: 400 }, (_, i) => (i * 37 + ((i * i) % 11)) % 97);
    const straight = new GPT2(gpu, config, initialWeights(config, 5));
    const t1 = new Pretrainer(straight, new TokenWindows(tokens, 12, 5), settings);
    const straightLosses = [];
    for (let s = 0; s < 4; s++) straightLosses.push((await t1.trainStep()).loss);

    const first = new GPT2(gpu, config, initialWeights(config, 5));
    const t2 = new Pretrainer(first, new TokenWindows(tokens, 12, 5), settings);
    const resumedLosses = [(await t2.trainStep()).loss, (await t2.trainStep()).loss];
    const safetensors = await saveSafetensors(first.stateDict());
    const names = [...first.namedParameters()].map(([name, t]) => ({ name, size: t.size }));
    const optimizer = encodeOptimizerState(names.map((p) => p.name), await t2.state());
    t2.dispose();
    first.dispose();

    const { model: reloaded } = await loadGPT2(gpu, hfConfigText(config), safetensors, 'saved');
    const t3 = new Pretrainer(reloaded, new TokenWindows(tokens, 12, 5), settings);
    t3.loadState(decodeOptimizerState(optimizer, names, 'optimizer'));
    expect(t3.step).toBe(2);
    resumedLosses.push((await t3.trainStep()).loss, (await t3.trainStep()).loss);
    expect(resumedLosses).toEqual(straightLosses);
    const a = await stateArrays(straight);
    const b = await stateArrays(reloaded);
    a.forEach((w, i) => expect(Buffer.from(b[i]!.buffer).equals(Buffer.from(w.buffer)), `weight ${i} bit-identical`).toBe(true));
    t1.dispose();
    t3.dispose();
    straight.dispose();
    reloaded.dispose();
  });

  it('refuses optimizer state written for another model', () => {
    const bytes = encodeOptimizerState(['a'], { step: 3, adam: { step: 3, m: [new Float32Array(4)], v: [new Float32Array(4)] } });
    expect(() => decodeOptimizerState(bytes, [{ name: 'a', size: 5 }], 'opt')).toThrow(/m\.a has 4 values, the parameter has 5/);
    expect(() => decodeOptimizerState(bytes, [{ name: 'b', size: 4 }], 'opt')).toThrow(/missing m\.b/);
    expect(decodeOptimizerState(bytes, [{ name: 'a', size: 4 }], 'opt').step).toBe(3);
  });
});

describe('pretraining pieces', () => {
  it('GPT-2 initialisation: N(0, 0.02²), residual projections scaled by 1/√(2·n_layer), biases 0, layer norms 1/0', () => {
    const config = parseConfig({ vocab_size: 500, n_positions: 64, n_embd: 64, n_layer: 3, n_head: 4 });
    const w = initialWeights(config, 1);
    const std = (a: Float32Array) => {
      let s = 0;
      let s2 = 0;
      for (const x of a) {
        s += x;
        s2 += x * x;
      }
      return { mean: s / a.length, std: Math.sqrt(s2 / a.length - (s / a.length) ** 2) };
    };
    for (const a of [w.wte, w.wpe, w.blocks[0]!.attn.cAttnW, w.blocks[2]!.mlp.cFcW]) {
      expect(Math.abs(std(a).mean)).toBeLessThan(0.002);
      expect(std(a).std).toBeCloseTo(0.02, 3);
    }
    for (const a of [w.blocks[1]!.attn.cProjW, w.blocks[1]!.mlp.cProjW]) expect(std(a).std).toBeCloseTo(0.02 / Math.sqrt(6), 3);
    expect(w.blocks.every((b) => b.attn.cAttnB.every((x) => x === 0) && b.mlp.cProjB.every((x) => x === 0) && b.ln1.weight.every((x) => x === 1) && b.ln2.bias.every((x) => x === 0))).toBe(true);
    expect(w.lnF.weight.every((x) => x === 1) && w.lnF.bias.every((x) => x === 0)).toBe(true);
    expect(weightArrays(initialWeights(config, 1))).toEqual(weightArrays(w));
    expect(initialWeights(config, 2).wte).not.toEqual(w.wte);
  });

  it('learning rate: linear warm-up, then a cosine from lr to minLr at the last update', () => {
    const s = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, steps: 110 };
    expect(learningRate(0, s)).toBeCloseTo(1e-4, 15);
    expect(learningRate(9, s)).toBeCloseTo(1e-3, 15);
    expect(learningRate(10, s)).toBeCloseTo(1e-3, 15);
    expect(learningRate(59.5, s)).toBeCloseTo(5.5e-4, 15);
    expect(learningRate(109, s)).toBeCloseTo(1e-4, 15);
    expect(learningRate(500, s)).toBeCloseTo(1e-4, 15);
    for (let t = 10; t < 109; t++) expect(learningRate(t + 1, s)).toBeLessThan(learningRate(t, s));
  });

  it('token windows: every epoch visits each window once, in an order fixed by the seed', () => {
    const tokens = Uint32Array.from({ length: 41 }, (_, i) => i);
    const w = new TokenWindows(tokens, 4, 3);
    expect(w.count).toBe(10);
    const starts = (j0: number) => Array.from({ length: 5 }, (_, j) => [...w.batch(j0 + j, 2)].filter((_, i) => i % 5 === 0)).flat();
    const epoch0 = starts(0);
    const epoch1 = starts(5);
    expect([...epoch0].sort((a, b) => a - b)).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 32, 36]);
    expect([...epoch1].sort((a, b) => a - b)).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 32, 36]);
    expect(epoch1).not.toEqual(epoch0);
    // A window is T + 1 consecutive tokens; the same j always gives the same batch.
    expect([...w.batch(3, 1)]).toEqual([...new TokenWindows(tokens, 4, 3).batch(3, 1)]);
    const b = w.batch(7, 1);
    expect([...b]).toEqual([b[0]!, b[0]! + 1, b[0]! + 2, b[0]! + 3, b[0]! + 4]);
    expect(() => new TokenWindows(tokens.subarray(0, 4), 4, 0)).toThrow(/no window/);
  });
});
