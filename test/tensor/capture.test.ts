// Captured steps: a replay must do exactly what running the function does, and must not
// replay where that is no longer true. Every case compares values with the same work run
// plainly, so a stale buffer, uniform or upload in a replay shows up as a wrong number.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn } from '../helpers.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { tensor, tidy, keep, type Tensor } from '../../src/tensor/tensor.ts';
import { Adam } from '../../src/optim/adam.ts';
import { CapturedStep } from '../../src/tensor/capture.ts';
import { add, mul, scale, sumToShape } from '../../src/ops/elementwise.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { randomWeights } from '../gpt2/reference.ts';
import { GPT2 } from '../../src/gpt2/model.ts';
import type { GPT2Config } from '../../src/gpt2/config.ts';
import { PromptClassifier, initialParams, type Task } from '../../src/prompt/classifier.ts';
import { batchLoss, encode, disposePast, type Example } from '../../src/prompt/train.ts';
import { seededRandom } from '../../src/util/random.ts';

let gpu: Gpu;
const X = [1, -2, 3.5, 4];
beforeAll(async () => {
  gpu = await testGpu();
});

/** A weight and an input: a small training problem whose step is forward, backward and Adam. */
function regression(seed: number) {
  const w = tensor(gpu, randn(6 * 4, seed, 0.5), [6, 4], { requiresGrad: true });
  const x = tensor(gpu, randn(5 * 6, seed + 1), [5, 6]);
  const optimizer = new Adam([w], { lr: 0.05 });
  const loss = () => {
    const y = matmul(x, w);
    const l = sumToShape(mul(y, y), [1]);
    l.backward();
    return l;
  };
  const step = () => {
    const l = loss();
    optimizer.update();
    optimizer.zeroGrad();
    return l;
  };
  return {
    w, x, optimizer, loss, step,
    dispose: () => {
      optimizer.dispose();
      w.dispose();
      x.dispose();
    },
  };
}

async function plainLosses(steps: number, seed: number): Promise<{ losses: number[]; w: Float32Array }> {
  const r = regression(seed);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const l = tidy(r.loss);
    r.optimizer.step();
    r.optimizer.zeroGrad();
    losses.push((await l.readF32())[0]!);
    l.dispose();
  }
  const w = await r.w.readF32();
  r.optimizer.dispose();
  r.dispose();
  return { losses, w };
}

describe('CapturedStep', () => {
  it('replays from its third run on, bit for bit what running the step gives', async () => {
    const expected = await plainLosses(6, 3);
    const r = regression(3);
    const capture = new CapturedStep(gpu, r.step);
    const losses: number[] = [];
    const states: string[] = [];
    for (let s = 0; s < 6; s++) {
      r.optimizer.prepare();
      const l = capture.run();
      states.push(capture.state);
      losses.push((await l.readF32())[0]!);
      l.dispose();
    }
    expect(states).toEqual(['recording', 'replaying', 'replaying', 'replaying', 'replaying', 'replaying']);
    expect(capture.replayed).toBe(4);
    expect(losses).toEqual(expected.losses);
    expect(Array.from(await r.w.readF32())).toEqual(Array.from(expected.w));
    // Replays encode as many dispatches as the step does.
    const before = gpu.dispatches;
    r.optimizer.prepare();
    capture.run().dispose();
    const replayed = gpu.dispatches - before;
    const plain = gpu.dispatches;
    r.optimizer.prepare();
    tidy(r.step).dispose();
    expect(replayed).toBe(gpu.dispatches - plain);
    capture.dispose();
    r.dispose();
  });

  it('gives each run an output of its own: a loss held back is not overwritten by later replays', async () => {
    const expected = await plainLosses(5, 4);
    const r = regression(4);
    const capture = new CapturedStep(gpu, r.step);
    const held: Tensor[] = [];
    for (let s = 0; s < 5; s++) {
      r.optimizer.prepare();
      held.push(capture.run());
    }
    const losses = await Promise.all(held.map(async (l) => (await l.readF32())[0]!));
    expect(losses).toEqual(expected.losses);
    held.forEach((l) => l.dispose());
    capture.dispose();
    r.dispose();
  });

  it('never replays a step whose host values change between runs', async () => {
    const x = tensor(gpu, [1, 2, 3], [3]);
    let k = 1;
    const capture = new CapturedStep(gpu, () => scale(x, k++));
    const outputs: number[][] = [];
    for (let s = 0; s < 4; s++) {
      const y = capture.run();
      outputs.push(Array.from(await y.read()));
      y.dispose();
    }
    expect(capture.replayed).toBe(0);
    expect(outputs).toEqual([[1, 2, 3], [2, 4, 6], [3, 6, 9], [4, 8, 12]]);
    capture.dispose();
    x.dispose();
  });

  it('does not replay a step that leaves tensors it made alive, and says why', async () => {
    const x = tensor(gpu, [1, 2], [2]);
    const leaked: Tensor[] = [];
    const capture = new CapturedStep(gpu, () => {
      // Kept past the step's tidy scope, as a careless step might.
      leaked.push(keep(add(x, x)));
      return scale(x, 3);
    });
    for (let s = 0; s < 3; s++) capture.run().dispose();
    expect(capture.state).toBe('not replayable');
    expect(capture.reason).toMatch(/left \d+ bytes of tensors/);
    expect(capture.replayed).toBe(0);
    expect(Array.from(await leaked[2]!.read())).toEqual([2, 4]);
    leaked.forEach((t) => t.dispose());
    capture.dispose();
    x.dispose();
  });

  it('records again instead of replaying once an input went back to the pool', async () => {
    let input = tensor(gpu, [1, 2, 3, 4], [4]);
    const capture = new CapturedStep(gpu, () => scale(input, 2));
    for (let s = 0; s < 3; s++) capture.run().dispose();
    expect(capture.state).toBe('replaying');
    // The old input's buffer is free (nothing of its size class takes it), the new one is elsewhere.
    input.dispose();
    input = tensor(gpu, [5, 6, 7, 8, 9, 10, 11, 12], [8]);
    const y = capture.run();
    expect(Array.from(await y.read())).toEqual([10, 12, 14, 16, 18, 20, 22, 24]);
    expect(capture.replayed).toBe(1);
    y.dispose();
    capture.dispose();
    input.dispose();
  });

  it('records again after the device dropped its bind groups, then replays again', async () => {
    const expected = await plainLosses(6, 5);
    const r = regression(5);
    const capture = new CapturedStep(gpu, r.step);
    const losses: number[] = [];
    for (let s = 0; s < 6; s++) {
      if (s === 3) gpu.dropBindGroups();
      r.optimizer.prepare();
      const l = capture.run();
      losses.push((await l.readF32())[0]!);
      l.dispose();
    }
    // Runs 1-2 record, 3 replays, 4 and 5 record (the groups were dropped), 6 replays.
    expect([capture.recorded, capture.replayed]).toEqual([4, 2]);
    expect(losses).toEqual(expected.losses);
    capture.dispose();
    r.dispose();
  });

  it('keeps a replayed upload behind the replayed work before it when the uploads outgrow the ring (4 MiB) mid-replay', async () => {
    // The step writes x, then 17 × 256 kB (the ring fills and the batch is submitted), reads x,
    // then writes x again: that last upload must land after the read, in the batch it follows.
    const x = tensor(gpu, [0, 0, 0, 0], [4]);
    const filler = Array.from({ length: 17 }, () => tensor(gpu, new Float32Array(65536), [65536]));
    const values = Array.from({ length: 17 }, (_, i) => new Float32Array(65536).fill(i));
    const capture = new CapturedStep(gpu, () => {
      x.write(Float32Array.from(X));
      filler.forEach((t, i) => t.write(values[i]!));
      const y = scale(x, 1);
      x.write(Float32Array.from(X, (v) => -v));
      return y;
    });
    const outputs: number[][] = [];
    for (let s = 0; s < 4; s++) {
      const y = capture.run();
      outputs.push(Array.from(await y.read()));
      y.dispose();
    }
    expect(capture.replayed).toBe(2);
    expect(outputs).toEqual([X, X, X, X]);
    expect(Array.from(await filler[16]!.read()).slice(0, 2)).toEqual([16, 16]);
    capture.dispose();
    for (const t of [x, ...filler]) t.dispose();
  });

  it('with fast launch off (a bind group per dispatch) runs the step every time, and says why', async () => {
    const x = tensor(gpu, [1, 2], [2]);
    gpu.fastLaunch = false;
    try {
      const capture = new CapturedStep(gpu, () => scale(x, 2));
      for (let s = 0; s < 3; s++) capture.run().dispose();
      expect(capture.state).toBe('not replayable');
      expect(capture.reason).toMatch(/bind group for itself alone/);
      capture.dispose();
    } finally {
      gpu.fastLaunch = true;
      x.dispose();
    }
  });

  it('frees its buffers on dispose', async () => {
    // Every buffer made while the capture runs, watched for destroy(): each must end either in
    // the device's pool (the step's parameters, outputs copied out) or destroyed. A plain run
    // first makes what the device keeps for every step (constant buffers such as a zero bias).
    await plainLosses(1, 6);
    const device = gpu.device;
    const createBuffer = device.createBuffer;
    const made: GPUBuffer[] = [];
    const destroyed = new Set<GPUBuffer>();
    device.createBuffer = (descriptor: GPUBufferDescriptor) => {
      const buffer = createBuffer.call(device, descriptor);
      const destroy = buffer.destroy;
      buffer.destroy = () => {
        destroyed.add(buffer);
        destroy.call(buffer);
      };
      made.push(buffer);
      return buffer;
    };
    const before = gpu.memory().inUse;
    const r = regression(6);
    const capture = new CapturedStep(gpu, r.step);
    try {
      for (let s = 0; s < 3; s++) {
        r.optimizer.prepare();
        capture.run().dispose();
      }
    } finally {
      device.createBuffer = createBuffer;
    }
    expect(capture.memory().pooled).toBeGreaterThan(0);
    const captures = made.filter((b) => !gpu.pool.owns(b));
    expect(captures.length).toBeGreaterThan(0);
    capture.dispose();
    r.dispose();
    expect(capture.memory()).toMatchObject({ inUse: 0, pooled: 0 });
    expect(captures.filter((b) => !destroyed.has(b)).map((b) => b.label)).toEqual([]);
    expect(gpu.memory().inUse).toBe(before);
  });
});

describe('a captured prompt + head training step', () => {
  const config: GPT2Config = { vocabSize: 120, nPositions: 40, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEps: 1e-5, activation: 'gelu_new' };
  const task: Task = { name: 's', kind: 'single', labelNames: ['a', 'b'], start: 0 };

  async function run(capture: boolean): Promise<{ losses: number[]; prompt: Float32Array; replayed: number }> {
    const model = new GPT2(gpu, config, randomWeights(config, 7, 0.2));
    const random = seededRandom(8);
    const examples: Example[] = Array.from({ length: 4 }, (_, i) => ({ tokens: Uint32Array.from({ length: 3 + 2 * i }, () => Math.floor(random() * 100)), task: 0, label: i % 2, targets: null }));
    const indices = examples.map((_, i) => i);
    const width = Math.max(...examples.map((e) => e.tokens.length));
    const ids = new Uint32Array(4 * width);
    examples.forEach((e, b) => ids.set(e.tokens, b * width));
    const past = encode(model, { ids, lengths: Uint32Array.from(examples, (e) => e.tokens.length), width });
    const classifier = new PromptClassifier(model, initialParams(Float32Array.from({ length: 3 * 16 }, () => random() - 0.5), 16, 2, random), [task]);
    const optimizer = new Adam(classifier.parameters(), { lr: 1e-2 });
    const loss = () => {
      const l = batchLoss(classifier.logits(model, past), examples, indices, classifier.tasks, [{}]);
      l.backward();
      return l;
    };
    const step = new CapturedStep(gpu, () => {
      const l = loss();
      optimizer.update();
      optimizer.zeroGrad();
      return l;
    });
    const losses: number[] = [];
    for (let s = 0; s < 5; s++) {
      let l: Tensor;
      if (capture) {
        optimizer.prepare();
        l = step.run();
      } else {
        l = tidy(loss);
        optimizer.step();
        optimizer.zeroGrad();
      }
      losses.push((await l.readF32())[0]!);
      l.dispose();
    }
    const { prompt } = await classifier.params();
    const replayed = step.replayed;
    step.dispose();
    optimizer.dispose();
    classifier.dispose();
    disposePast(past);
    model.dispose();
    return { losses, prompt, replayed };
  }

  it('trains bit for bit as the plain step does, replaying from its third step', async () => {
    const plain = await run(false);
    const captured = await run(true);
    expect(captured.replayed).toBe(3);
    expect(captured.losses).toEqual(plain.losses);
    expect(Array.from(captured.prompt)).toEqual(Array.from(plain.prompt));
  });
});
