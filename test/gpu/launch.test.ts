// The fast launch path: reused bind groups with their own uniform slots, and small uploads
// batched into one ring per submit. Every case checks values, so a group or slot reused
// where it must not be shows up as a wrong number.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn } from '../helpers.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { tensor, Tensor, tidy } from '../../src/tensor/tensor.ts';
import { add, scale } from '../../src/ops/elementwise.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';
import { gelu, GELU_TANH } from '../../src/ops/gelu.ts';
import { softmax } from '../../src/ops/softmax.ts';
import { attention } from '../../src/ops/attention.ts';
import { gatherRows } from '../../src/ops/gather.ts';
import { crossEntropy } from '../../src/ops/loss.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const X = [1, -2, 3.5, 4];
const times = (k: number) => X.map((v) => v * k);

describe('bind group reuse', () => {
  it('finds the group of the same op on the same buffers again', async () => {
    const x = tensor(gpu, X, [4]);
    scale(x, 2).dispose();
    const hits = gpu.bindGroupHits;
    const made = gpu.bindGroupsMade;
    // The output takes the buffer the first one released.
    const y = scale(x, 2);
    expect(gpu.bindGroupHits).toBe(hits + 1);
    expect(gpu.bindGroupsMade).toBe(made);
    expect(Array.from(await y.read())).toEqual(times(2));
    x.dispose();
    y.dispose();
  });

  it('keeps uniforms that unsubmitted work still reads when the same group comes with other values', async () => {
    const x = tensor(gpu, X, [4]);
    const a = scale(x, 2);
    const c = add(a, x);
    a.dispose();
    // Same pipeline, same buffers (b takes a's), other uniforms, same batch: c must still see 2x.
    const b = scale(x, 5);
    expect(Array.from(await c.read())).toEqual(times(3));
    expect(Array.from(await b.read())).toEqual(times(5));
    for (const t of [x, b, c]) t.dispose();
  });

  it('rewrites a group\'s uniforms after a submit without changing work already submitted', async () => {
    const x = tensor(gpu, X, [4]);
    const a = scale(x, 2);
    const c = add(a, x);
    a.dispose();
    gpu.flush();
    const hits = gpu.bindGroupHits;
    const b = scale(x, 7);
    expect(gpu.bindGroupHits).toBe(hits + 1);
    expect(Array.from(await c.read())).toEqual(times(3));
    expect(Array.from(await b.read())).toEqual(times(7));
    for (const t of [x, b, c]) t.dispose();
  });

  it('forgets its groups when trim() destroys the pooled buffers they bind, and runs correctly after', async () => {
    const x = tensor(gpu, X, [4]);
    scale(x, 2).dispose();
    x.dispose();
    await gpu.sync();
    expect(gpu.cachedBindGroups).toBeGreaterThan(0);
    gpu.trim();
    expect(gpu.cachedBindGroups).toBe(0);
    expect(gpu.memory().pooled).toBe(0);
    const x2 = tensor(gpu, X, [4]);
    const y = scale(x2, 3);
    expect(Array.from(await y.read())).toEqual(times(3));
    // Trimming the pool alone leaves groups whose buffers are gone: they are never found again.
    x2.dispose();
    y.dispose();
    gpu.pool.trim();
    const x3 = tensor(gpu, X, [4]);
    const z = scale(x3, 4);
    expect(Array.from(await z.read())).toEqual(times(4));
    x3.dispose();
    z.dispose();
  });

  it('starts over when the uniform slots run out, with every result right', async () => {
    // More distinct groups than slots (4096): each input its own buffer.
    const n = 4200;
    const inputs = Array.from({ length: n }, (_, i) => tensor(gpu, [i, -i, 0.5 * i, 1], [4]));
    const outputs = inputs.map((t, i) => scale(t, 1, i));
    expect(gpu.cachedBindGroups).toBeLessThanOrEqual(4096);
    for (const i of [0, 1, 2047, 4095, 4096, 4097, n - 1]) {
      expect(Array.from(await outputs[i]!.read())).toEqual([2 * i, 0, 1.5 * i, 1 + i]);
    }
    for (const t of [...inputs, ...outputs]) t.dispose();
  });

  it('keeps an upload behind a dispatch whose new group started the next batch (the slots ran out)', async () => {
    // Fill the 4096 slots exactly, so the next new group submits the batch before it is encoded:
    // its buffers must count as used by the batch it lands in, or a write to them overtakes it.
    gpu.dropBindGroups();
    const inputs = Array.from({ length: 4096 }, (_, i) => tensor(gpu, [i, 0, 0, 0], [4]));
    const outputs = inputs.map((t) => scale(t, 1));
    const t = tensor(gpu, X, [4]);
    gpu.copy(inputs[0]!.binding(), outputs[0]!.binding()); // work in the open batch (the 4096th dispatch submitted the last)
    const submits = gpu.submits;
    const y = scale(t, 1);
    expect(gpu.submits).toBe(submits + 1);
    t.write(Float32Array.from(times(-1)));
    expect(Array.from(await y.read())).toEqual(X);
    expect(Array.from(await outputs[4095]!.read())).toEqual([4095, 0, 0, 0]);
    expect(Array.from(await outputs[0]!.read())).toEqual([0, 0, 0, 0]);
    for (const u of [...inputs, ...outputs, t, y]) u.dispose();
  });
});

describe('upload ring', () => {
  it('keeps uploads in order with the work around them on the same buffer', async () => {
    const t = Tensor.empty(gpu, [4]);
    t.write(Float32Array.from(X));
    const before = gpu.submits;
    const y = scale(t, 1);
    console.log('SUBMITS', gpu.submits - before, gpu.cachedBindGroups);
    t.write(Float32Array.from(times(-1)));
    const z = scale(t, 1);
    expect(Array.from(await y.read())).toEqual(X);
    expect(Array.from(await z.read())).toEqual(times(-1));
    for (const u of [t, y, z]) u.dispose();
  });

  it('submits when a batch of uploads outgrows the ring (4 MiB), every upload arriving', async () => {
    const n = 40;
    const size = 50_000; // 200 kB each: 8 MB in one batch
    const ts = Array.from({ length: n }, (_, i) => tensor(gpu, new Float32Array(size).fill(i + 0.25), [size]));
    for (const i of [0, 19, 20, n - 1]) {
      const v = await ts[i]!.readF32();
      expect(v[0]).toBe(i + 0.25);
      expect(v[size - 1]).toBe(i + 0.25);
    }
    for (const t of ts) t.dispose();
  });
});

describe('the fast launch path against the plain one', () => {
  /** Outputs and gradients of a chain of ops (forward and backward through each), read back. */
  async function chain(): Promise<Float32Array[]> {
    const B = 2;
    const T = 3;
    const C = 16;
    const nHead = 2;
    const x = tensor(gpu, randn(B * T * C, 1), [B, T, C], { requiresGrad: true });
    const w = tensor(gpu, randn(C * 3 * C, 2, 0.3), [C, 3 * C], { requiresGrad: true });
    const bias = tensor(gpu, randn(3 * C, 3), [3 * C], { requiresGrad: true });
    const gamma = tensor(gpu, randn(C, 4), [C], { requiresGrad: true });
    const beta = tensor(gpu, randn(C, 5), [C], { requiresGrad: true });
    const table = tensor(gpu, randn(10 * C, 6), [10, C], { requiresGrad: true });
    const past = { k: tensor(gpu, randn(B * nHead * 4 * 8, 7), [B, nHead, 4, 8]), v: tensor(gpu, randn(B * nHead * 4 * 8, 8), [B, nHead, 4, 8]), lengths: Uint32Array.from([4, 2]) };
    const leaves = [x, w, bias, gamma, beta, table];
    const outputs = tidy(() => {
      const rows = gatherRows(table, Uint32Array.from([3, 1, 4, 1, 5, 9]));
      const h = add(layerNorm(x, gamma, beta), rows.reshape([B, T, C]));
      const qkv = matmul(h, w, { bias });
      const att = attention(qkv, nHead, { past, newLengths: Uint32Array.from([3, 2]) });
      const logits = softmax(gelu(att, GELU_TANH)).reshape([B * T, C]);
      const loss = crossEntropy(logits, Uint32Array.from([0, 1, 2, 3, 4, 5]));
      loss.backward();
      return [att, loss];
    });
    const read = await Promise.all([...outputs, ...leaves.map((l) => l.grad!)].map((t) => t.readF32()));
    for (const t of [...outputs, ...leaves, past.k, past.v]) t.dispose();
    return read;
  }

  it('gives bit-identical outputs and gradients', async () => {
    expect(gpu.fastLaunch).toBe(true);
    const fast = await chain();
    // Again, once the pool's free lists have settled: groups are found in the cache.
    await chain();
    const hits = gpu.bindGroupHits;
    const again = await chain();
    expect(gpu.bindGroupHits).toBeGreaterThan(hits);
    gpu.fastLaunch = false;
    let plain: Float32Array[];
    try {
      plain = await chain();
    } finally {
      gpu.fastLaunch = true;
    }
    for (let i = 0; i < fast.length; i++) {
      expect(fast[i]!.every(Number.isFinite)).toBe(true);
      expect(again[i]).toEqual(fast[i]);
      expect(plain[i]).toEqual(fast[i]);
    }
  });
});
