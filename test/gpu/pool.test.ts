import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { sizeClass, type BufferPool } from '../../src/gpu/pool.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
let pool: BufferPool;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('buffer pool', () => {
  beforeAll(() => {
    pool = gpu.createPool();
  });
  afterAll(() => pool.destroy());

  it('sizes classes as powers of two to 1 MiB, then in eighths of the power of two', () => {
    expect([1, 16, 17, 1000, 1 << 20].map(sizeClass)).toEqual([16, 16, 32, 1024, 1 << 20]);
    // (1 MiB, 2 MiB] steps by 128 KiB.
    expect(sizeClass((1 << 20) + 1)).toBe((1 << 20) + (1 << 17));
    expect([3000, (1 << 20) - 15].map(sizeClass)).toEqual([4096, 1 << 20]);
    // (16 MiB, 32 MiB] steps by 2 MiB; around 2 GiB, where the power of two leaves 32-bit counting.
    expect(sizeClass((1 << 24) + 16)).toBe(9 * (1 << 21));
    expect(sizeClass(2 ** 31)).toBe(2 ** 31);
    expect(sizeClass(2 ** 31 + 16)).toBe(9 * 2 ** 28);
  });

  it('hands a released buffer out again for any size of its class, and makes a new one otherwise', () => {
    const first = pool.acquire(1000);
    expect(pool.owns(first)).toBe(true);
    expect(pool.isFree(first)).toBe(false);
    pool.release(first);
    expect(pool.isFree(first)).toBe(true);
    const again = pool.acquire(600);
    expect(again).toBe(first);
    expect(pool.isFree(again)).toBe(false);
    const other = pool.acquire(2000);
    expect(other).not.toBe(first);
    pool.release(again);
    pool.release(other);
    expect(pool.stats().inUse).toBe(0);
  });

  it('refuses a buffer released twice or made elsewhere, with the books unchanged', () => {
    const b = pool.acquire(64);
    pool.release(b);
    const before = pool.stats();
    expect(() => pool.release(b)).toThrow(/released a buffer twice/);
    const foreign = gpu.device.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE });
    expect(pool.owns(foreign)).toBe(false);
    expect(() => pool.release(foreign)).toThrow(/did not allocate/);
    foreign.destroy();
    expect(pool.stats()).toEqual(before);
    // Released once, handed out once: a second acquire of the class makes a new buffer.
    const x = pool.acquire(64);
    const y = pool.acquire(64);
    expect(x).toBe(b);
    expect(y).not.toBe(b);
    pool.release(x);
    pool.release(y);
  });

  it('restack hands out the oldest buffer of a class first, whatever order they came back in', () => {
    const made = [pool.acquire(4096), pool.acquire(4096), pool.acquire(4096)];
    for (const b of [made[1]!, made[0]!, made[2]!]) pool.release(b);
    pool.restack();
    const order = [pool.acquire(4096), pool.acquire(4096), pool.acquire(4096)];
    for (const b of order) pool.release(b);
    // Every other 4096-byte buffer this pool made is older still, and is among them.
    expect(order.indexOf(made[0]!)).toBeLessThan(order.indexOf(made[1]!));
    expect(order.indexOf(made[1]!)).toBeLessThan(order.indexOf(made[2]!));
  });

  it('trim forgets the free buffers, keeps the ones in use', () => {
    const kept = pool.acquire(128);
    const freed = pool.acquire(128);
    pool.release(freed);
    pool.trim();
    expect(pool.owns(freed)).toBe(false);
    expect(pool.owns(kept)).toBe(true);
    expect(pool.stats().pooled).toBe(0);
    pool.release(kept);
    expect(pool.isFree(kept)).toBe(true);
  });
});
