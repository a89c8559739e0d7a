// Where kernels' Params uniforms live. A cached bind group owns a slot of its own in one
// buffer (UniformSlots), rewritten only when a dispatch brings other values; a bind group made
// for one dispatch alone takes its uniforms from an arena refilled at every submit
// (uniformArena). Both are mirrored on the host and written to the GPU at the submit.
import { StagedArena } from './uploads.ts';

/** Uniform slots owned by cached bind groups (each 256 bytes, the largest offset alignment WebGPU allows). */
const PARAM_SLOTS = 4096;
export const PARAM_SLOT_BYTES = 256;
const UNIFORM_ARENA_BYTES = 1 << 16;

/**
 * A bind group kept for reuse: the same pipeline over the same buffer ranges finds it again
 * (pooled buffers keep their identity). Its uniforms live in a slot of its own, rewritten when
 * a dispatch brings other values and the slot is not already used by the unsubmitted batch.
 */
export interface CachedGroup {
  group: GPUBindGroup;
  /** Byte offset of its uniform slot, or -1 without uniforms. */
  slot: number;
  /** The batch that last used the slot's contents. */
  batch: number;
}

export class UniformSlots {
  readonly buffer: GPUBuffer;
  private readonly mirror = new Uint8Array(PARAM_SLOTS * PARAM_SLOT_BYTES);
  private readonly words = new Uint32Array(this.mirror.buffer);
  private used = 0;
  /** Slots whose contents changed in this batch, written to the GPU at the submit. */
  private dirty: number[] = [];

  constructor(device: GPUDevice) {
    this.buffer = device.createBuffer({ label: 'bind group uniforms', size: PARAM_SLOTS * PARAM_SLOT_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  get full(): boolean {
    return this.used === PARAM_SLOTS;
  }

  /** A new slot's byte offset (check `full` first). */
  allocate(): number {
    return this.used++ * PARAM_SLOT_BYTES;
  }

  /** Hands every slot out again: their groups were dropped. */
  reset(): void {
    this.used = 0;
  }

  holds(slot: number, params: Uint32Array): boolean {
    const base = slot >> 2;
    const words = this.words;
    for (let i = 0; i < params.length; i++) if (words[base + i] !== params[i]) return false;
    return true;
  }

  write(slot: number, params: Uint32Array): void {
    this.words.set(params, slot >> 2);
    this.dirty.push(slot);
  }

  /** Writes the changed slots, runs of adjacent slots in one write each. */
  upload(queue: GPUQueue): void {
    if (this.dirty.length === 0) return;
    const slots = this.dirty.sort((a, b) => a - b);
    this.dirty = [];
    let start = slots[0]!;
    let end = start + PARAM_SLOT_BYTES;
    const write = () => queue.writeBuffer(this.buffer, start, this.mirror.buffer, start, end - start);
    for (let i = 1; i < slots.length; i++) {
      const slot = slots[i]!;
      if (slot < end) continue;
      if (slot !== end) {
        write();
        start = slot;
      }
      end = slot + PARAM_SLOT_BYTES;
    }
    write();
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

/** The uniforms of bind groups made for one dispatch alone, refilled at every submit. */
export function uniformArena(device: GPUDevice): StagedArena {
  return new StagedArena(device, 'uniform arena', UNIFORM_ARENA_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, device.limits.minUniformBufferOffsetAlignment);
}
