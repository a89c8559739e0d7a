// State dicts between PyTorch and the engine, both ways, through safetensors files: a torch
// model's file (scripts/nn-state-dict-reference.py) loads into the same nn.Sequential here and
// computes torch's float64 output and gradients within float32 tolerance; a file saved here
// loads into torch (scripts/nn-load-check.py) and computes our output there.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { nn, tensor, sum, mul, zeros, ones, saveSafetensors, type Tensor } from '../../src/engine.ts';
import { parseSafetensors } from '../../src/nn/safetensors.ts';
import { saveSafetensorsFile, loadSafetensorsFile } from '../../src/node/index.ts';
import { testGpu, expectClose } from '../helpers.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')) as {
  keys: string[];
  ids: number[][];
  output: { shape: number[]; values: number[] };
  w: number[];
  grads: Record<string, number[]>;
  batchnorm: { keys: string[]; dtypes: Record<string, string>; values: Record<string, number[]> };
};
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

let gpu: Gpu;
let dir: string;
beforeAll(async () => {
  gpu = await testGpu();
  dir = mkdtempSync(join(tmpdir(), 'nn-state-dict-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** scripts/nn_reference_model.py's model, layer for layer. */
function referenceModel(seed: number): nn.Sequential {
  return new nn.Sequential(
    new nn.Embedding(gpu, 10, 6, { seed }),
    new nn.Sequential(new nn.Linear(gpu, 6, 8, { seed: seed + 1 }), new nn.LayerNorm(gpu, 8), new nn.GELU({ approximate: 'tanh' })),
    new nn.Linear(gpu, 8, 5, { seed: seed + 2 }),
    new nn.Tanh(),
    new nn.Linear(gpu, 5, 4, { bias: false, seed: seed + 3 }),
    new nn.ReLU(),
    new nn.Flatten(),
    new nn.Linear(gpu, 16, 3, { seed: seed + 4 }),
    new nn.SiLU(),
    new nn.Sigmoid(),
  );
}

const ids = () => tensor(gpu, reference.ids.flat(), [reference.ids.length, reference.ids[0]!.length], { dtype: 'u32' });

describe('a PyTorch state dict in the engine', () => {
  it('has the keys of torch state_dict() in its order, and loads strictly', async () => {
    const model = referenceModel(1);
    expect([...model.stateDict().keys()]).toEqual(reference.keys);
    const dict = await loadSafetensorsFile(gpu, join(FIXTURES, 'reference.safetensors'));
    expect([...dict.keys()]).toEqual(reference.keys);
    expect(model.loadStateDict(dict)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const t of dict.values()) t.dispose();
    model.dispose();
  });

  it("computes torch's float64 output and parameter gradients", async () => {
    const model = referenceModel(2);
    const dict = await loadSafetensorsFile(gpu, join(FIXTURES, 'reference.safetensors'));
    model.loadStateDict(dict);
    const out = model.forward(ids());
    expect(out.shape).toEqual(reference.output.shape);
    expectClose('reference model output', await out.read(), reference.output.values, { atol: 1e-6, rtol: 1e-5 });
    sum(mul(out, tensor(gpu, reference.w, out.shape))).backward();
    const params = new Map(model.namedParameters());
    expect([...params.keys()]).toEqual(Object.keys(reference.grads));
    for (const [key, grad] of Object.entries(reference.grads)) {
      expectClose(`grad of ${key}`, await params.get(key)!.grad!.read(), grad, { atol: 1e-7, rtol: 1e-4 });
    }
    for (const t of dict.values()) t.dispose();
    model.dispose();
  });
});

/** A batch norm's state as torch registers it (its forward is a later module's). */
class BatchNormState extends nn.Module {
  constructor(n: number) {
    super();
    this.registerParameter('weight', ones(gpu, [n]));
    this.registerParameter('bias', zeros(gpu, [n]));
    this.registerBuffer('running_mean', zeros(gpu, [n]));
    this.registerBuffer('running_var', ones(gpu, [n]));
    this.registerBuffer('num_batches_tracked', zeros(gpu, [], { dtype: 'u32' }));
  }
}

describe("torch's int64 buffers in the engine", () => {
  it("a trained BatchNorm1d's state loads strictly into a module registering the same state, num_batches_tracked exactly", async () => {
    const file = join(FIXTURES, 'batchnorm.safetensors');
    const header = parseSafetensors(readFileSync(file));
    expect(header.entry('num_batches_tracked')).toMatchObject({ dtype: 'I64', shape: [] });
    const dict = await loadSafetensorsFile(gpu, file);
    const module = new BatchNormState(3);
    expect([...module.stateDict().keys()]).toEqual(reference.batchnorm.keys);
    expect(module.loadStateDict(dict)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const state = module.stateDict();
    expect(state.get('num_batches_tracked')!.dtype).toBe('u32');
    for (const key of reference.batchnorm.keys) expect([...(await state.get(key)!.read())], key).toEqual(reference.batchnorm.values[key]!.map(Math.fround));
    // And back to a file as torch wrote it: I64 for the counter.
    const again = parseSafetensors(await saveSafetensors(state));
    expect(again.entry('num_batches_tracked').dtype).toBe('I64');
    expect([...again.readIntegers('num_batches_tracked')]).toEqual([3]);
    for (const t of dict.values()) t.dispose();
    module.dispose();
  });
});

describe.skipIf(!hasTorch)('an engine state dict in PyTorch', () => {
  const loadCheck = (file: string) => {
    const run = spawnSync(PYTHON, [join(import.meta.dirname, '..', '..', 'scripts', 'nn-load-check.py'), file], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as { keys: string[]; dtypes: Record<string, string>; metadata: Record<string, string>; output?: number[]; integers: Record<string, number[]> };
  };

  it('loads strictly into the same torch model and computes our output there', async () => {
    const model = referenceModel(3);
    const file = join(dir, 'model.safetensors');
    await saveSafetensorsFile(file, model.stateDict(), { metadata: { note: 'from the engine' } });
    const torch = loadCheck(file);
    expect(torch.keys).toEqual(reference.keys);
    expect(new Set(Object.values(torch.dtypes))).toEqual(new Set(['torch.float32']));
    expect(torch.metadata).toEqual({ note: 'from the engine' });
    expectClose('our output in torch', await model.forward(ids()).read(), torch.output!, { atol: 1e-6, rtol: 1e-5 });
    model.dispose();
  });

  it('u32 buffers reach torch as int64, exactly', async () => {
    const counter = zeros(gpu, [], { dtype: 'u32' });
    counter.write(Uint32Array.of(123456789));
    const big = tensor(gpu, [0, 2 ** 32 - 1, 7], [3], { dtype: 'u32' });
    const file = join(dir, 'counters.safetensors');
    await saveSafetensorsFile(file, new Map<string, Tensor>([['bn.num_batches_tracked', counter], ['ids', big]]));
    const torch = loadCheck(file);
    expect(torch.dtypes).toEqual({ 'bn.num_batches_tracked': 'torch.int64', ids: 'torch.int64' });
    expect(torch.integers).toEqual({ 'bn.num_batches_tracked': [123456789], ids: [0, 2 ** 32 - 1, 7] });
    counter.dispose();
    big.dispose();
  });
});

describe('state-dict files', () => {
  it('refuse to overwrite unless forced, and leave no temporary file', async () => {
    const layer = new nn.LayerNorm(gpu, 2);
    const file = join(dir, 'exists.safetensors');
    writeFileSync(file, 'keep me');
    await expect(saveSafetensorsFile(file, layer.stateDict())).rejects.toThrow(/exists\.safetensors already exists/);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    await saveSafetensorsFile(file, layer.stateDict(), { force: true });
    const back = await loadSafetensorsFile(gpu, file);
    expect([...back.keys()]).toEqual(['weight', 'bias']);
    expect([...(await back.get('weight')!.read())]).toEqual([1, 1]);
    expect(spawnSync('ls', ['-A', dir], { encoding: 'utf8' }).stdout).not.toMatch(/\.tmp/);
    await expect(loadSafetensorsFile(gpu, join(dir, 'missing.safetensors'))).rejects.toThrow(/ENOENT/);
    layer.dispose();
  });
});
