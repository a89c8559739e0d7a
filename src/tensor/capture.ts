// Captured steps: training repeats the same step thousands of times, and on a fast GPU the
// JavaScript that encodes it (ops, tape, tensor bookkeeping) is what the step costs. A
// CapturedStep runs its function while the device records every command it encodes; once two
// runs in a row encoded the same commands on the same buffers, later runs replay that
// recording (Gpu.replay) without running the function, as tinygrad's TinyJit or CUDA graphs do.
//
// What makes a replay the same work:
// - the tensors the function makes live in a pool of the capture's own, so nothing else can
//   be handed its intermediates between runs; the output is copied into a fresh tensor;
// - the function leaves no tensor it made alive but its output (use tidy-style code, and
//   zero the gradients inside it);
// - what changes from run to run enters through tensors written before run() (Adam.prepare()
//   writes its bias corrections, learning rate and clipping factor that way), never through
//   host values read inside the function: a replay repeats the uploads it recorded.
// The function's inputs (weights, cached pasts) must stay alive while the capture is used; a
// run finds any of them disposed and records again instead of replaying.
import type { Gpu, Binding, GpuRecording } from '../gpu/context.ts';
import type { BufferPool, MemoryStats } from '../gpu/pool.ts';
import { Tensor, tidy, sameShape, type DType, type Shape } from './tensor.ts';

interface Captured {
  recording: GpuRecording;
  /** The function's output, in the capture's pool, copied out after each replay. */
  output: Binding;
  shape: Shape;
  dtype: DType;
  /** Buffers the commands use that the capture's pool did not make. */
  inputs: GPUBuffer[];
}

export type CaptureState = 'recording' | 'replaying' | 'not replayable';

export class CapturedStep {
  private readonly pool: BufferPool;
  /** The last run's recording, and the one being replayed. */
  private previous: Captured | null = null;
  private captured: Captured | null = null;
  /** Why the last recording cannot be replayed (null while it can). */
  reason: string | null = null;
  /** Runs recorded (the function ran) and replayed. */
  recorded = 0;
  replayed = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly fn: () => Tensor,
  ) {
    this.pool = gpu.createPool();
  }

  get state(): CaptureState {
    if (this.captured) return 'replaying';
    return this.reason ? 'not replayable' : 'recording';
  }

  /** Runs the step (or replays it) and returns its output, a tensor of the caller's. */
  run(): Tensor {
    const captured = this.captured;
    if (captured && this.stillValid(captured)) {
      this.gpu.replay(captured.recording);
      this.replayed++;
      return this.copyOut(captured.output, captured.shape, captured.dtype);
    }
    this.captured = null;
    return this.record();
  }

  /** GPU memory of the capture's own pool: the step's intermediates. */
  memory(): MemoryStats {
    return this.pool.stats();
  }

  /** Frees the capture's buffers; run() must not be called again. */
  dispose(): void {
    this.captured = null;
    this.previous = null;
    // Cached bind groups name these buffers; once they are destroyed nothing may find those groups again.
    this.gpu.dropBindGroups();
    this.pool.destroy();
  }

  private record(): Tensor {
    this.pool.restack();
    this.gpu.startRecording(this.pool);
    let out: Tensor;
    let recording: GpuRecording;
    try {
      out = tidy(this.fn);
    } finally {
      recording = this.gpu.stopRecording();
    }
    this.recorded++;
    if (!(out instanceof Tensor)) throw new TypeError('CapturedStep: the function must return one tensor');
    const { buffer, offset, size } = out.binding();
    const output: Binding = { buffer, offset: offset ?? 0, size };
    const result = this.copyOut(output, out.shape, out.dtype);
    out.dispose();
    const kept = this.pool.stats().inUse;
    if (kept > 0) recording.unreplayable ??= `the function left ${kept} bytes of tensors it made alive besides its output`;
    this.reason = recording.unreplayable;
    const run: Captured = { recording, output, shape: out.shape, dtype: out.dtype, inputs: [...recording.buffers].filter((b) => !this.pool.owns(b)) };
    const previous = this.previous;
    this.previous = run;
    if (!this.reason && previous && previous.dtype === run.dtype && sameShape(previous.shape, run.shape) && previous.output.buffer === output.buffer && previous.recording.sameAs(recording)) this.captured = run;
    return result;
  }

  /** Whether the recording still describes the work: its bind groups are current and none of its inputs went back to the device's pool. */
  private stillValid(c: Captured): boolean {
    if (!this.gpu.canReplay(c.recording)) return false;
    const pool = this.gpu.pool;
    for (const b of c.inputs) if (pool.isFree(b)) return false;
    return true;
  }

  private copyOut(output: Binding, shape: Shape, dtype: DType): Tensor {
    const result = Tensor.empty(this.gpu, shape, dtype, 'captured step output');
    if (result.size > 0) this.gpu.copy(output, result.binding());
    return result;
  }
}
