// memory(gpu) reports live tensors and the pool; leakCheck catches tensors a function leaves alive.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.ts';
import { memory, leakCheck, LeakError } from '../../src/tensor/memory.ts';
import { add, mul, exp } from '../../src/ops/elementwise.ts';
import { sum } from '../../src/ops/reduce.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('memory', () => {
  it('counts live tensors by label and shape, and the pool', () => {
    const before = memory(gpu);
    const a = tensor(gpu, new Float32Array(6), [2, 3], { label: 'weights' });
    const b = tensor(gpu, new Float32Array(6), [2, 3], { label: 'weights' });
    const c = tensor(gpu, new Float32Array(5), [5], { label: 'bias' });
    const now = memory(gpu);
    expect(now.tensors - before.tensors).toBe(3);
    expect(now.tensorBytes - before.tensorBytes).toBe(4 * 17);
    expect(now.groups.find((g) => g.label === 'weights')).toMatchObject({ shape: [2, 3], dtype: 'f32', count: 2, bytes: 48 });
    expect(now.groups.find((g) => g.label === 'bias')).toMatchObject({ shape: [5], count: 1, bytes: 20 });
    // Buffers come in size classes of at least 16 bytes: three buffers of 32, 32 and 32.
    expect(now.inUse - before.inUse).toBe(96);
    expect(now.peak).toBeGreaterThanOrEqual(now.inUse);
    for (const t of [a, b, c]) t.dispose();
    const after = memory(gpu);
    expect(after.tensors).toBe(before.tensors);
    expect(after.free).toBeGreaterThanOrEqual(96);
  });
});

describe('leakCheck', () => {
  it('catches a tensor the function leaves alive, naming it', async () => {
    const x = tensor(gpu, [1, 2, 3], [3]);
    let leaked: Tensor | undefined;
    const error = await leakCheck(() => {
      leaked = exp(x);
      leaked.label = 'forgotten';
      return add(x, 1);
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LeakError);
    expect((error as LeakError).message).toMatch(/1 tensor\(s\) left alive .*forgotten \[3\]/);
    expect((error as LeakError).leaked).toEqual([leaked]);
    for (const t of (error as LeakError).leaked) t.dispose();
    x.dispose();
  });

  it("passes tidy'd code, its result, and the gradients it gives tensors", async () => {
    const w = tensor(gpu, [1, 2, 3], [3], { requiresGrad: true });
    const out = await leakCheck(() => {
      // backward's intermediate gradients are tensors too: it runs in tidy() as a training step does.
      tidy(() => sum(mul(exp(w), w)).backward());
      return { result: tidy(() => add(w, 1)) };
    });
    expect(w.grad).not.toBeNull();
    expect(Array.from(await out.result.read())).toEqual([2, 3, 4]);
    out.result.dispose();
    w.dispose();
  });
});
