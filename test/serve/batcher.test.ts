// The batcher alone, with a device stand-in whose batches finish when the test says so.
import { describe, it, expect } from 'vitest';
import { Batcher, QueueFullError, ShuttingDownError, CancelledError, lengthRuns, type BatchInfo, type BatchLimits } from '../../src/serve/batcher.ts';
import { seededRandom } from '../../src/util/random.ts';

interface Row {
  id: string;
  tokenCount: number;
}

/** A device whose batches wait until finish() (or fail()) is called; records what each batch held. */
function device() {
  const batches: string[][] = [];
  const waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const run = (rows: Row[]) => {
    batches.push(rows.map((r) => r.id));
    return new Promise<string[]>((resolve, reject) => waiting.push({ resolve: () => resolve(rows.map((r) => `out ${r.id}`)), reject }));
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  return {
    batches,
    run,
    async finish() {
      waiting.shift()!.resolve();
      await settle();
    },
    async fail(message: string) {
      waiting.shift()!.reject(new Error(message));
      await settle();
    },
    get running() {
      return waiting.length;
    },
  };
}

const rows = (name: string, n: number, tokens = 4): Row[] => Array.from({ length: n }, (_, i) => ({ id: `${name}${i}`, tokenCount: tokens }));
const limits: BatchLimits = { maxBatchRows: 4, maxBatchTokens: 1000, maxQueuedRows: 10 };

describe('Batcher', () => {
  it('runs a lone request at once, then takes every request queued meanwhile, of any kind, in arrival order', async () => {
    const d = device();
    const infos: BatchInfo[] = [];
    const batcher = new Batcher<Row, string>(d.run, limits, { onBatch: (info) => infos.push(info) });
    const a = batcher.submit(rows('a', 1));
    const b = batcher.submit(rows('b', 2));
    const c = batcher.submit(rows('c', 1));
    expect(d.batches).toEqual([['a0']]);
    expect(batcher.queuedRows).toBe(3);
    await d.finish();
    expect(d.batches[1]).toEqual(['b0', 'b1', 'c0']);
    await d.finish();
    const answers = await Promise.all([a, b, c]);
    expect(answers.map((x) => x.outputs)).toEqual([['out a0'], ['out b0', 'out b1'], ['out c0']]);
    expect(infos.map((i) => [i.rows, i.tokens])).toEqual([[1, 4], [3, 12]]);
    for (const x of answers) expect(x.queueMs).toBeGreaterThanOrEqual(0);
    expect(batcher.queuedRows).toBe(0);
  });

  it('splits a request over batches of at most maxBatchRows rows and answers it whole, in order', async () => {
    const d = device();
    const batcher = new Batcher<Row, string>(d.run, limits);
    const big = batcher.submit(rows('x', 9));
    await d.finish();
    await d.finish();
    await d.finish();
    expect(d.batches).toEqual([['x0', 'x1', 'x2', 'x3'], ['x4', 'x5', 'x6', 'x7'], ['x8']]);
    expect((await big).outputs).toEqual(rows('x', 9).map((r) => `out ${r.id}`));
  });

  it('keeps a batch within maxBatchTokens counted as rows × longest row, but always takes one row', async () => {
    const d = device();
    const batcher = new Batcher<Row, string>(d.run, { ...limits, maxBatchTokens: 20 });
    batcher.submit(rows('h', 1, 50)); // over the budget alone: runs alone
    batcher.submit(rows('s', 3, 5));
    batcher.submit(rows('l', 1, 8));
    await d.finish();
    await d.finish();
    await d.finish();
    // s0 s1 s2 cost 15; adding l0 would make 4 × 8 = 32.
    expect(d.batches).toEqual([['h0'], ['s0', 's1', 's2'], ['l0']]);
  });

  it('with passCostTokens, runs a batch of mixed lengths as length-sorted passes where padding costs more than a pass, answering each as it finishes', async () => {
    const d = device();
    const infos: BatchInfo[] = [];
    const batcher = new Batcher<Row, string>(d.run, { ...limits, maxBatchRows: 8, passCostTokens: 10 }, { onBatch: (info) => infos.push(info) });
    const first = batcher.submit(rows('a', 1, 3));
    const long = batcher.submit([{ id: 'l0', tokenCount: 40 }]);
    const short = batcher.submit(rows('s', 3, 4));
    const mid = batcher.submit([{ id: 'm0', tokenCount: 6 }]);
    await d.finish(); // a0
    // One pass: 10 + 5 × 40 = 210; short ones, then l0: 10 + 4 × 6 + 10 + 40 = 84.
    expect(d.batches[1]).toEqual(['s0', 's1', 's2', 'm0']);
    await d.finish();
    expect((await short).outputs).toEqual(['out s0', 'out s1', 'out s2']);
    expect(d.batches[2]).toEqual(['l0']);
    await d.finish();
    expect((await long).outputs).toEqual(['out l0']);
    expect((await mid).outputs).toEqual(['out m0']);
    expect((await first).outputs).toEqual(['out a0']);
    expect(infos.map((i) => [i.rows, i.tokens])).toEqual([[1, 3], [4, 24], [1, 40]]);
    // Close lengths stay one pass: splitting would save less padding than a pass costs.
    batcher.submit(rows('x', 1));
    for (const tokens of [8, 4, 6, 5]) batcher.submit([{ id: `c${tokens}`, tokenCount: tokens }]);
    await d.finish(); // x0
    expect(d.batches.slice(4)).toEqual([['c4', 'c5', 'c6', 'c8']]); // one pass, its rows in length order
  });

  it('a failed pass of a split batch rejects only its own requests; the other passes of the batch still run', async () => {
    const d = device();
    const batcher = new Batcher<Row, string>(d.run, { ...limits, maxBatchRows: 8, passCostTokens: 10 });
    const first = batcher.submit(rows('a', 1));
    const short = batcher.submit(rows('s', 3, 4));
    const long = batcher.submit([{ id: 'l0', tokenCount: 40 }]);
    await d.finish(); // a0
    expect(d.batches[1]).toEqual(['s0', 's1', 's2']);
    const failed = expect(short).rejects.toThrow('device lost');
    await d.fail('device lost');
    await failed;
    expect(d.batches[2]).toEqual(['l0']);
    await d.finish();
    expect((await long).outputs).toEqual(['out l0']);
    expect((await first).outputs).toEqual(['out a0']);
  });

  it('lengthRuns finds the cheapest split into contiguous runs (against every split, on random lengths)', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(random() * 9);
      const lengths = Array.from({ length: n }, () => Math.floor(random() * 80)).sort((a, b) => a - b);
      const passCost = Math.floor(random() * 100);
      const costOf = (ends: number[]) => ends.reduce((sum, end, i) => sum + passCost + (end - (i ? ends[i - 1]! : 0)) * Math.max(1, lengths[end - 1]!), 0);
      let best = Infinity;
      for (let mask = 0; mask < 1 << (n - 1); mask++) {
        const ends = [...Array.from({ length: n - 1 }, (_, i) => i + 1).filter((_, i) => mask & (1 << i)), n];
        best = Math.min(best, costOf(ends));
      }
      const ends = lengthRuns(lengths, passCost);
      expect(ends.at(-1)).toBe(n);
      expect(costOf(ends)).toBe(best);
    }
  });

  it('refuses a request that would put more than maxQueuedRows rows in the queue, and queues nothing of it', async () => {
    const d = device();
    const batcher = new Batcher<Row, string>(d.run, limits);
    batcher.submit(rows('a', 1)); // running, not queued
    batcher.submit(rows('b', 8));
    await expect(batcher.submit(rows('c', 3))).rejects.toThrow(QueueFullError);
    await expect(batcher.submit(rows('c', 3))).rejects.toThrow(/holds 8 of at most 10 rows; 3 more do not fit/);
    expect(batcher.queuedRows).toBe(8);
    void batcher.submit(rows('d', 2)); // exactly fills the queue
    expect(batcher.queuedRows).toBe(10);
    await expect(new Batcher<Row, string>(d.run, limits).submit(rows('e', 11))).rejects.toThrow(/11 rows never fit a queue of at most 10/);
  });

  it('drops the queued rows of a request whose client went away; rows already running finish unread', async () => {
    const d = device();
    const dropped: [number, string][] = [];
    const batcher = new Batcher<Row, string>(d.run, { ...limits, maxBatchRows: 2 }, { onDropped: (n, reason) => dropped.push([n, reason]) });
    const first = batcher.submit(rows('a', 1));
    const gone = new AbortController();
    const leaving = batcher.submit(rows('x', 5), gone.signal);
    const staying = batcher.submit(rows('b', 1));
    await d.finish(); // a0
    expect(d.batches[1]).toEqual(['x0', 'x1']);
    gone.abort();
    await expect(leaving).rejects.toThrow(CancelledError);
    expect(batcher.queuedRows).toBe(1);
    expect(dropped).toEqual([[3, 'cancelled']]);
    await d.finish(); // x0 x1, whose outputs nobody reads
    await d.finish(); // b0
    expect(d.batches.slice(2)).toEqual([['b0']]);
    expect((await first).outputs).toEqual(['out a0']);
    expect((await staying).outputs).toEqual(['out b0']);
  });

  it('a failed batch rejects its requests (and their queued rows), and the next batch runs', async () => {
    const d = device();
    const batcher = new Batcher<Row, string>(d.run, { ...limits, maxBatchRows: 2 });
    const a = batcher.submit(rows('a', 3));
    const b = batcher.submit(rows('b', 1));
    const failed = expect(a).rejects.toThrow('device lost');
    await d.fail('device lost');
    await failed;
    expect(d.batches[1]).toEqual(['b0']);
    await d.finish();
    expect((await b).outputs).toEqual(['out b0']);
  });

  it('close() refuses new requests and resolves once the accepted ones are answered; dropQueued() answers the waiting ones', async () => {
    const d = device();
    const batcher = new Batcher<Row, string>(d.run, { ...limits, maxBatchRows: 1 });
    const a = batcher.submit(rows('a', 1));
    const b = batcher.submit(rows('b', 1));
    let closed = false;
    const closing = batcher.close().then(() => (closed = true));
    await expect(batcher.submit(rows('c', 1))).rejects.toThrow(ShuttingDownError);
    await d.finish();
    expect(closed).toBe(false);
    await d.finish();
    await closing;
    expect((await Promise.all([a, b])).map((x) => x.outputs)).toEqual([['out a0'], ['out b0']]);

    const d2 = device();
    const batcher2 = new Batcher<Row, string>(d2.run, { ...limits, maxBatchRows: 1 });
    const running = batcher2.submit(rows('r', 1));
    const waiting = batcher2.submit(rows('w', 1));
    const closing2 = batcher2.close();
    batcher2.dropQueued();
    await expect(waiting).rejects.toThrow(ShuttingDownError);
    await d2.finish();
    await closing2;
    expect((await running).outputs).toEqual(['out r0']);
  });

  it('refuses limits that are not positive integers', () => {
    expect(() => new Batcher<Row, string>(device().run, { ...limits, maxBatchRows: 0 })).toThrow(/maxBatchRows must be a positive integer, got 0/);
    expect(() => new Batcher<Row, string>(device().run, { ...limits, maxQueuedRows: 1.5 })).toThrow(/maxQueuedRows/);
  });
});
