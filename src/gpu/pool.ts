// Reuses GPU buffers by size class so a training loop runs in constant memory.
//
// A released buffer is handed out again at once, even while unsubmitted commands still use
// it: every access to pooled buffers (kernels, copies, uploads through staging copies) is
// encoded in one ordered stream, so a later user can never overtake an earlier one.

export interface MemoryStats {
  /** Bytes in buffers handed out and not yet released. */
  inUse: number;
  /** Bytes held by the pool for reuse. */
  pooled: number;
  /** Highest `inUse` seen. */
  peak: number;
  /** Buffers created since the start (a steady loop stops creating them). */
  created: number;
}

/** Size classes: powers of two up to 1 MiB, then steps of an eighth of the power of two (≤ 12.5% waste). */
export function sizeClass(bytes: number): number {
  const size = Math.max(16, Math.ceil(bytes / 16) * 16);
  // Every tensor made asks this: a count of leading zeros, where Math.log2 took a tenth of a microsecond.
  const pow2 = size <= 2 ** 31 ? 2 ** (32 - Math.clz32(size - 1)) : 2 ** Math.ceil(Math.log2(size));
  if (pow2 <= 1 << 20) return pow2;
  const step = pow2 / 16;
  return Math.ceil(size / step) * step;
}

/** What the pool knows of a buffer it made. */
interface Pooled {
  readonly buffer: GPUBuffer;
  readonly size: number;
  /** Creation order, for restack(). */
  readonly serial: number;
  free: boolean;
}

export class BufferPool {
  /** Free buffers by size class. They hold their records, so handing one out looks nothing up. */
  private readonly free = new Map<number, Pooled[]>();
  /** Every buffer made and not yet destroyed by trim() (a Map, not a WeakMap: the pool holds these buffers until then anyway). */
  private readonly records = new Map<GPUBuffer, Pooled>();
  private inUse = 0;
  private pooled = 0;
  private peak = 0;
  private created = 0;
  private maxBufferSize: number | undefined;

  /**
   * @param onAllocation receives each new buffer's out-of-memory error scope, so running out of
   * GPU memory surfaces as a clear error instead of a lost device.
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly onAllocation?: (outOfMemory: Promise<GPUError | null>, bytes: number, label: string | undefined, inUse: number) => void,
  ) {}

  acquire(bytes: number, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    // Every read of a limit is a native call in Dawn's Node binding (0.15-0.26 µs, measured).
    const max = (this.maxBufferSize ??= this.device.limits.maxBufferSize);
    if (size > max) {
      throw new RangeError(`${label ?? 'a tensor'} needs a ${bytes}-byte buffer, over this adapter's maxBufferSize of ${max} bytes`);
    }
    let record = this.free.get(size)?.pop();
    if (record) {
      record.free = false;
      this.pooled -= size;
    } else {
      // GPUBufferUsage is read lazily: the host defines the WebGPU globals when it opens a device.
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
      this.device.pushErrorScope('out-of-memory');
      const buffer = this.device.createBuffer({ size, usage, ...(label ? { label } : {}) });
      this.onAllocation?.(this.device.popErrorScope(), size, label, this.inUse);
      record = { buffer, size, serial: this.created++, free: false };
      this.records.set(buffer, record);
    }
    this.inUse += size;
    this.peak = Math.max(this.peak, this.inUse);
    return record.buffer;
  }

  release(buffer: GPUBuffer): void {
    const record = this.records.get(buffer);
    if (record === undefined) throw new Error('released a buffer the pool did not allocate');
    if (record.free) throw new Error('released a buffer twice');
    record.free = true;
    this.inUse -= record.size;
    this.pooled += record.size;
    let list = this.free.get(record.size);
    if (!list) this.free.set(record.size, (list = []));
    list.push(record);
  }

  /**
   * Orders the free buffers so each size class hands out its oldest first. Work that runs
   * again on a pool where it released everything then gets the same buffer for the same
   * tensor every time, whatever order it released them in (a captured step relies on this).
   */
  restack(): void {
    for (const list of this.free.values()) list.sort((a, b) => b.serial - a.serial);
  }

  /** Whether this pool made the buffer. */
  owns(buffer: GPUBuffer): boolean {
    return this.records.has(buffer);
  }

  /** Whether the buffer is released and waiting to be handed out again. */
  isFree(buffer: GPUBuffer): boolean {
    return this.records.get(buffer)?.free ?? false;
  }

  /** Frees pooled buffers (e.g. between phases with different shapes). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const record of list) {
        record.buffer.destroy();
        this.records.delete(record.buffer);
      }
    }
    this.free.clear();
    this.pooled = 0;
  }

  stats(): MemoryStats {
    return { inUse: this.inUse, pooled: this.pooled, peak: this.peak, created: this.created };
  }

  destroy(): void {
    this.trim();
  }
}
