// The command stream: one command encoder per batch, one compute pass at a time within it
// (setting pipeline and bind group only when they change), submitted by Gpu.flush. WebGPU
// errors of the batch are caught by error scopes opened with its encoder and closed at submit,
// and surface as one GpuError at the next wait (ErrorLog).

/** Thrown for any WebGPU error surfaced by the engine, with the WebGPU message. */
export class GpuError extends Error {
  override name = 'GpuError';
}

/** The first WebGPU error the device raised, and whether it was lost. */
export class ErrorLog {
  failure: Error | null = null;
  lost = false;
  private pending: Promise<GPUError | null>[] = [];

  constructor(device: GPUDevice) {
    device.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= new GpuError(`WebGPU error: ${error.message}`);
    });
    device.lost.then((info) => {
      this.lost = true;
      if (info.reason !== 'destroyed') this.failure ??= new GpuError(`GPU device lost: ${info.message}`);
    });
  }

  /** Keeps an error scope's outcome, described as what the engine was doing. */
  track(scope: Promise<GPUError | null>, doing: string): void {
    this.pending.push(
      scope.then((error) => {
        if (error) this.failure ??= new GpuError(`WebGPU error while ${doing}: ${error.message}`);
        return error;
      }),
    );
  }

  /** Waits for the scopes tracked so far and throws the first error. */
  async check(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    await Promise.all(pending);
    this.throwIfFailed();
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
    if (this.lost) throw new GpuError('GPU device was destroyed or lost');
  }
}

export class CommandStream {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private passPipeline: GPUComputePipeline | null = null;
  private passGroup: GPUBindGroup | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly errors: ErrorLog,
  ) {}

  /** Whether anything was encoded since the last submit. */
  get open(): boolean {
    return this.encoder !== null;
  }

  /** Encodes a dispatch in the open pass, or with `timestampWrites` in a pass of its own (profiling). */
  dispatch(pipeline: GPUComputePipeline, group: GPUBindGroup, x: number, y: number, z: number, timestampWrites?: GPUComputePassTimestampWrites): void {
    if (timestampWrites) {
      this.endPass();
      const own = this.commandEncoder().beginComputePass({ timestampWrites });
      own.setPipeline(pipeline);
      own.setBindGroup(0, group);
      own.dispatchWorkgroups(x, y, z);
      own.end();
      return;
    }
    const pass = (this.pass ??= this.commandEncoder().beginComputePass());
    if (this.passPipeline !== pipeline) pass.setPipeline((this.passPipeline = pipeline));
    if (this.passGroup !== group) pass.setBindGroup(0, (this.passGroup = group));
    pass.dispatchWorkgroups(x, y, z);
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Submits the batch (call only while open) and tracks its errors. */
  submit(queue: GPUQueue): void {
    this.endPass();
    const commands = this.encoder!.finish();
    this.encoder = null;
    queue.submit([commands]);
    this.errors.track(this.device.popErrorScope(), 'running kernels');
    this.errors.track(this.device.popErrorScope(), 'running kernels');
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
    this.passPipeline = null;
    this.passGroup = null;
  }
}
