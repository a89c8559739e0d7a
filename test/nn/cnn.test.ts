// A small CNN round trip with PyTorch (fixtures from scripts/cnn-reference.py): torch's trained
// state dict loads strictly into the same nn.Sequential here and gives torch's eval-mode output;
// one SGD step in training mode here, saved with saveSafetensors, matches torch's state after
// the same step key by key, batch-norm buffers and num_batches_tracked included.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { nn, tensor, tidy, crossEntropy, SGD, saveSafetensors, parseSafetensors } from '../../src/index.ts';
import { loadSafetensorsFile } from '../../src/node/index.ts';
import { testGpu, expectClose } from '../helpers.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const torchFile = (name: string) => parseSafetensors(readFileSync(join(FIXTURES, name)), name);

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/** scripts/cnn-reference.py's model(): [N, 1, 8, 8] → [N, 10]. */
function cnnModel(dropout: number): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(gpu, 1, 8, 3, { padding: 1, seed: 1 }),
    new nn.BatchNorm2d(gpu, 8),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Conv2d(gpu, 8, 16, 3, { padding: 1, seed: 2 }),
    new nn.BatchNorm2d(gpu, 16),
    new nn.ReLU(),
    new nn.AvgPool2d(2),
    new nn.Flatten(),
    new nn.Dropout(dropout, { seed: 3 }),
    new nn.Linear(gpu, 16 * 2 * 2, 10, { seed: 4 }),
  );
}

async function loadTrained(dropout: number): Promise<nn.Sequential> {
  const model = cnnModel(dropout);
  const state = await loadSafetensorsFile(gpu, join(FIXTURES, 'cnn-state.safetensors'));
  expect(model.loadStateDict(state)).toEqual({ missingKeys: [], unexpectedKeys: [] });
  for (const t of state.values()) t.dispose();
  return model;
}

describe('a CNN against PyTorch', () => {
  const io = torchFile('cnn-io.safetensors');

  it("torch's trained state dict loads strictly and gives torch's eval-mode output", async () => {
    const model = await loadTrained(0.25);
    expect((await model.stateDict().get('1.num_batches_tracked')!.read())[0]).toBe(5);
    model.eval();
    const out = tidy(() => model.forward(tensor(gpu, io.read('eval_input'), [4, 1, 8, 8])));
    expect(out.shape).toEqual([4, 10]);
    // Measured 4.5e-8 on llvmpipe; the bound leaves room for other adapters' summation orders.
    expectClose('eval output', await out.readF32(), io.read('eval_output'), { atol: 1e-6, rtol: 1e-5 });
    out.dispose();
    // Evaluation leaves the buffers alone.
    expect((await model.stateDict().get('5.num_batches_tracked')!.read())[0]).toBe(5);
    model.dispose();
  });

  it("one SGD step in training mode gives torch's post-step state, key by key in torch's order", async () => {
    const model = await loadTrained(0);
    model.train();
    const optimizer = new SGD(model.parameters(), { lr: 0.1 });
    const loss = tidy(() => {
      const logits = model.forward(tensor(gpu, io.read('step_input'), [6, 1, 8, 8])) as ReturnType<typeof tensor>;
      const l = crossEntropy(logits, io.readIntegers('step_labels'));
      l.backward();
      return l;
    });
    expectClose('loss before the step', await loss.readF32(), io.read('step_loss'), { atol: 1e-5, rtol: 1e-5 });
    loss.dispose();
    optimizer.step();
    optimizer.dispose();

    const ours = parseSafetensors(await saveSafetensors(model.stateDict()), 'our state');
    const theirs = torchFile('cnn-step.safetensors');
    expect([...ours.entries.keys()]).toEqual([...theirs.entries.keys()]);
    for (const [key, entry] of theirs.entries) {
      expect(ours.entry(key).dtype, key).toBe(entry.dtype);
      expect(ours.entry(key).shape, key).toEqual(entry.shape);
      if (entry.dtype === 'I64') {
        expect([...ours.readIntegers(key)], key).toEqual([...theirs.readIntegers(key)]);
        expect([...theirs.readIntegers(key)], key).toEqual([6]);
      } else {
        expectClose(key, ours.read(key), theirs.read(key), { atol: 1e-6, rtol: 1e-5 });
      }
    }
    // The step moved every parameter and statistic away from the loaded state, except the
    // convolutions' biases: the batch norm after each subtracts them again, so their gradient is 0.
    const before = torchFile('cnn-state.safetensors');
    for (const key of theirs.entries.keys()) {
      if (key.endsWith('num_batches_tracked') || key === '0.bias' || key === '4.bias') continue;
      const moved = theirs.read(key).some((v, i) => Math.abs(v - before.read(key)[i]!) > 1e-4);
      expect(moved, key).toBe(true);
    }
    model.dispose();
  });
});
