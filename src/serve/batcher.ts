// Continuous batching as text-embeddings-inference does it: requests queue their rows, and
// whenever the device is free the next batch takes queued rows — of any request, in arrival
// order — up to a row and a token budget. No timer waits for a batch to fill: at low load a
// row runs at once, under load the queue that builds up while the device works is the batch.
// A pass costs a fixed part plus its padded tokens (rows × longest row); when the batch's
// lengths differ enough that padding would cost more than another pass's fixed part, the
// batch runs as back-to-back passes over length-sorted runs of its rows (the split that
// minimizes the modelled cost), each answered as it finishes. Host-neutral: the device work
// is a function given to it.

/** The budgets of one batch and of the queue. */
export interface BatchLimits {
  /** Rows a batch takes at most. */
  maxBatchRows: number;
  /** Padded tokens a batch takes at most (rows × its longest row), except that a batch always takes one row. */
  maxBatchTokens: number;
  /** Rows that may wait at once; a request that would queue more is refused. */
  maxQueuedRows: number;
  /**
   * A pass's fixed cost in padded tokens (what one more pass costs beyond its tokens); a batch
   * splits into passes of similar lengths only where that saves more padding than this. Unset:
   * a batch is always one pass.
   */
  passCostTokens?: number;
}

/**
 * The cheapest split of rows (sorted by token count, shortest first) into consecutive runs,
 * where a run costs `passCost` + its rows × its longest row: the run ends, as indices past
 * each run's last row. Exact (dynamic programming over the sorted order, where an optimal
 * split's runs are always contiguous).
 */
export function lengthRuns(sortedTokenCounts: readonly number[], passCost: number): number[] {
  const n = sortedTokenCounts.length;
  const best = new Float64Array(n + 1).fill(Infinity);
  const cut = new Int32Array(n + 1);
  best[0] = 0;
  for (let end = 1; end <= n; end++) {
    const longest = Math.max(1, sortedTokenCounts[end - 1]!);
    for (let start = 0; start < end; start++) {
      const cost = best[start]! + passCost + (end - start) * longest;
      if (cost < best[end]!) {
        best[end] = cost;
        cut[end] = start;
      }
    }
  }
  const ends: number[] = [];
  for (let end = n; end > 0; end = cut[end]!) ends.unshift(end);
  return ends;
}

/** A request refused because the queue is full (HTTP 429). */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

/** A request refused or dropped because the batcher is closing (HTTP 503). */
export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
}

/** A request whose client went away before it was answered. */
export class CancelledError extends Error {
  override name = 'CancelledError';
}

/** What a pass reports, e.g. to metrics (a batch of mixed lengths may run as several passes). */
export interface BatchInfo {
  rows: number;
  /** Padded tokens (rows × longest row). */
  tokens: number;
  milliseconds: number;
}

type Taken<Row, Out> = { pending: Pending<Row, Out>; index: number; row: Row };

/** What the batcher reports as it works, e.g. to metrics. */
export interface BatcherHooks {
  onBatch?: (info: BatchInfo) => void;
  /** Rows taken out of the queue unrun: their client went away, or the drain ran out of time. */
  onDropped?: (rows: number, reason: 'cancelled' | 'shutdown') => void;
}

export interface Answered<Out> {
  outputs: Out[];
  /** From acceptance until the request's first row started running. */
  queueMs: number;
  /** From its first row's batch starting until its last row's batch finished. */
  inferenceMs: number;
}

interface Pending<Row, Out> {
  rows: Row[];
  outputs: Out[];
  remaining: number;
  /** Rows not yet taken into a batch: rows[next…]. */
  next: number;
  accepted: number;
  firstStart: number | null;
  cancelled: boolean;
  resolve: (answer: Answered<Out>) => void;
  reject: (error: Error) => void;
}

const now = () => performance.now();

export class Batcher<Row extends { tokenCount: number }, Out> {
  private readonly queue: Pending<Row, Out>[] = [];
  private queued = 0;
  private running = false;
  private closing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly run: (rows: Row[]) => Promise<Out[]>,
    readonly limits: BatchLimits,
    private readonly hooks: BatcherHooks = {},
  ) {
    for (const [name, value] of Object.entries(limits)) {
      if (value === undefined && name === 'passCostTokens') continue;
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`batch limit ${name} must be a positive integer, got ${value}`);
    }
  }

  /** Rows waiting for a batch. */
  get queuedRows(): number {
    return this.queued;
  }

  /**
   * Queues a request's rows; resolves with one output per row, in order. Refused at once with
   * QueueFullError when its rows would take the queue past maxQueuedRows; when `signal` aborts,
   * its rows not yet running are dropped and it rejects with CancelledError.
   */
  submit(rows: Row[], signal?: AbortSignal): Promise<Answered<Out>> {
    if (this.closing) return Promise.reject(new ShuttingDownError('the server is shutting down'));
    if (rows.length === 0) return Promise.resolve({ outputs: [], queueMs: 0, inferenceMs: 0 });
    if (rows.length > this.limits.maxQueuedRows) {
      return Promise.reject(new QueueFullError(`${rows.length} rows never fit a queue of at most ${this.limits.maxQueuedRows}; send fewer at a time`));
    }
    if (this.queued + rows.length > this.limits.maxQueuedRows) {
      return Promise.reject(new QueueFullError(`the queue holds ${this.queued} of at most ${this.limits.maxQueuedRows} rows; ${rows.length} more do not fit, retry later`));
    }
    if (signal?.aborted) return Promise.reject(new CancelledError('the client went away'));
    return new Promise<Answered<Out>>((resolve, reject) => {
      const pending: Pending<Row, Out> = { rows, outputs: new Array(rows.length), remaining: rows.length, next: 0, accepted: now(), firstStart: null, cancelled: false, resolve, reject };
      this.queue.push(pending);
      this.queued += rows.length;
      signal?.addEventListener('abort', () => this.cancel(pending), { once: true });
      this.pump();
    });
  }

  /** Stops accepting requests; resolves once every accepted one is answered. */
  close(): Promise<void> {
    this.closing = true;
    return this.idle();
  }

  /** Rejects every request still waiting with ShuttingDownError (what a drain that ran out of time does). */
  dropQueued(): void {
    for (const pending of [...this.queue]) this.fail(pending, new ShuttingDownError('the server shut down before this request ran'));
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private cancel(pending: Pending<Row, Out>): void {
    if (pending.remaining === 0 || pending.cancelled) return;
    this.fail(pending, new CancelledError('the client went away'));
    this.pump();
  }

  private fail(pending: Pending<Row, Out>, error: Error): void {
    pending.cancelled = true;
    const at = this.queue.indexOf(pending);
    if (at >= 0) {
      this.queue.splice(at, 1);
      const dropped = pending.rows.length - pending.next;
      this.queued -= dropped;
      if (error instanceof CancelledError || error instanceof ShuttingDownError) this.hooks.onDropped?.(dropped, error instanceof CancelledError ? 'cancelled' : 'shutdown');
    }
    pending.reject(error);
  }

  /** The next batch: queued rows in arrival order within the budgets (at least one row). */
  private take(): Taken<Row, Out>[] {
    const batch: Taken<Row, Out>[] = [];
    let longest = 0;
    while (this.queue.length && batch.length < this.limits.maxBatchRows) {
      const pending = this.queue[0]!;
      const row = pending.rows[pending.next]!;
      const width = Math.max(longest, row.tokenCount, 1);
      if (batch.length > 0 && (batch.length + 1) * width > this.limits.maxBatchTokens) break;
      longest = width;
      batch.push({ pending, index: pending.next++, row });
      this.queued--;
      if (pending.next === pending.rows.length) this.queue.shift();
    }
    return batch;
  }

  /** The batch as passes: one, or length-sorted runs of it where that is cheaper (see lengthRuns). */
  private passes(batch: Taken<Row, Out>[]): Taken<Row, Out>[][] {
    const passCost = this.limits.passCostTokens;
    if (passCost === undefined || batch.length < 2) return [batch];
    const sorted = [...batch].sort((a, b) => a.row.tokenCount - b.row.tokenCount);
    let from = 0;
    return lengthRuns(sorted.map(({ row }) => row.tokenCount), passCost).map((end) => sorted.slice(from, (from = end)));
  }

  private pump(): void {
    if (this.running) return;
    const batch = this.take();
    if (batch.length === 0) {
      for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    this.running = true;
    const started = now();
    for (const { pending } of batch) pending.firstStart ??= started;
    void this.runPasses(this.passes(batch)).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  /** Runs the passes one after another, answering each pass's rows as it finishes. */
  private async runPasses(passes: Taken<Row, Out>[][]): Promise<void> {
    for (const pass of passes) {
      const started = now();
      const tokens = pass.length * Math.max(1, ...pass.map(({ row }) => row.tokenCount));
      try {
        const outputs = await this.run(pass.map(({ row }) => row));
        const finished = now();
        this.hooks.onBatch?.({ rows: pass.length, tokens, milliseconds: finished - started });
        pass.forEach(({ pending, index }, b) => {
          if (pending.cancelled) return;
          pending.outputs[index] = outputs[b]!;
          if (--pending.remaining === 0) pending.resolve({ outputs: pending.outputs, queueMs: pending.firstStart! - pending.accepted, inferenceMs: finished - pending.firstStart! });
        });
      } catch (error: unknown) {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const { pending } of pass) if (!pending.cancelled) this.fail(pending, failure);
      }
    }
  }
}
