// Host data on its way to the GPU in order with encoded kernels. Small uploads share one ring
// per submit, whose contents reach the GPU at the submit, before the copies that read them;
// larger ones get a staging buffer of their own, destroyed once the submit that copies from
// it is made.

const UPLOAD_RING_BYTES = 4 << 20;
/** The largest upload that goes through the ring. */
export const RING_UPLOAD_MAX = 256 << 10;
/** Host-visible bytes pending uploads may hold before the batch is submitted. */
const STAGING_LIMIT = 256 << 20;

/**
 * A GPU buffer filled from a host mirror once per submit: the upload ring (copy sources of
 * small uploads) and the uniform arena of one-off bind groups (uniforms.ts) are each one.
 */
export class StagedArena {
  readonly buffer: GPUBuffer;
  private readonly mirror: Uint8Array<ArrayBuffer>;
  private used = 0;

  constructor(
    device: GPUDevice,
    label: string,
    private readonly bytes: number,
    usage: GPUBufferUsageFlags,
    /** Each placement starts at a multiple of this many bytes. */
    private readonly align: number,
  ) {
    this.buffer = device.createBuffer({ label, size: bytes, usage });
    this.mirror = new Uint8Array(bytes);
  }

  /** Whether `bytes` more fit before the submit. */
  fits(bytes: number): boolean {
    return this.used + bytes <= this.bytes;
  }

  /** Stages the data and returns its byte offset in the buffer. */
  place(data: ArrayBufferView): number {
    const offset = this.used;
    this.mirror.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    this.used += Math.ceil(data.byteLength / this.align) * this.align;
    return offset;
  }

  /** At the submit: writes what was placed, and starts over. */
  upload(queue: GPUQueue): void {
    if (this.used === 0) return;
    queue.writeBuffer(this.buffer, 0, this.mirror.buffer, 0, this.used);
    this.used = 0;
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

/** The ring of small uploads. */
export function uploadRing(device: GPUDevice): StagedArena {
  return new StagedArena(device, 'upload ring', UPLOAD_RING_BYTES, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 4);
}

export class StagingBuffers {
  private pending: GPUBuffer[] = [];
  private bytes = 0;

  constructor(private readonly device: GPUDevice) {}

  /** A mapped-at-creation copy source holding the data, padded to `size` bytes. */
  create(data: ArrayBufferView, size: number): GPUBuffer {
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.pending.push(staging);
    this.bytes += size;
    return staging;
  }

  /** Whether the pending uploads hold enough host-visible memory that the batch should be submitted. */
  get overLimit(): boolean {
    return this.bytes > STAGING_LIMIT;
  }

  /** After the submit: destruction waits for the submitted copies that read them. */
  release(): void {
    for (const b of this.pending) b.destroy();
    this.pending = [];
    this.bytes = 0;
  }
}
