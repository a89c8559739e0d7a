// GPT-2 as an nn.Module: its state dict is Hugging Face GPT2Model's (names, order, shapes:
// test/gpt2/fixtures/hf-gpt2-keys.json, written from a torch module tree by
// scripts/gpt2-state-dict-keys.py), saving and loading round-trip bit for bit, the golden
// fixture loads through loadSafetensors + loadStateDict, and the model id is unchanged.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { testGpu, expectClose } from '../helpers.ts';
import { randomWeights } from './reference.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { noGrad, tensor, tidy } from '../../src/tensor/tensor.ts';
import { Conv1D, GPT2, loadGPT2 } from '../../src/gpt2/model.ts';
import { parseConfig, hfConfigText, type GPT2Config } from '../../src/gpt2/config.ts';
import { encodeModel, expectedTensors, fingerprint, weightArrays } from '../../src/gpt2/checkpoint.ts';
import { encodeSafetensors, numel, parseSafetensors, type TensorToWrite } from '../../src/nn/safetensors.ts';
import { loadSafetensors, saveSafetensors } from '../../src/nn/state-dict.ts';
import { readCheckpoint } from '../../src/node/checkpoint-file.ts';
import { openRunDirectory, runPretraining } from '../../src/node/pretrain-run.ts';
import { DEFAULT_PRETRAIN_SETTINGS } from '../../src/gpt2/pretrain.ts';
import { compareWithFixture } from '../../src/prompt/golden.ts';
import { seededRandom } from '../../src/util/random.ts';

const TINY = fileURLToPath(new URL('../../../shared/fixtures/tiny-gpt2', import.meta.url));
const SMALL = fileURLToPath(new URL('../../weights/small-gpt2', import.meta.url));
const read = (dir: string, file: string) => new Uint8Array(readFileSync(`${dir}/${file}`));

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const small: GPT2Config = { vocabSize: 61, nPositions: 12, nEmbd: 24, nLayer: 2, nHead: 3, layerNormEps: 1e-5, activation: 'gelu_new' };

/** Bitwise equality of two float32 arrays. */
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('GPT2 state dict', () => {
  it("has Hugging Face GPT2Model's keys, order and shapes (Conv1D weights [in, out]); parameters are frozen", () => {
    const hf = JSON.parse(readFileSync(new URL('./fixtures/hf-gpt2-keys.json', import.meta.url), 'utf8')) as { config: object; state_dict: [string, number[]][] };
    const model = new GPT2(gpu, parseConfig(hf.config));
    expect([...model.stateDict()].map(([key, t]) => [key, [...t.shape]])).toEqual(hf.state_dict);
    expect([...model.namedParameters()].map(([key]) => key)).toEqual(hf.state_dict.map(([key]) => key));
    expect([...model.namedModules()].map(([name]) => name)).toEqual([
      '', 'wte', 'wpe', 'h',
      ...[0, 1].flatMap((i) => [`h.${i}`, `h.${i}.ln_1`, `h.${i}.attn`, `h.${i}.attn.c_attn`, `h.${i}.attn.c_proj`, `h.${i}.ln_2`, `h.${i}.mlp`, `h.${i}.mlp.c_fc`, `h.${i}.mlp.c_proj`]),
      'ln_f',
    ]);
    expect(model.parameters().some((p) => p.requiresGrad)).toBe(false);
    // The host-side list of GPT-2's tensors (weights info, encodeModel) is the same list.
    expect(expectedTensors(model.config)).toEqual(hf.state_dict);
    model.dispose();
  });

  it('Conv1D is x·W + b with W [in, out], against float64 (sizes off the tile grid)', async () => {
    const conv = new Conv1D(gpu, 19, 37);
    const random = seededRandom(4);
    const w = Float32Array.from({ length: 19 * 37 }, () => random() - 0.5);
    const b = Float32Array.from({ length: 37 }, () => random() - 0.5);
    const x = Float32Array.from({ length: 2 * 5 * 19 }, () => random() - 0.5);
    conv.loadStateDict(new Map([['weight', tensor(gpu, w, [19, 37])], ['bias', tensor(gpu, b, [37])]]));
    const y = noGrad(() => conv.forward(tensor(gpu, x, [2, 5, 19])));
    expect(y.shape).toEqual([2, 5, 37]);
    const want = new Float64Array(10 * 37);
    for (let n = 0; n < 10; n++) for (let o = 0; o < 37; o++) {
      let s = b[o]!;
      for (let i = 0; i < 19; i++) s += x[n * 19 + i]! * w[i * 37 + o]!;
      want[n * 37 + o] = s;
    }
    expectClose('Conv1D', await y.readF32(), want, { atol: 1e-5, rtol: 1e-5 });
    expect(() => conv.forward(tensor(gpu, x, [10, 19]).reshape([19, 10]))).toThrow('Conv1D(19, 37): input [19, 10] must end in 19');
    conv.dispose();
  });

  it("saves transformers' file byte for byte (encodeModel's), and loads it back bit for bit", async () => {
    const weights = randomWeights(small, 8, 0.3);
    const model = new GPT2(gpu, small, weights);
    const bytes = await saveSafetensors(model.stateDict(), { metadata: { format: 'pt', step: '7' } });
    expect(Buffer.from(bytes).equals(Buffer.from(encodeModel(small, weights, 'F32', { step: '7' }).safetensors))).toBe(true);
    const { model: loaded, plan } = await loadGPT2(gpu, hfConfigText(small), bytes, 'saved');
    expect(plan.dtypes).toEqual(['F32']);
    const want = weightArrays(weights);
    let i = 0;
    for (const [key, t] of loaded.stateDict()) expect(sameBits(await t.readF32(), want[i++]!), key).toBe(true);
    expect(i).toBe(want.length);
    // The same model: identical hidden states.
    const batch = { ids: Uint32Array.of(5, 60, 0, 33, 7, 7), lengths: Uint32Array.of(3, 2), width: 3 };
    const hidden = async (m: GPT2) => (await noGrad(() => tidy(() => m.encodePast(batch).hidden)).readF32());
    expect(sameBits(await hidden(loaded), await hidden(model))).toBe(true);
    model.dispose();
    loaded.dispose();
  });

  it('the golden fixture loads through loadSafetensors + loadStateDict and gives the golden results', async () => {
    const config = parseConfig(new TextDecoder().decode(read(TINY, 'config.json')));
    const model = new GPT2(gpu, config);
    const dict = loadSafetensors(gpu, read(TINY, 'model.safetensors'));
    // Saved by an older transformers, with the causal-mask buffers, which loading ignores as transformers does.
    expect([...dict.keys()].filter((k) => /\.attn\.bias$/.test(k))).toEqual(['h.0.attn.bias', 'h.1.attn.bias']);
    expect(model.loadStateDict(dict)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const t of dict.values()) t.dispose();
    const result = await compareWithFixture(model, parseSafetensors(read(TINY, 'expected.safetensors')));
    expect(result.failed).toEqual([]);
    expect(result.errors.hidden).toBeLessThan(1e-4);
    // Host weights uploaded directly give the same model, bit for bit.
    const host = new GPT2(gpu, config, (await readCheckpoint(TINY)).tensors);
    for (const [key, t] of host.stateDict()) expect(sameBits(await t.readF32(), await model.stateDict().get(key)!.readF32()), key).toBe(true);
    host.dispose();
    model.dispose();
  });

  it('fingerprints (the model id of prompt files) are the values the base commit computed', async () => {
    // Computed at 9706d59 with fingerprint(await readCheckpoint(dir)).
    const base = new Map([[TINY, '6c999fe3a42b5a31'], [SMALL, '2759fc30640f36a2']]);
    for (const [dir, id] of base) {
      expect(await fingerprint(await readCheckpoint(dir)), dir).toBe(id);
      const loaded = await loadGPT2(gpu, new TextDecoder().decode(read(dir, 'config.json')), read(dir, 'model.safetensors'), dir);
      expect(loaded.fingerprint, `${dir} (F32 and F16 files, sampled from the file)`).toBe(id);
      loaded.model.dispose();
    }
  });
});

describe('loading errors', () => {
  /** A GPT-2 file of `small` with `transform` applied to its tensors. */
  const file = (transform: (t: Map<string, TensorToWrite>) => void = () => {}) => {
    const random = seededRandom(3);
    const tensors = new Map<string, TensorToWrite>();
    for (const [name, shape] of expectedTensors(small)) tensors.set(name, { dtype: 'F32', shape, data: Float32Array.from({ length: numel(shape) }, () => random()) });
    transform(tensors);
    return encodeSafetensors(tensors);
  };
  const config = JSON.parse(hfConfigText(small)) as Record<string, unknown>;

  it('loadStateDict names every missing, unexpected and mis-shaped key in one error and copies nothing', async () => {
    const model = new GPT2(gpu, small, randomWeights(small, 1));
    const before = await model.wpe.weight.readF32();
    const dict = loadSafetensors(gpu, file((t) => {
      t.delete('h.1.mlp.c_fc.bias');
      t.set('lm_head.weight', t.get('wte.weight')!);
      t.set('h.0.attn.c_proj.weight', { dtype: 'F32', shape: [24, 25], data: new Float32Array(600) });
    }));
    expect(() => model.loadStateDict(dict)).toThrow(
      'Error(s) in loading state_dict for GPT2:\n\tMissing key(s) in state_dict: "h.1.mlp.c_fc.bias".\n\tUnexpected key(s) in state_dict: "lm_head.weight".\n\t' +
        'size mismatch for h.0.attn.c_proj.weight: copying a param with shape [24, 25] from checkpoint, the shape in current model is [24, 24].',
    );
    expect(sameBits(await model.wpe.weight.readF32(), before)).toBe(true);
    for (const t of dict.values()) t.dispose();
    model.dispose();
  });

  it('loadGPT2 checks the config, keys and shapes against the header first, skips the tied head and mask buffers', async () => {
    const load = (c: object, bytes: Uint8Array) => loadGPT2(gpu, c, bytes, 'm');
    await expect(load({ ...config, vocab_size: 50257 }, file())).rejects.toThrow('m: wte.weight has 61 rows but config vocab_size is 50257');
    await expect(load({ ...config, n_layer: 3 }, file())).rejects.toThrow('m: config n_layer is 3 but the checkpoint has tensors for 2 layers');
    await expect(load(config, file((t) => t.delete('ln_f.bias')))).rejects.toThrow('m: missing tensor ln_f.bias (nor transformer.ln_f.bias)');
    await expect(load(config, file((t) => t.set('h.1.attn.c_attn.weight', { dtype: 'F32', shape: [72, 24], data: new Float32Array(72 * 24) })))).rejects.toThrow(
      'm: tensor h.1.attn.c_attn.weight has shape [72, 24], expected [24, 72]',
    );
    // GPT2LMHeadModel's file: prefixed keys, the tied head, old mask buffers, and an unknown tensor.
    const plain = file();
    const lmHead = file((t) => {
      for (const [k, v] of [...t]) {
        t.delete(k);
        t.set(`transformer.${k}`, v);
      }
      t.set('transformer.h.0.attn.bias', { dtype: 'F32', shape: [1, 1, 12, 12], data: new Float32Array(144) });
      t.set('transformer.h.1.attn.masked_bias', { dtype: 'F32', shape: [], data: [-1e4] });
      t.set('lm_head.weight', t.get('transformer.wte.weight')!);
      t.set('score.weight', { dtype: 'F32', shape: [2, 24], data: new Float32Array(48) });
    });
    const a = await load(config, plain);
    const b = await load(config, lmHead);
    expect(b.plan.ignored).toEqual(['score.weight']);
    expect(b.fingerprint).toBe(a.fingerprint);
    for (const [key, t] of a.model.stateDict()) expect(sameBits(await t.readF32(), await b.model.stateDict().get(key)!.readF32()), key).toBe(true);
    a.model.dispose();
    b.model.dispose();
  });

  it("GPT-2 small's wte loads into its row-range views, and a gradient through several views is refused", async () => {
    const config: GPT2Config = { vocabSize: 50257, nPositions: 4, nEmbd: 768, nLayer: 1, nHead: 12, layerNormEps: 1e-5, activation: 'gelu_new' };
    const model = new GPT2(gpu, config);
    // Row r holds r + c/1024 (exact in f32), so a row read from any view says where it came from.
    const values = new Float32Array(50257 * 768);
    for (let r = 0; r < 50257; r++) for (let c = 0; c < 768; c++) values[r * 768 + c] = r + c / 1024;
    const source = tensor(gpu, values, [50257, 768]);
    const rest = [...model.stateDict()].filter(([key]) => key !== 'wte.weight').map(([key, t]) => [key, t] as const);
    model.loadStateDict(new Map([['wte.weight', source], ...rest]));
    source.dispose();
    const shards = model.wte.shards;
    const ids = Uint32Array.from([0, shards[0]!.shape[0]! - 1, shards[0]!.shape[0]!, 25128, 50256]);
    const rows = await noGrad(() => model.wte.forward(ids)).readF32();
    ids.forEach((id, i) => expect(sameBits(rows.subarray(i * 768, (i + 1) * 768), values.subarray(id * 768, (id + 1) * 768)), `row ${id}`).toBe(true));
    if (shards.length > 1) {
      model.wte.weight.requiresGrad = true;
      expect(() => model.wte.forward(ids)).toThrow(`wte.weight: a table in ${shards.length} row ranges takes no gradient`);
    }
    model.dispose();
  });
});

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

describe.skipIf(!hasTorch)('what pretrain writes, in PyTorch', () => {
  it("loads strictly into Hugging Face GPT2Model's module tree and computes our hidden states there", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpt2-pretrain-'));
    try {
      const tokens = Uint32Array.from({ length: 200 }, (_, i) => (i * 37 + ((i * i) % 11)) % small.vocabSize);
      const settings = { ...DEFAULT_PRETRAIN_SETTINGS, seqLen: 8, batchSize: 2, steps: 2, warmupSteps: 1, seed: 3 };
      const run = await openRunDirectory(dir);
      await runPretraining(gpu, run, { settings, config: small, tokens, data: { path: 'tokens', textColumn: 'text', texts: 1, tokens: tokens.length }, saveEverySeconds: 1e9 });
      const ids = [5, 60, 0, 33, 7, 7, 12];
      const torch = spawnSync(PYTHON, [join(import.meta.dirname, '..', '..', 'scripts', 'gpt2-state-dict-keys.py'), '--check', dir, ids.join(',')], { encoding: 'utf8', timeout: 120_000 });
      expect(torch.status, torch.stderr).toBe(0);
      const result = JSON.parse(torch.stdout) as { keys: string[]; metadata: Record<string, string>; hidden: number[] };
      expect(result.keys).toEqual(expectedTensors(small).map(([key]) => key));
      expect(result.metadata).toEqual({ format: 'pt', step: '2' });
      const { model } = await loadGPT2(gpu, readFileSync(join(dir, 'config.json'), 'utf8'), read(dir, 'model.safetensors'), dir);
      const batch = { ids: Uint32Array.from(ids), lengths: Uint32Array.of(ids.length), width: ids.length };
      const hidden = await noGrad(() => tidy(() => model.encodePast(batch).hidden)).readF32();
      expectClose('hidden states of the pretrained model, engine vs torch float64', hidden, result.hidden, { atol: 1e-5, rtol: 1e-4 });
      model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
