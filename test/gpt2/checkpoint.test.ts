import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { f16round } from '@petamoriken/float16';
import { afterAll, describe, expect, it } from 'vitest';
import { expectedTensors, fingerprint, loadCheckpoint, weightArrays, type GPT2Checkpoint } from '../../src/gpt2/checkpoint.ts';
import { parseConfig } from '../../src/gpt2/config.ts';
import { encodeSafetensors, numel, parseSafetensors, type TensorToWrite, type WritableDtype } from '../../src/nn/safetensors.ts';
import { readCheckpoint } from '../../src/node/checkpoint-file.ts';
import { seededRandom } from '../../src/util/random.ts';

const FIXTURE = fileURLToPath(new URL('../../../shared/fixtures/tiny-gpt2', import.meta.url));
const SMALL = fileURLToPath(new URL('../../weights/small-gpt2', import.meta.url));
const temp = mkdtempSync(join(tmpdir(), 'gpt2-checkpoint-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

interface Synthetic {
  n_layer?: number;
  n_embd?: number;
  n_head?: number;
  dtype?: WritableDtype;
  prefix?: string;
  extra?: Record<string, TensorToWrite>;
  drop?: string;
  reshape?: [string, number[]];
}

function hfConfig(o: Synthetic): Record<string, unknown> {
  return { vocab_size: 101, n_positions: 20, n_embd: o.n_embd ?? 48, n_layer: o.n_layer ?? 3, n_head: o.n_head ?? 6, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new' };
}

/** A random GPT-2 (vocab 101) with every tensor distinct, plus the float values written. */
function synthetic(o: Synthetic = {}): { config: Record<string, unknown>; bytes: Uint8Array; source: Map<string, Float32Array> } {
  const config = hfConfig(o);
  const tensors: Record<string, TensorToWrite> = {};
  const source = new Map<string, Float32Array>();
  const random = seededRandom(7);
  for (const [name, shape] of expectedTensors(parseConfig(config))) {
    if (name === o.drop) continue;
    const s = o.reshape?.[0] === name ? o.reshape[1] : shape;
    const data = Float32Array.from({ length: numel(s) }, () => random() * 2 - 1);
    source.set(name, data);
    tensors[(o.prefix ?? '') + name] = { dtype: o.dtype ?? 'F32', shape: s, data };
  }
  Object.assign(tensors, o.extra);
  return { config, bytes: encodeSafetensors(tensors, { format: 'pt' }), source };
}

let dirCount = 0;
function writeDir(config: object | string, bytes: Uint8Array): string {
  const dir = join(temp, `ck${dirCount++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  return dir;
}

/** Bitwise equality of float arrays (vitest's deep equality is slow on millions of elements). */
function expectSame(actual: Float32Array, expected: Float32Array): void {
  expect(Buffer.compare(new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength), new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength))).toBe(0);
}

function expectMatches(ck: GPT2Checkpoint, source: Map<string, Float32Array>, round: (x: number) => number = (x) => x): void {
  const names = expectedTensors(ck.config).map(([n]) => n);
  const arrays = weightArrays(ck.tensors);
  expect(arrays.length).toBe(names.length);
  names.forEach((n, i) => {
    const want = source.get(n)!;
    const got = arrays[i]!;
    expect(got, n).toBeInstanceOf(Float32Array);
    expect(got.length, n).toBe(want.length);
    for (let j = 0; j < want.length; j++) if (got[j] !== round(want[j]!)) throw new Error(`${n}[${j}]: ${got[j]} != ${round(want[j]!)}`);
  });
}

describe('config.json', () => {
  const base = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new' };

  it('parses GPT-2 124M and accepts n_ctx and the tanh GELU aliases', () => {
    expect(parseConfig(JSON.stringify(base))).toEqual({ vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, layerNormEps: 1e-5, activation: 'gelu_new' });
    const { n_positions: _, ...withCtx } = base;
    expect(parseConfig({ ...withCtx, n_ctx: 512, activation_function: 'gelu_pytorch_tanh', layer_norm_epsilon: 1e-6 })).toMatchObject({ nPositions: 512, activation: 'gelu_new', layerNormEps: 1e-6 });
    expect(parseConfig({ ...base, activation_function: 'gelu', n_inner: 3072 }).activation).toBe('gelu');
  });

  it('names the field and value it rejects', () => {
    expect(() => parseConfig({ ...base, n_head: 5 })).toThrow('config.json: n_embd 768 is not divisible by n_head 5');
    expect(() => parseConfig({ ...base, n_layer: 0 })).toThrow('config.json: n_layer must be a positive integer, got 0');
    expect(() => parseConfig({ ...base, n_embd: 76.8 })).toThrow('n_embd must be a positive integer, got 76.8');
    expect(() => parseConfig({ ...base, vocab_size: '50257' })).toThrow('vocab_size must be a positive integer, got "50257"');
    const { n_head: _, ...noHead } = base;
    expect(() => parseConfig(noHead, 'my/config.json')).toThrow('my/config.json: missing n_head');
    expect(() => parseConfig({ ...base, layer_norm_epsilon: -1 })).toThrow('layer_norm_epsilon must be a positive number, got -1');
    expect(() => parseConfig({ ...base, activation_function: 'relu' })).toThrow(/activation_function "relu" is not supported/);
    expect(() => parseConfig({ ...base, n_inner: 1000 })).toThrow('n_inner 1000 is not supported (only 4 * n_embd = 3072)');
    expect(() => parseConfig({ ...base, scale_attn_by_inverse_layer_idx: true })).toThrow(/scale_attn_by_inverse_layer_idx/);
    expect(() => parseConfig('{"n_embd": ')).toThrow(/config\.json: not valid JSON/);
    expect(() => parseConfig('[1]')).toThrow('config.json: not a JSON object');
  });
});

describe('loading checkpoints', () => {
  it('reads the tiny-gpt2 fixture from its directory, its safetensors file or its config.json', async () => {
    const ck = await readCheckpoint(FIXTURE);
    expect(ck.config).toEqual({ vocabSize: 50257, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 4, layerNormEps: 1e-5, activation: 'gelu_new' });
    expect(ck.dtypes).toEqual(['F32']);
    expect(ck.ignored).toEqual([]); // the h.N.attn.bias mask buffers are skipped silently
    expect(ck.tensors.blocks.length).toBe(2);
    const file = parseSafetensors(readFileSync(join(FIXTURE, 'model.safetensors')));
    expectSame(ck.tensors.wte, file.read('wte.weight'));
    expectSame(ck.tensors.blocks[1]!.mlp.cProjW, file.read('h.1.mlp.c_proj.weight'));
    expect(ck.tensors.blocks[0]!.attn.cAttnW.length).toBe(32 * 96);
    expectSame(ck.tensors.lnF.bias, file.read('ln_f.bias'));
    const viaFile = await readCheckpoint(join(FIXTURE, 'model.safetensors'));
    const viaConfig = await readCheckpoint(join(FIXTURE, 'config.json'));
    expect(await fingerprint(viaFile)).toBe(await fingerprint(ck));
    expect(await fingerprint(viaConfig)).toBe(await fingerprint(ck));
  });

  it('loads a 3-layer, n_embd 48 model in F32 exactly', async () => {
    const { config, bytes, source } = synthetic();
    const ck = await readCheckpoint(writeDir(config, bytes));
    expect(ck.config).toMatchObject({ nLayer: 3, nEmbd: 48, nHead: 6, vocabSize: 101 });
    expectMatches(ck, source);
  });

  it('converts F16 and BF16 checkpoints to float32', async () => {
    const f16 = synthetic({ dtype: 'F16' });
    const ck16 = await readCheckpoint(writeDir(f16.config, f16.bytes));
    expect(ck16.dtypes).toEqual(['F16']);
    expectMatches(ck16, f16.source, f16round);

    const bf = synthetic({ dtype: 'BF16' });
    const ckbf = await readCheckpoint(writeDir(bf.config, bf.bytes));
    expect(ckbf.dtypes).toEqual(['BF16']);
    const arrays = weightArrays(ckbf.tensors);
    const names = expectedTensors(ckbf.config).map(([n]) => n);
    names.forEach((n, i) => {
      const want = bf.source.get(n)!;
      // |x| < 1, so bfloat16's rounding errs by at most 2^-9.
      const worst = want.reduce((m, w, j) => Math.max(m, Math.abs(arrays[i]![j]! - w)), 0);
      expect(worst, n).toBeLessThanOrEqual(2 ** -9);
      expect(worst, n).toBeGreaterThan(0);
    });
  });

  it('accepts GPT2LMHeadModel keys (transformer. prefix, tied lm_head, mask buffers) and lists unknown tensors', () => {
    const extra: Record<string, TensorToWrite> = {
      'lm_head.weight': { dtype: 'F32', shape: [101, 48], data: new Float32Array(101 * 48) },
      'transformer.h.0.attn.bias': { dtype: 'F32', shape: [1, 1, 20, 20], data: new Float32Array(400) },
      'transformer.h.2.attn.masked_bias': { dtype: 'F32', shape: [], data: [-1e4] },
      'score.weight': { dtype: 'F32', shape: [2, 48], data: new Float32Array(96) },
    };
    const { config, bytes, source } = synthetic({ prefix: 'transformer.', extra });
    const ck = loadCheckpoint(JSON.stringify(config), bytes, 'prefixed');
    expectMatches(ck, source);
    expect(ck.ignored).toEqual(['score.weight']);
  });

  it('fingerprints are stable, and change with any sampled value or the config', async () => {
    const { config, bytes } = synthetic();
    const a = loadCheckpoint(config, bytes, 'a');
    const fa = await fingerprint(a);
    expect(fa).toMatch(/^[0-9a-f]{16}$/);
    expect(await fingerprint(loadCheckpoint(config, bytes, 'again'))).toBe(fa);
    const b = loadCheckpoint(config, bytes, 'b');
    b.tensors.blocks[2]!.mlp.cFcB[0]! += 1e-6;
    expect(await fingerprint(b)).not.toBe(fa);
    const c = loadCheckpoint({ ...config, layer_norm_epsilon: 1e-6 }, bytes, 'c');
    expect(await fingerprint(c)).not.toBe(fa);
  });

  it('loads the shipped small model (F16, random init as scripts/make-small-model.ts writes it)', async () => {
    const ck = await readCheckpoint(SMALL);
    expect(ck.config).toEqual({ vocabSize: 50257, nPositions: 256, nEmbd: 64, nLayer: 2, nHead: 4, layerNormEps: 1e-5, activation: 'gelu_new' });
    expect(ck.dtypes).toEqual(['F16']);
    const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    expect(std(ck.tensors.wte)).toBeCloseTo(0.1, 2);
    expect(std(ck.tensors.blocks[0]!.mlp.cFcW)).toBeCloseTo(0.3, 2);
    expect(ck.tensors.blocks[1]!.attn.cAttnB.every((v) => v === 0)).toBe(true);
    expect(ck.tensors.lnF.weight.every((v) => v === 1)).toBe(true);
  });
});

describe('checkpoint errors name the file and the problem', () => {
  it('a missing path, a directory without the files', async () => {
    await expect(readCheckpoint(join(temp, 'nowhere'))).rejects.toThrow(`${join(temp, 'nowhere')}: no such file or directory`);
    const empty = join(temp, 'empty');
    mkdirSync(empty);
    await expect(readCheckpoint(empty)).rejects.toThrow(`${empty}: no model.safetensors in ${empty}`);
    writeFileSync(join(empty, 'model.safetensors'), synthetic().bytes);
    await expect(readCheckpoint(empty)).rejects.toThrow(`${empty}: no config.json beside`);
  });

  it('a truncated file', async () => {
    const { config, bytes } = synthetic();
    const dir = writeDir(config, bytes.subarray(0, bytes.length - 100));
    await expect(readCheckpoint(dir)).rejects.toThrow(`${join(dir, 'model.safetensors')}: truncated (tensor ln_f.bias ends at byte ${bytes.length}`);
  });

  it('a file that is not safetensors', async () => {
    const dir = writeDir(hfConfig({}), new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 548105171\n'));
    await expect(readCheckpoint(dir)).rejects.toThrow(`${join(dir, 'model.safetensors')}: not a safetensors file`);
  });

  it('a missing tensor', async () => {
    const { config, bytes } = synthetic({ drop: 'h.1.mlp.c_fc.bias' });
    await expect(readCheckpoint(writeDir(config, bytes))).rejects.toThrow(/model\.safetensors: missing tensor h\.1\.mlp\.c_fc\.bias \(nor transformer\.h\.1\.mlp\.c_fc\.bias\)/);
  });

  it('a wrong shape, with expected and actual shapes', async () => {
    const { config, bytes } = synthetic({ reshape: ['h.2.attn.c_attn.weight', [144, 48]] });
    await expect(readCheckpoint(writeDir(config, bytes))).rejects.toThrow('tensor h.2.attn.c_attn.weight has shape [144, 48], expected [48, 144]');
  });

  it('a config that disagrees with the tensors', () => {
    const { config, bytes } = synthetic();
    expect(() => loadCheckpoint({ ...config, vocab_size: 50257 }, bytes, 'm')).toThrow('m: wte.weight has 101 rows but config vocab_size is 50257');
    expect(() => loadCheckpoint({ ...config, n_layer: 4 }, bytes, 'm')).toThrow('m: config n_layer is 4 but the checkpoint has tensors for 3 layers');
    expect(() => loadCheckpoint({ ...config, n_layer: 2 }, bytes, 'm')).toThrow('m: config n_layer is 2 but the checkpoint has tensors for 3 layers');
    expect(() => loadCheckpoint({ ...config, n_positions: 1024 }, bytes, 'm')).toThrow('m: wpe.weight has 20 rows but config n_positions is 1024');
    expect(() => loadCheckpoint({ ...config, n_embd: 64, n_head: 4 }, bytes, 'm')).toThrow('m: wte.weight has width 48 but config n_embd is 64');
    expect(() => loadCheckpoint({ ...config, n_head: 7 }, bytes, 'm')).toThrow('m: config: n_embd 48 is not divisible by n_head 7');
  });
});
