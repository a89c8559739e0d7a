// nn.Module: registration, names and order as PyTorch's, strict and non-strict loading, modes.
// Expected keys are written out by hand from what torch prints for the same tree.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { nn, tensor, zeros, sum, square, tidy, saveSafetensors, loadSafetensors, Adam, SGD, AdamW, type Tensor } from '../../src/engine.ts';
import { testGpu } from '../helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/** A module with a buffer and a non-persistent buffer, as a batch norm will have. */
class Counter extends nn.Module {
  readonly scale: Tensor;
  readonly count: Tensor;
  constructor() {
    super();
    this.registerModule('inner', new nn.Linear(gpu, 2, 2, { seed: 1 }));
    this.scale = this.registerParameter('scale', tensor(gpu, [2], [1]));
    this.registerBuffer('running_mean', zeros(gpu, [2]));
    this.count = this.registerBuffer('num_batches_tracked', zeros(gpu, [], { dtype: 'u32' }));
    this.registerBuffer('scratch', zeros(gpu, [3]), { persistent: false });
    this.registerParameter('absent', null);
  }
}

describe('nn.Module registration', () => {
  it('state-dict keys: own parameters, own persistent buffers, then children, as torch orders them', () => {
    const m = new nn.Sequential(new Counter(), new nn.ReLU(), new nn.Sequential(new nn.Linear(gpu, 2, 3, { seed: 2 }), new nn.LayerNorm(gpu, 3)));
    expect([...m.stateDict().keys()]).toEqual([
      '0.scale', '0.running_mean', '0.num_batches_tracked', '0.inner.weight', '0.inner.bias',
      '2.0.weight', '2.0.bias', '2.1.weight', '2.1.bias',
    ]);
    expect([...m.namedParameters()].map(([k]) => k)).toEqual(['0.scale', '0.inner.weight', '0.inner.bias', '2.0.weight', '2.0.bias', '2.1.weight', '2.1.bias']);
    expect([...m.namedBuffers()].map(([k]) => k)).toEqual(['0.running_mean', '0.num_batches_tracked', '0.scratch']);
    expect([...m.namedChildren()].map(([k]) => k)).toEqual(['0', '1', '2']);
    expect([...m.namedModules()].map(([k]) => k)).toEqual(['', '0', '0.inner', '1', '2', '2.0', '2.1']);
    expect(m.modules()[0]).toBe(m);
    expect(m.children()).toHaveLength(3);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(m.buffers().some((b) => b.requiresGrad)).toBe(false);
    m.dispose();
  });

  it('a module made inside tidy() keeps its parameters, buffers and constants; a returned state dict survives', async () => {
    const m = tidy(() => new nn.Sequential(new Counter(), new nn.LayerNorm(gpu, 2, { elementwiseAffine: false })));
    const x = tensor(gpu, [1, 3], [1, 2]);
    expect([...(await (m.at(1).forward(x) as Tensor).read())].map((v) => Math.round(v * 1000) / 1000)).toEqual([-1, 1]);
    expect(m.buffers().every((b) => !b.disposed)).toBe(true);
    const bytes = await saveSafetensors(m.stateDict());
    const copies = tidy(() => loadSafetensors(gpu, bytes));
    expect([...copies.values()].every((t) => !t.disposed)).toBe(true);
    expect(m.loadStateDict(copies)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const t of [...copies.values(), x]) t.dispose();
    m.dispose();
  });

  it('refuses a taken name, a dotted name and a non-f32 parameter', () => {
    const m = new nn.Linear(gpu, 2, 2, { seed: 3 });
    expect(() => m.registerBuffer('weight', zeros(gpu, [1]))).toThrow(/cannot register buffer 'weight': the name is taken/);
    expect(() => m.registerModule('a.b', new nn.ReLU())).toThrow(/without '\.'/);
    expect(() => m.registerParameter('ids', zeros(gpu, [1], { dtype: 'u32' }))).toThrow(/a parameter is f32, got u32/);
    m.dispose();
  });

  it('tied weights: parameters() lists the tensor once, the state dict under both keys', () => {
    const emb = new nn.Embedding(gpu, 5, 3, { seed: 4 });
    const head = new nn.Linear(gpu, 3, 5, { bias: false, seed: 5 });
    const tied = new (class extends nn.Module {
      constructor() {
        super();
        this.registerModule('wte', emb);
        this.registerModule('head', head);
        head.registerParameter('tied', emb.weight);
      }
    })();
    expect(tied.parameters()).toHaveLength(2);
    expect([...tied.namedParameters()].map(([k]) => k)).toEqual(['wte.weight', 'head.weight']);
    const dict = tied.stateDict();
    expect([...dict.keys()]).toEqual(['wte.weight', 'head.weight', 'head.tied']);
    expect(dict.get('head.tied')).toBe(emb.weight);
    tied.dispose();
  });

  it('train() and eval() set the flag on every module of the tree', () => {
    const m = new nn.Sequential(new nn.ReLU(), new nn.ModuleList([new nn.Tanh(), new nn.Sequential(new nn.SiLU())]));
    expect(m.modules().every((x) => x.training)).toBe(true);
    expect(m.eval()).toBe(m);
    expect(m.modules().map((x) => x.training)).toEqual([false, false, false, false, false, false]);
    m.at(1).train();
    expect(m.modules().map((x) => x.training)).toEqual([false, false, true, true, true, true]);
  });

  it('ModuleList and Sequential index their modules, and a module without forward says so', () => {
    const list = new nn.ModuleList([new nn.ReLU(), new nn.Tanh()]);
    expect(list.length).toBe(2);
    expect(list.at(-1)).toBeInstanceOf(nn.Tanh);
    expect([...list].map((m) => m.constructor.name)).toEqual(['ReLU', 'Tanh']);
    expect(() => list.at(2)).toThrow(/index 2 is out of range for 2 modules/);
    expect(() => list.forward()).toThrow(/ModuleList has no forward\(\)/);
  });
});

describe('nn.Module.loadStateDict', () => {
  const make = (seed: number) => new nn.Sequential(new nn.Linear(gpu, 3, 4, { seed }), new nn.ReLU(), new nn.Linear(gpu, 4, 2, { seed: seed + 1 }));

  it('copies into the existing tensors, so an optimizer holding them keeps them', async () => {
    const a = make(10);
    const b = make(20);
    const before = b.parameters();
    const optimizer = new SGD(b.parameters(), { lr: 0.1 });
    expect(b.loadStateDict(a.stateDict())).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(b.parameters()).toEqual(before);
    for (const [key, t] of a.stateDict()) expect([...(await b.stateDict().get(key)!.read())], key).toEqual([...(await t.read())]);
    expect(optimizer.params).toEqual(b.parameters());
    optimizer.dispose();
    a.dispose();
    b.dispose();
  });

  it('strict: one error naming every missing and unexpected key and every size mismatch, and nothing copied', async () => {
    const m = make(30);
    const other = make(40);
    const dict = other.stateDict();
    const original = await m.stateDict().get('2.bias')!.read();
    dict.delete('0.bias');
    dict.delete('2.weight');
    const wrong = zeros(gpu, [5, 3]);
    const extra = zeros(gpu, [1]);
    dict.set('0.weight', wrong);
    dict.set('3.weight', extra);
    dict.set('extra', extra);
    let message = '';
    try {
      m.loadStateDict(dict);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe(
      'Error(s) in loading state_dict for Sequential:\n' +
        '\tMissing key(s) in state_dict: "0.bias", "2.weight".\n' +
        '\tUnexpected key(s) in state_dict: "3.weight", "extra".\n' +
        '\tsize mismatch for 0.weight: copying a param with shape [5, 3] from checkpoint, the shape in current model is [4, 3].',
    );
    // 2.bias matched, but a failed load copies nothing.
    expect([...(await m.stateDict().get('2.bias')!.read())]).toEqual([...original]);
    // Non-strict still refuses a wrong shape, as torch does.
    expect(() => m.loadStateDict(dict, { strict: false })).toThrow(/^Error\(s\) in loading state_dict for Sequential:\n\tsize mismatch for 0\.weight/);
    dict.delete('0.weight');
    expect(m.loadStateDict(dict, { strict: false })).toEqual({ missingKeys: ['0.weight', '0.bias', '2.weight'], unexpectedKeys: ['3.weight', 'extra'] });
    expect([...(await m.stateDict().get('2.bias')!.read())]).toEqual([...(await other.stateDict().get('2.bias')!.read())]);
    wrong.dispose();
    extra.dispose();
    m.dispose();
    other.dispose();
  });

  it('refuses a dtype that differs', () => {
    const m = new nn.LayerNorm(gpu, 2);
    const half = tensor(gpu, [1, 1], [2], { dtype: 'f16' });
    expect(() => m.loadStateDict({ weight: half, bias: m.bias })).toThrow(/dtype mismatch for weight: copying a f16 tensor from checkpoint, the tensor in current model is f32/);
    half.dispose();
    m.dispose();
  });

  it('optimizers take module.parameters() and train the module', async () => {
    const m = make(50);
    const x = tensor(gpu, [0.5, -1, 2, 1, 0, -0.5], [2, 3]);
    for (const Opt of [SGD, Adam, AdamW]) {
      const optimizer = new Opt(m.parameters(), { lr: 0.01 });
      const loss = () => sum(square(m.forward(x)));
      const first = (await lossValue(loss)) as number;
      for (let i = 0; i < 5; i++) {
        m.zeroGrad();
        loss().backward();
        optimizer.step();
      }
      expect(await lossValue(loss), Opt.name).toBeLessThan(first);
      optimizer.dispose();
    }
    m.zeroGrad();
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
    x.dispose();
    m.dispose();
  });
});

async function lossValue(loss: () => Tensor): Promise<number> {
  const l = loss();
  const v = (await l.read())[0]!;
  l.dispose();
  return v;
}
