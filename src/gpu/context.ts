// The engine's view of one GPUDevice: pipelines, batched command encoding, pooled buffers,
// and error reporting. Uses only web-standard WebGPU so it runs in browsers, Deno and Node.
import { KERNELS } from './kernel-sources.generated.js';
import { BufferPool, type MemoryStats } from './pool.js';
import { KERNEL_FEATURES, featureFlags, kernelFlags, specialize, type KernelFeature } from './features.js';
import { kernelClassOf, type KernelClass } from './kernel-class.js';

export type KernelName = keyof typeof KERNELS;

/** A range of a GPU buffer bound to one kernel binding. */
export interface Binding {
  buffer: GPUBuffer;
  offset?: number;
  size: number;
  /** Named in error messages when a limit is exceeded. */
  label?: string;
}

export interface Dispatch {
  kernel: KernelName;
  entry: string;
  /** Pipeline-overridable constants (WGSL `override`), e.g. workgroup sizes. */
  constants?: Record<string, number>;
  /** The op's own variant flags for the kernel's `//#if` blocks (device features are added by the engine). */
  flags?: readonly string[];
  /** Bytes of the kernel's `Params` uniform struct at binding 0, or none. */
  params?: ArrayBuffer;
  /** Storage bindings 1..n, in order. */
  bindings: Binding[];
  workgroups: readonly [number, number?, number?];
}

const UNIFORM_ARENA_BYTES = 1 << 16;

export interface GpuOptions {
  /**
   * The WGSL language features of the GPU object the device came from
   * (navigator.gpu.wgslLanguageFeatures). The subgroup kernels need `subgroup_id`; without
   * this list they are not used.
   */
  wgslLanguageFeatures?: ReadonlySet<string>;
  /** Which of the offered kernel features to use (default: all offered). */
  kernelFeatures?: readonly KernelFeature[];
  /** The kernel family to run (default: by adapter, see kernelClassOf). */
  kernelClass?: KernelClass;
}

/** Thrown for any WebGPU error surfaced by the engine, with the WebGPU message. */
export class GpuError extends Error {
  override name = 'GpuError';
}

export class Gpu {
  readonly device: GPUDevice;
  readonly limits: GPUSupportedLimits;
  readonly pool: BufferPool;
  /** Human-readable adapter description, for logs and benchmark names. */
  readonly adapterName: string;
  readonly features: ReadonlySet<string>;
  /** Kernel features the device offers: those the kernels may use. */
  readonly offeredKernelFeatures: ReadonlySet<KernelFeature>;
  private activeFeatures: ReadonlySet<KernelFeature>;

  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly flagsOfKernel = new Map<KernelName, Set<string>>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Each pipeline's bind group layout: getBindGroupLayout() makes a new object per call. */
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  private readonly uniformAlign: number;
  private readonly uniformArena: GPUBuffer;
  private readonly uniformStaging: Uint8Array;
  private uniformUsed = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private stagingToDestroy: GPUBuffer[] = [];
  private stagingBytes = 0;
  private pendingErrors: Promise<GPUError | null>[] = [];
  private failure: Error | null = null;
  private lost = false;
  /**
   * The kernel family ops choose: 'cpu' on software adapters, 'gpu' elsewhere. Settable, so
   * either family can run (and be tested) on any adapter.
   */
  kernelClass: KernelClass;
  /** Fill every newly allocated tensor with NaN, so a kernel that leaves elements unwritten is caught (tests). */
  poison = false;
  /** Number of command buffers submitted, for tests that prove work is batched. */
  submits = 0;
  dispatches = 0;

  constructor(device: GPUDevice, adapterName = 'unknown adapter', options: GpuOptions = {}) {
    this.device = device;
    this.adapterName = adapterName;
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    const language = options.wgslLanguageFeatures ?? new Set<string>();
    this.offeredKernelFeatures = new Set(
      KERNEL_FEATURES.filter((f) => this.features.has(f) && (f !== 'subgroups' || language.has('subgroup_id'))),
    );
    this.activeFeatures = this.offeredKernelFeatures;
    this.kernelClass = options.kernelClass ?? kernelClassOf(adapterName);
    if (options.kernelFeatures) this.useKernelFeatures(options.kernelFeatures);
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.pool = new BufferPool(device, (scope, bytes, label, inUse) =>
      this.track(
        scope,
        `allocating ${bytes} bytes for ${label ?? 'a tensor'} with ${inUse} bytes already in use ` +
          '(the work does not fit in GPU memory: lower the batch size or the max length)',
      ),
    );
    this.uniformArena = device.createBuffer({
      label: 'uniform arena',
      size: UNIFORM_ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.uniformStaging = new Uint8Array(UNIFORM_ARENA_BYTES);
    device.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= new GpuError(`WebGPU error: ${error.message}`);
    });
    device.lost.then((info) => {
      this.lost = true;
      if (info.reason !== 'destroyed') this.failure ??= new GpuError(`GPU device lost: ${info.message}`);
    });
  }

  /** Kernel features in use: offered by the device and not turned off. */
  get kernelFeatures(): ReadonlySet<KernelFeature> {
    return this.activeFeatures;
  }

  /**
   * Restricts the kernels to these features (those the device does not offer are ignored),
   * e.g. to run the fallbacks on a device that has the features. Returns the features now in use.
   */
  useKernelFeatures(features: readonly KernelFeature[]): ReadonlySet<KernelFeature> {
    this.activeFeatures = new Set(features.filter((f) => this.offeredKernelFeatures.has(f)));
    return this.activeFeatures;
  }

  /** A compute pipeline for one entry point of a kernel family, compiled once per variant and cached. */
  pipeline(kernel: KernelName, entry: string, constants: Record<string, number> = {}, opFlags: readonly string[] = []): GPUComputePipeline {
    let tested = this.flagsOfKernel.get(kernel);
    if (!tested) this.flagsOfKernel.set(kernel, (tested = kernelFlags(KERNELS[kernel])));
    const flags = [...featureFlags(this.activeFeatures), ...opFlags].filter((f) => tested.has(f)).sort();
    const variant = `${kernel}[${flags.join(',')}]`;
    const key = `${variant}:${entry}:${JSON.stringify(constants)}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      this.device.pushErrorScope('validation');
      let module = this.modules.get(variant);
      if (!module) {
        module = this.device.createShaderModule({ label: variant, code: specialize(KERNELS[kernel], new Set(flags)) });
        this.modules.set(variant, module);
      }
      pipeline = this.device.createComputePipeline({
        label: `${variant}.${entry}`,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants },
      });
      this.track(this.device.popErrorScope(), `compiling kernel ${kernel}.${entry}`);
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /** Encodes one dispatch into the current batch; nothing is submitted until flush() or read(). */
  dispatch(d: Dispatch): void {
    this.throwIfFailed();
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    for (const b of d.bindings) {
      if (b.size > maxBinding) {
        throw new GpuError(
          `${d.kernel}.${d.entry}: ${b.label ?? 'a buffer'} needs a ${b.size}-byte storage binding, ` +
            `over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes`,
        );
      }
    }
    const [x, y = 1, z = 1] = d.workgroups;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new GpuError(`${d.kernel}.${d.entry}: ${x}×${y}×${z} workgroups exceed the limit of ${maxGroups} per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const pipeline = this.pipeline(d.kernel, d.entry, d.constants, d.flags);
    const entries: GPUBindGroupEntry[] = [];
    if (d.params) {
      if (this.uniformUsed + d.params.byteLength > UNIFORM_ARENA_BYTES) this.flush();
      entries.push({ binding: 0, resource: { buffer: this.uniformArena, offset: this.uniformUsed, size: d.params.byteLength } });
      this.uniformStaging.set(new Uint8Array(d.params), this.uniformUsed);
      this.uniformUsed += Math.ceil(d.params.byteLength / this.uniformAlign) * this.uniformAlign;
    }
    d.bindings.forEach((b, i) => {
      entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: Math.max(4, b.size) } });
    });
    let layout = this.layouts.get(pipeline);
    if (!layout) this.layouts.set(pipeline, (layout = pipeline.getBindGroupLayout(0)));
    const group = this.device.createBindGroup({ layout, entries });
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    // Bound the size of one command buffer; submitting does not wait for the GPU.
    if (++this.dispatchesInBatch >= 512) this.flush();
  }

  /** Copies between buffers, in order with the dispatches around it. */
  copy(src: Binding, dst: Binding): void {
    this.throwIfFailed();
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src.buffer, src.offset ?? 0, dst.buffer, dst.offset ?? 0, src.size);
  }

  /**
   * Writes host data into a buffer, in order with the encoded kernels (through a staging
   * copy: queue.writeBuffer would overtake unsubmitted work on a reused pooled buffer).
   */
  write(dst: Binding, data: ArrayBufferView): void {
    this.throwIfFailed();
    const size = Math.ceil(data.byteLength / 4) * 4;
    if (size === 0) return;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.copy({ buffer: staging, size }, { ...dst, size });
    this.stagingToDestroy.push(staging);
    this.stagingBytes += size;
    // Bound host-visible memory held by pending uploads.
    if (this.stagingBytes > 256 << 20) this.flush();
  }

  /** Submits all encoded work. Does not wait for it. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.uniformUsed > 0) {
      this.device.queue.writeBuffer(this.uniformArena, 0, this.uniformStaging.buffer, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    const commands = this.encoder.finish();
    this.encoder = null;
    this.dispatchesInBatch = 0;
    this.device.queue.submit([commands]);
    this.track(this.device.popErrorScope(), 'running kernels');
    this.track(this.device.popErrorScope(), 'running kernels');
    this.submits++;
    // Destruction waits for the submitted copies that read these.
    for (const b of this.stagingToDestroy) b.destroy();
    this.stagingToDestroy = [];
    this.stagingBytes = 0;
  }

  /** Reads a buffer range back to the host: the one place the engine waits on the GPU. */
  async read(src: Binding): Promise<ArrayBuffer> {
    const size = Math.ceil(src.size / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (size > 0) this.copy({ ...src, size }, { buffer: staging, size });
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const data = staging.getMappedRange().slice(0, src.size);
      staging.unmap();
      await this.checkErrors();
      return data;
    } catch (error) {
      await this.checkErrors();
      throw this.failure ?? (error instanceof Error && this.lost ? new GpuError(`GPU device lost: ${error.message}`) : error);
    } finally {
      staging.destroy();
    }
  }

  /** Waits for all submitted work and throws the first WebGPU error it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  memory(): MemoryStats {
    return this.pool.stats();
  }

  private async checkErrors(): Promise<void> {
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    await Promise.all(pending);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
    if (this.lost) throw new GpuError('GPU device was destroyed or lost');
  }

  private track(scope: Promise<GPUError | null>, doing: string): void {
    this.pendingErrors.push(
      scope.then((error) => {
        if (error) this.failure ??= new GpuError(`WebGPU error while ${doing}: ${error.message}`);
        return error;
      }),
    );
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    this.pass ??= this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Releases the device; the process can exit once nothing else holds Dawn. */
  destroy(): void {
    this.flush();
    this.pool.destroy();
    this.uniformArena.destroy();
    this.device.destroy();
  }
}
