import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences, rng } from '../helpers.ts';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.ts';
import { gatherRows, shardRows, shardRowCounts } from '../../src/ops/gather.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

function refGather(table: Float64Array, cols: number, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * cols);
  for (let i = 0; i < ids.length; i++) for (let c = 0; c < cols; c++) out[i * cols + c] = table[ids[i]! * cols + c]!;
  return out;
}

/** Host shards built by hand, so their sizes are independent of the code under test. */
function handShards(table: Float64Array, cols: number, counts: number[]): Tensor[] {
  let start = 0;
  return counts.map((count) => {
    const t = tensor(gpu, table.subarray(start * cols, (start + count) * cols), [count, cols], { requiresGrad: true });
    start += count;
    return t;
  });
}

async function checkGather(rows: number, cols: number, ids: Uint32Array, counts: number[] | null, seed: number) {
  const table = asF32(randn(rows * cols, seed));
  const w = asF32(randn(ids.length * cols, seed + 1));
  const shards = counts ? handShards(table, cols, counts) : [tensor(gpu, table, [rows, cols], { requiresGrad: true })];
  const out = tidy(() => {
    const y = gatherRows(counts ? shards : shards[0]!, ids);
    y.backward(tensor(gpu, w, [ids.length, cols]));
    return y;
  });
  expect(out.shape).toEqual([ids.length, cols]);
  const tag = `gather V=${rows} C=${cols} n=${ids.length} shards=${shards.length}`;
  expectClose(`${tag} forward`, await out.readF32(), refGather(table, cols, ids), { atol: 0, rtol: 0 });
  const loss = (x: Float64Array) => refGather(x, cols, ids).reduce((s, v, i) => s + v * w[i]!, 0);
  const expected = finiteDifferences(loss, table);
  const got = new Float32Array(rows * cols);
  let start = 0;
  for (const s of shards) {
    got.set(await s.grad!.readF32(), start * cols);
    start += s.shape[0]!;
  }
  expectClose(`${tag} grad table`, got, expected, { atol: 1e-4, rtol: 1e-4 });
  for (const s of shards) s.dispose();
}

describe('gatherRows', () => {
  it('single id from a single-row table (batch 1, T=1)', async () => {
    await checkGather(1, 5, Uint32Array.of(0), null, 1);
  });

  it('unsharded table, cols not a multiple of the workgroup, repeated ids', async () => {
    await checkGather(37, 259, Uint32Array.of(3, 36, 0, 3, 3, 17, 36), null, 2);
  });

  it('sharded table: ids in every shard, repeats within and across shards, untouched rows get zero grad', async () => {
    const counts = [4, 7, 1, 9];
    const ids = Uint32Array.of(0, 3, 4, 10, 11, 12, 20, 4, 4, 11, 0, 20, 5);
    await checkGather(21, 13, ids, counts, 3);
  });

  it('random ids over a sharded table with many rows per id', async () => {
    const u = rng(9);
    const ids = Uint32Array.from({ length: 301 }, () => Math.floor(u() * 50));
    await checkGather(50, 33, ids, [17, 17, 16], 4);
  });

  it('shardRows splits at a forced small limit and gathers the same rows', async () => {
    expect(shardRowCounts(10, 3, 12 * 4)).toEqual([4, 3, 3]);
    expect(shardRowCounts(8, 3, 12 * 4)).toEqual([4, 4]);
    expect(shardRowCounts(8, 3, 1 << 20)).toEqual([8]);
    expect(() => shardRowCounts(8, 100, 64)).toThrow(/exceeds/);
    // GPT-2's wte does not fit one 128 MiB binding; two shards do.
    expect(shardRowCounts(50257, 768, 128 * 2 ** 20)).toEqual([25129, 25128]);
    const rows = 30;
    const cols = 6;
    const table = asF32(randn(rows * cols, 5));
    const shards = shardRows(gpu, Float32Array.from(table), rows, cols, 'wte');
    expect(shards.map((s) => s.shape)).toEqual([[rows, cols]]);
    expect(shards[0]!.label).toBe('wte[shard 0]');
    const ids = Uint32Array.of(29, 0, 14, 14);
    expectClose('shardRows gather', await gatherRows(shards, ids).readF32(), refGather(table, cols, ids), { atol: 0, rtol: 0 });
    shards.forEach((s) => s.dispose());
  });

  it('frozen shards cost no backward and produce no grad', async () => {
    const table = asF32(randn(12, 7));
    const shards = handShards(table, 4, [1, 2]).map((s) => {
      s.requiresGrad = false;
      return s;
    });
    const y = gatherRows(shards, Uint32Array.of(2, 0));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    shards.forEach((s) => s.dispose());
    y.dispose();
  });

  it('rejects an out-of-range id naming the id and V', () => {
    const shards = handShards(asF32(randn(12, 8)), 4, [1, 2]);
    expect(() => gatherRows(shards, Uint32Array.of(0, 3))).toThrow(RangeError);
    expect(() => gatherRows(shards, Uint32Array.of(0, 3))).toThrow(/id 3 .*V = 3/);
    expect(() => gatherRows(shards, Uint32Array.of(0xffffffff))).toThrow(/id 4294967295 .*V = 3/);
    shards.forEach((s) => s.dispose());
  });
});
