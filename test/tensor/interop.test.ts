// Interop with other WebGPU code: a Gpu over a caller's device leaves that device alone, and a
// caller's GPUBuffer becomes a tensor without a copy, is computed on in place, and stays the
// caller's (never pooled, reused or destroyed) after the tensor is gone.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import { Gpu } from '../../src/gpu/context.ts';
import { openGpu } from '../../src/node/device.ts';
import { fromGpuBuffer, tensor, tidy } from '../../src/tensor/tensor.ts';
import { add, mul, sumToShape } from '../../src/ops/elementwise.ts';
import { matmul } from '../../src/ops/matmul.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/** Reads a buffer range with plain WebGPU (after the engine's encoded work), as the caller's code would. */
async function readBack(buffer: GPUBuffer, offset: number, size: number): Promise<Float32Array> {
  gpu.flush();
  const device = gpu.device;
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const values = new Float32Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return values;
}

/** The float64 loss of the test's computation: sum(((a + a)·b)²) for a [M, K], b [K, N]. */
function lossOf(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): { loss: number; y: Float64Array } {
  const y = new Float64Array(M * N);
  let loss = 0;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (a[i * K + k]! + a[i * K + k]!) * b[k * N + j]!;
      y[i * N + j] = s;
      loss += s * s;
    }
  }
  return { loss, y };
}

describe('a Gpu over a caller-made device', () => {
  it('leaves the device usable after destroy(); a Gpu that opened its own device destroys it', async () => {
    const borrowed = new Gpu(gpu.device, 'borrowed device');
    const x = tensor(borrowed, [1, 2, 3], [3]);
    const y = add(x, x);
    expect(Array.from(await y.read())).toEqual([2, 4, 6]);
    x.dispose();
    y.dispose();
    borrowed.destroy();
    // The shared test device is the same GPUDevice: it must still run work.
    const z = tensor(gpu, [4, 5], [2]);
    const w = add(z, z);
    expect(Array.from(await w.read())).toEqual([8, 10]);
    z.dispose();
    w.dispose();

    const own = await openGpu({ quiet: true });
    own.destroy();
    expect((await own.device.lost).reason).toBe('destroyed');
  });
});

describe('fromGpuBuffer', () => {
  it('computes on a caller\'s buffer at an offset, forward and backward, and leaves it to the caller after dispose()', async () => {
    const [M, K, N] = [3, 5, 7];
    const align = gpu.limits.minStorageBufferOffsetAlignment;
    const aValues = asF32(randn(M * K, 11));
    const bValues = asF32(randn(K * N, 12));
    const device = gpu.device;
    const buffer = device.createBuffer({
      label: 'caller buffer',
      size: 3 * align,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    // a at one aligned offset, b at the next; the caller writes them itself.
    const sentinel = new Float32Array(align / 4).fill(-7);
    device.queue.writeBuffer(buffer, 0, sentinel);
    device.queue.writeBuffer(buffer, align, Float32Array.from(aValues));
    device.queue.writeBuffer(buffer, 2 * align, Float32Array.from(bValues));

    const a = fromGpuBuffer(gpu, buffer, [M, K], { offset: align, requiresGrad: true, label: 'a' });
    const b = fromGpuBuffer(gpu, buffer, [K, N], { offset: 2 * align });
    expect(a.bufferRange()).toEqual({ buffer, offset: align, size: M * K * 4 });
    expectClose('read() of a wrapped range', await a.read(), aValues, { atol: 0, rtol: 0 });

    const y = matmul(add(a, a), b);
    const loss = sumToShape(mul(y, y), [1]);
    loss.backward();
    const expected = lossOf(aValues, bValues, M, K, N);
    expectClose('y over wrapped buffers', await y.read(), expected.y, { atol: 1e-5, rtol: 1e-5 });
    const numeric = finiteDifferences((av) => lossOf(av, bValues, M, K, N).loss, Float64Array.from(aValues));
    expectClose('grad of a wrapped leaf', await a.grad!.read(), numeric, { atol: 1e-3, rtol: 1e-4 });

    // A renderer reads an engine tensor's range directly.
    const range = y.bufferRange();
    expectClose('bufferRange() of an engine tensor', await readBack(range.buffer, range.offset, range.size), await y.read(), { atol: 0, rtol: 0 });
    y.dispose();
    loss.dispose();

    // write() lands at the tensor's offset and nowhere else.
    const bNew = asF32(randn(K * N, 13));
    b.write(Float32Array.from(bNew));
    a.dispose();
    b.dispose();
    // Churn the pool: were the caller's buffer pooled, these would be handed its memory.
    tidy(() => {
      for (let i = 0; i < 4; i++) add(tensor(gpu, randn(M * K, 20 + i), [M, K]), tensor(gpu, randn(M * K, 30 + i), [M, K]));
    });
    gpu.trim();
    await gpu.sync();
    expect(Array.from(await readBack(buffer, 0, align))).toEqual(Array.from(sentinel));
    expectClose('a after dispose', (await readBack(buffer, align, align)).subarray(0, M * K), aValues, { atol: 0, rtol: 0 });
    expectClose('b as written', (await readBack(buffer, 2 * align, align)).subarray(0, K * N), bNew, { atol: 0, rtol: 0 });
    buffer.destroy();
  });

  it('rejects a buffer without STORAGE, a misaligned offset and a range past the end, and read()/write() without COPY_SRC/COPY_DST', async () => {
    const device = gpu.device;
    const align = gpu.limits.minStorageBufferOffsetAlignment;
    const mappable = device.createBuffer({ label: 'mappable', size: 64, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    expect(() => fromGpuBuffer(gpu, mappable, [4])).toThrow(/mappable.*without GPUBufferUsage\.STORAGE/);
    const storage = device.createBuffer({ label: 'storage only', size: 2 * align, usage: GPUBufferUsage.STORAGE });
    expect(() => fromGpuBuffer(gpu, storage, [4], { offset: 4 })).toThrow(new RegExp(`offset 4 is not a multiple of .*minStorageBufferOffsetAlignment \\(${align} bytes\\)`));
    expect(() => fromGpuBuffer(gpu, storage, [2 * align / 4 + 1])).toThrow(/do not fit the \d+-byte buffer/);
    expect(() => fromGpuBuffer(gpu, storage, [align / 4 + 1], { offset: align })).toThrow(/from offset \d+ do not fit/);
    const t = fromGpuBuffer(gpu, storage, [4], { label: 'bare' });
    await expect(t.read()).rejects.toThrow(/read\(\) on bare \[4\]: its GPUBuffer was created without GPUBufferUsage\.COPY_SRC/);
    expect(() => t.write(new Float32Array(4))).toThrow(/write\(\) on bare \[4\]: .*COPY_DST/);
    t.dispose();
    mappable.destroy();
    storage.destroy();
  });
});
