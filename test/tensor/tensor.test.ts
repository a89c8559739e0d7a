import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, asF16, expectClose } from '../helpers.ts';
import { tensor, rawTensor, tidy, keep, noGrad, Tensor } from '../../src/tensor/tensor.ts';
import { add, mul, sumToShape, scale } from '../../src/ops/elementwise.ts';
import { Gpu } from '../../src/gpu/context.ts';
import { openGpu } from '../../src/node/device.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('tensors and autodiff', () => {
  it('round-trips host data', async () => {
    const data = asF32(randn(1001, 7));
    expectClose('upload/read', await tensor(gpu, data, [7, 143]).readF32(), data, { atol: 0, rtol: 0 });
    const ids = await tensor(gpu, [0, 1, 50256, 4294967295], [4], { dtype: 'u32' }).read();
    expect(Array.from(ids)).toEqual([0, 1, 50256, 4294967295]);
  });

  it('f16 tensors hold the nearest halves, read back widened or raw, in two bytes each (odd counts too)', async () => {
    // 1/3 rounds; 2^-20 is subnormal in f16; 70000 is beyond its range.
    const values = [1 / 3, -2.5, 2 ** -20, 65504, 70000, -0, NaN];
    const t = tensor(gpu, values, [7], { dtype: 'f16' });
    expect(t.byteLength).toBe(14);
    expect(Array.from(await t.read())).toEqual(Array.from(asF16(values)));
    expect(Array.from(await t.read())).toEqual([0.333251953125, -2.5, 2 ** -20, 65504, Infinity, -0, NaN]);
    const raw = await t.readRaw();
    expect(raw).toBeInstanceOf(Uint16Array);
    expect(Array.from(await rawTensor(gpu, raw, [7], 'f16').readRaw())).toEqual(Array.from(raw));
    expect(() => t.write(new Float32Array(7))).toThrow(/4-byte elements into a f16 tensor/);
    await expect(t.readF32()).rejects.toThrow(/readF32 on a f16 tensor/);
  });

  it('accumulates gradients of a tensor used twice, and across backward calls', async () => {
    const x = tensor(gpu, [1, 2, 3], [3], { requiresGrad: true });
    // y = x*x + 3x → dy/dx = 2x + 3
    const y = add(mul(x, x), scale(x, 3));
    y.backward(tensor(gpu, [1, 1, 1], [3]));
    expectClose('d(x²+3x)', await x.grad!.readF32(), [5, 7, 9], { atol: 0 });
    add(mul(x, x), scale(x, 3)).backward(tensor(gpu, [1, 1, 1], [3]));
    expectClose('accumulated', await x.grad!.readF32(), [10, 14, 18], { atol: 0 });
  });

  it('records nothing under noGrad and for inputs that need no grad', () => {
    const x = tensor(gpu, [1, 2], [2], { requiresGrad: true });
    const c = tensor(gpu, [3, 4], [2]);
    expect(noGrad(() => mul(x, c)).node).toBeNull();
    expect(mul(c, c).requiresGrad).toBe(false);
    expect(mul(x, c).node).not.toBeNull();
  });

  it('reshape shares memory and passes gradients through', async () => {
    const x = tensor(gpu, [1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true });
    const r = x.reshape([3, -1]);
    expect(r.shape).toEqual([3, 2]);
    mul(r, r).backward(tensor(gpu, [1, 1, 1, 1, 1, 1], [3, 2]));
    expectClose('reshape grad', await x.grad!.readF32(), [2, 4, 6, 8, 10, 12], { atol: 0 });
    expect(() => x.reshape([4, 2])).toThrow(/cannot reshape/);
  });

  it('throws a clear error when a disposed tensor is used', () => {
    const x = tensor(gpu, [1], [1]);
    x.label = 'weights';
    x.dispose();
    expect(() => add(x, x)).toThrow(/weights \[1\] was used after dispose/);
  });

  it('tidy disposes intermediates but keeps results and kept tensors', () => {
    const before = gpu.memory().inUse;
    let kept!: Tensor;
    const result = tidy(() => {
      const a = tensor(gpu, new Float32Array(1000), [1000]);
      kept = keep(scale(a, 2));
      return add(a, a);
    });
    expect(result.disposed).toBe(false);
    expect(kept.disposed).toBe(false);
    result.dispose();
    kept.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });

  it('a training loop runs in constant memory: step 10 and step 1000 hold the same', async () => {
    const w = tensor(gpu, asF32(randn(64 * 32, 1, 0.1)), [64, 32], { requiresGrad: true });
    const x = tensor(gpu, asF32(randn(8 * 64 * 32, 2)), [8, 64, 32]);
    const step = () => {
      tidy(() => {
        const y = mul(x, w); // [8, 64, 32]
        const loss = sumToShape(mul(y, y), [1]);
        loss.backward();
        // Plain gradient descent, in the engine: w ← w − 0.001·grad.
        const updated = noGrad(() => add(w, scale(w.grad!, -0.001)));
        gpu.copy(updated.binding(), w.binding());
      });
      w.grad?.dispose();
      w.grad = null;
    };
    let at10 = { inUse: 0, created: 0 };
    for (let i = 1; i <= 1000; i++) {
      step();
      if (i === 10) {
        await gpu.sync();
        at10 = gpu.memory();
      }
    }
    await gpu.sync();
    const at1000 = gpu.memory();
    expect(at1000.inUse).toBe(at10.inUse);
    expect(at1000.created).toBe(at10.created);
  });

  it('encodes a forward and backward without submitting; read() submits once', async () => {
    const x = tensor(gpu, asF32(randn(300, 3)), [3, 100], { requiresGrad: true });
    const b = tensor(gpu, asF32(randn(100, 4)), [100], { requiresGrad: true });
    await gpu.sync();
    const submitsBefore = gpu.submits;
    const loss = tidy(() => {
      let h = x;
      for (let i = 0; i < 20; i++) h = mul(add(h, b), scale(b, 0.5));
      const l = sumToShape(h, [1]);
      l.backward();
      return l;
    });
    expect(gpu.submits).toBe(submitsBefore);
    await loss.read();
    expect(gpu.submits).toBe(submitsBefore + 1);
  });
});

describe('tensor dtypes from host data', () => {
  it('makes a u32 tensor from a Uint32Array, an f32 one from anything else, and an explicit dtype wins', async () => {
    const ids = tensor(gpu, new Uint32Array([0, 7, 4294967295]), [3]);
    expect(ids.dtype).toBe('u32');
    expect(Array.from(await ids.read())).toEqual([0, 7, 4294967295]);
    expect(tensor(gpu, [1, 2], [2]).dtype).toBe('f32');
    expect(tensor(gpu, new Float32Array(2), [2]).dtype).toBe('f32');
    const asFloat = tensor(gpu, new Uint32Array([3, 5]), [2], { dtype: 'f32' });
    expect(asFloat.dtype).toBe('f32');
    expect(Array.from(await asFloat.read())).toEqual([3, 5]);
  });
});

describe('bad input fails at the call that caused it', () => {
  it('an op given tensors of two Gpus throws naming the op, and the device still works after', async () => {
    const other = await openGpu({ quiet: true });
    try {
      const a = tensor(gpu, [1, 2, 3], [3]);
      const b = tensor(other, [4, 5, 6], [3], { label: 'b' });
      expect(() => add(a, b)).toThrow('elementwise.add.same: b [3] belongs to another Gpu (another GPUDevice) than the one this op runs on; the tensors of one op must share a Gpu');
      const ones = tensor(gpu, [1, 1, 1], [3]);
      expect(() => layerNorm(b, ones, ones)).toThrow(/^layernorm\.ln_forward: tensor \[3\] belongs to another Gpu/);
      // Nothing reached WebGPU: later work on either device is unaffected.
      expect(Array.from(await add(a, a).readF32())).toEqual([2, 4, 6]);
      expect(Array.from(await add(b, b).readF32())).toEqual([8, 10, 12]);
    } finally {
      other.destroy();
    }
  });

  it('backward() a second time through a released graph throws as PyTorch does; retainGraph keeps it', async () => {
    const x = tensor(gpu, [1, 2, 3], [3], { requiresGrad: true });
    const loss = sumToShape(mul(x, x), [1]);
    loss.label = 'loss';
    loss.backward(undefined, { retainGraph: true });
    loss.backward();
    // Two runs accumulate: 2·(2x).
    expect(Array.from(await x.grad!.readF32())).toEqual([4, 8, 12]);
    expect(() => loss.backward()).toThrow(
      'backward(): trying to backward through the graph a second time: loss [1] was computed in a graph an earlier backward() already ran through and released; pass { retainGraph: true } to that earlier backward() to keep it',
    );
    // A new graph from the same leaf is fine.
    sumToShape(mul(x, x), [1]).backward();
    expect(Array.from(await x.grad!.readF32())).toEqual([6, 12, 18]);
  });

  it('a graph that shares a released part throws too', () => {
    const x = tensor(gpu, [1, 2], [2], { requiresGrad: true });
    const h = mul(x, x);
    sumToShape(h, [1]).backward();
    expect(() => sumToShape(scale(h, 2), [1]).backward()).toThrow(/backward through the graph a second time/);
  });
});
