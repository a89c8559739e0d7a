// examples/char-transformer.ts at a tiny size: the loss falls far past what noise could do, the
// state dict has the keys PyTorch gives the same module tree (scripts/char-transformer-check.py
// builds that tree in torch, and computes our trained model's logits there from our file), the
// save → load round trip is bit-exact, and sampling is a function of its seed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensor, saveSafetensors, loadSafetensors } from '../../src/engine.ts';
import { saveSafetensorsFile } from '../../src/node/index.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { testGpu, expectClose } from '../helpers.ts';
import { CharTransformer, CharVocab, readText, train, logitsOf, sample, type CharConfig, type TrainResult } from '../../examples/char-transformer.ts';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

const text = readText();
const vocab = new CharVocab(text);
const ids = vocab.encode(text);
const config: CharConfig = { vocab: vocab.size, context: 16, dim: 16, heads: 2, layers: 2, seed: 3 };

let gpu: Gpu;
let model: CharTransformer;
let trained: TrainResult;
let dir: string;
beforeAll(async () => {
  gpu = await testGpu();
  dir = mkdtempSync(join(tmpdir(), 'char-transformer-'));
  model = new CharTransformer(gpu, config);
  trained = await train(model, ids, { steps: 60, batch: 8, window: 16, lr: 1e-2, seed: 5, every: 20 });
}, 120_000);
afterAll(() => {
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** What torch's state_dict() lists for the tree (the same modules under the same attribute names). */
const blockKeys = (i: number) =>
  ['norm1', 'attn.qkv', 'attn.out', 'norm2', 'mlp.0', 'mlp.2'].flatMap((m) => [`blocks.${i}.${m}.weight`, `blocks.${i}.${m}.bias`]);
const TORCH_KEYS = ['tokens.weight', 'positions.weight', ...blockKeys(0), ...blockKeys(1), 'norm.weight', 'norm.bias', 'head.weight', 'head.bias'];

describe('examples/char-transformer', () => {
  it('reads the shipped text: 53,093 characters, 81 distinct, encoded and decoded back', () => {
    expect(text.length).toBe(53_093);
    expect(vocab.size).toBe(81);
    expect(text.startsWith("            The Internet Wiretap 1st Online Edition of\n")).toBe(true);
    expect(vocab.decode(ids)).toBe(text);
    expect(() => vocab.encode('naïve')).toThrow(/"ï" is not one of the text's 81 characters/);
  });

  it("lists PyTorch's state-dict keys for the module tree, in torch's order, with [out, in] shapes", () => {
    const dict = model.stateDict();
    expect([...dict.keys()]).toEqual(TORCH_KEYS);
    const D = config.dim;
    expect(dict.get('tokens.weight')!.shape).toEqual([81, D]);
    expect(dict.get('positions.weight')!.shape).toEqual([16, D]);
    expect(dict.get('blocks.1.attn.qkv.weight')!.shape).toEqual([3 * D, D]);
    expect(dict.get('blocks.1.mlp.2.weight')!.shape).toEqual([D, 4 * D]);
    expect(dict.get('head.weight')!.shape).toEqual([81, D]);
  });

  it('the loss starts near ln V and falls by more than 1 nat per character in 60 steps', () => {
    const losses = trained.losses.map((l) => l.loss);
    expect(trained.losses.map((l) => l.step)).toEqual([1, 20, 40, 60]);
    // Step 1: untrained logits are nearly uniform over the 81 characters (ln 81 = 4.39).
    expect(Math.abs(losses[0]! - Math.log(81))).toBeLessThan(0.5);
    // Steps 41–60 average 320 characters a step; a model that had learned nothing stays at
    // ln 81 ± a few hundredths. Below 3.3 needs at least the characters' frequencies (whose
    // entropy is 3.07 nats).
    expect(losses.at(-1)).toBeLessThan(3.3);
    expect(losses[0]! - losses.at(-1)!).toBeGreaterThan(1);
  });

  it('saves and reloads into a fresh model bit for bit: the same logits, the same bytes', async () => {
    const bytes = await saveSafetensors(model.stateDict());
    const fresh = new CharTransformer(gpu, { ...config, seed: 99 });
    const probe = ids.subarray(100, 100 + config.context);
    const trainedLogits = await logitsOf(model, probe);
    expect(await logitsOf(fresh, probe)).not.toEqual(trainedLogits); // it has its own weights until it loads
    const dict = loadSafetensors(gpu, bytes);
    expect(fresh.loadStateDict(dict)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const t of dict.values()) t.dispose();
    expect(await logitsOf(fresh, probe)).toEqual(trainedLogits);
    expect(await saveSafetensors(fresh.stateDict())).toEqual(bytes);
    fresh.dispose();
  });

  it('samples the same text for the same seed and another for another seed', async () => {
    const options = { length: 24, temperature: 1, seed: 11 };
    const first = await sample(model, vocab, 'ABSURDITY, n.', options);
    expect(first.startsWith('ABSURDITY, n.')).toBe(true);
    expect(first).toHaveLength('ABSURDITY, n.'.length + 24);
    expect(await sample(model, vocab, 'ABSURDITY, n.', options)).toBe(first);
    expect(await sample(model, vocab, 'ABSURDITY, n.', { ...options, seed: 12 })).not.toBe(first);
  });

  it('rejects a window longer than the position table, and heads that do not divide the width', () => {
    const tooLong = tensor(gpu, new Uint32Array(17), [1, 17], { dtype: 'u32' });
    expect(() => model.forward(tooLong)).toThrow(/ids must be \[batch, T ≤ 16\], got \[1, 17\]/);
    expect(() => new CharTransformer(gpu, { ...config, heads: 3 })).toThrow(/dim 16 is not a multiple of heads 3/);
    tooLong.dispose();
  });

  describe.skipIf(!hasTorch)('in PyTorch', () => {
    it('the same tree in torch has these keys and shapes, loads our file strictly and computes our logits', async () => {
      const file = join(dir, 'model.safetensors');
      await saveSafetensorsFile(file, model.stateDict());
      const batch = [Array.from(ids.subarray(0, 16)), Array.from(ids.subarray(500, 516))];
      const run = spawnSync(PYTHON, [join(import.meta.dirname, '..', '..', 'scripts', 'char-transformer-check.py'), JSON.stringify(config), file, JSON.stringify(batch)], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(run.status, run.stderr).toBe(0);
      const torch = JSON.parse(run.stdout) as { keys: string[]; shapes: number[][]; logits: number[] };
      expect(torch.keys).toEqual(TORCH_KEYS);
      expect(torch.shapes).toEqual([...model.stateDict().values()].map((t) => t.shape));
      const ours = await Promise.all(batch.map((row) => logitsOf(model, Uint32Array.from(row))));
      expectClose('logits in torch (float64)', ours.flatMap((l) => [...l]), torch.logits, { atol: 1e-5, rtol: 1e-5 });
    }, 120_000);
  });
});
