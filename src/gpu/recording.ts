// Recordings of encoded work, for captured steps (src/tensor/capture.ts): the commands some
// synchronous work encoded, kept so Gpu.replay can encode the same work again without
// running the code that made it.
import type { Binding } from './context.ts';
import type { CachedGroup } from './uniforms.ts';

/** One command of a recording, as replay() encodes it again. */
export type RecordedCommand =
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; cached: CachedGroup; params: Uint32Array | undefined; x: number; y: number; z: number }
  | { kind: 'copy'; src: Binding; dst: Binding }
  | { kind: 'write'; dst: Binding; data: Uint8Array }
  | { kind: 'flush' };

/**
 * The commands some synchronous work encoded (Gpu.startRecording .. stopRecording), kept so the
 * same work can be encoded again without running the code that made it (Gpu.replay). Only
 * work whose every dispatch found or made a cached bind group can be replayed: those groups
 * stay valid (and their uniform slots theirs) until the engine drops its bind groups.
 */
export class GpuRecording {
  readonly commands: RecordedCommand[] = [];
  /** Every buffer the commands bind, copy or write. */
  readonly buffers = new Set<GPUBuffer>();
  /** Why the work cannot be replayed; null where it can. */
  unreplayable: string | null = null;
  dispatches = 0;

  constructor(
    /** The bind group generation it was made in (see Gpu.dropBindGroups). */
    readonly generation: number,
  ) {}

  /** Whether another recording encoded exactly the same commands on the same buffers with the same data. */
  sameAs(other: GpuRecording): boolean {
    if (other.commands.length !== this.commands.length) return false;
    return this.commands.every((c, i) => sameCommand(c, other.commands[i]!));
  }
}

function sameCommand(a: RecordedCommand, b: RecordedCommand): boolean {
  switch (a.kind) {
    case 'dispatch':
      return b.kind === 'dispatch' && a.pipeline === b.pipeline && a.cached === b.cached && a.x === b.x && a.y === b.y && a.z === b.z && sameWords(a.params, b.params);
    case 'copy':
      return b.kind === 'copy' && sameRange(a.src, b.src) && sameRange(a.dst, b.dst);
    case 'write':
      return b.kind === 'write' && sameRange(a.dst, b.dst) && sameWords(a.data, b.data);
    case 'flush':
      return b.kind === 'flush';
  }
}

function sameRange(a: Binding, b: Binding): boolean {
  return a.buffer === b.buffer && (a.offset ?? 0) === (b.offset ?? 0) && a.size === b.size;
}

function sameWords(a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
