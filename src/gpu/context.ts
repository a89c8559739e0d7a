// The engine's view of one GPUDevice: the Gpu class composes the jobs of launching work, each
// in a module of its own — pipelines (pipelines.ts), uniforms of bind groups (uniforms.ts),
// uploads (uploads.ts), the command stream, its submission and errors (commands.ts), and
// recordings for captured steps (recording.ts) — plus pooled buffers (pool.ts). Uses only
// web-standard WebGPU so it runs in browsers, Deno and Node.
import type { KernelName } from './registry.ts';
import { BufferPool, type MemoryStats } from './pool.ts';
import { KERNEL_FEATURES, type KernelFeature } from './features.ts';
import { kernelClassOf, type KernelClass } from './kernel-class.ts';
import { Pipelines, type PipelineEntry } from './pipelines.ts';
import { UniformSlots, uniformArena, PARAM_SLOT_BYTES, type CachedGroup } from './uniforms.ts';
import { StagingBuffers, uploadRing, RING_UPLOAD_MAX, type StagedArena } from './uploads.ts';
import { CommandStream, ErrorLog, GpuError } from './commands.ts';
import { GpuRecording, type RecordedCommand } from './recording.ts';
import type { DispatchMonitor } from './monitor.ts';

export type { KernelName };
export { GpuError, GpuRecording };

/** A range of a GPU buffer bound to one kernel binding. */
export interface Binding {
  buffer: GPUBuffer;
  offset?: number;
  size: number;
  /** Named in error messages when a limit is exceeded. */
  label?: string;
  /** The Gpu whose memory the buffer is (a tensor's binding says): binding it on another throws. */
  gpu?: Gpu;
}

/** What the engine keeps per bound buffer. */
interface BufferRecord {
  /** Names the buffer in bind group keys. */
  id: number;
  /** The batch that last bound or copied it: an upload into a buffer this batch has not touched can go straight to the queue. */
  lastUse: number;
  /** The key part of its last whole-buffer range (offset 0), kept so that ops on pooled buffers build no strings. */
  wholeSize: number;
  wholeKey: string;
}

export interface Dispatch {
  kernel: KernelName;
  entry: string;
  /** Pipeline-overridable constants (WGSL `override`), e.g. workgroup sizes. */
  constants?: Record<string, number>;
  /** The op's own variant flags for the kernel's `//#if` blocks (device features are added by the engine). */
  flags?: readonly string[];
  /** The kernel's `Params` uniform struct at binding 0 as words (packParams), or none. */
  params?: Uint32Array<ArrayBuffer>;
  /** Storage bindings 1..n, in order. */
  bindings: Binding[];
  workgroups: readonly [number, number?, number?];
}

/** Dispatches per command buffer. */
const DISPATCHES_PER_SUBMIT = 512;

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
  /**
   * Whether destroy() also destroys the device (default false: a device the caller made stays
   * the caller's). openGpu and openWebGpu, which make their own device, pass true.
   */
  ownsDevice?: boolean;
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

  private readonly pipelines: Pipelines;
  private readonly errors: ErrorLog;
  private readonly stream: CommandStream;
  private readonly slots: UniformSlots;
  private readonly arena: StagedArena;
  private readonly ring: StagedArena;
  private readonly staging: StagingBuffers;
  /** maxComputeWorkgroupsPerDimension, read once: each read of a limit is a native call in Dawn's Node binding. */
  private readonly maxWorkgroups: number;
  private readonly buffers = new WeakMap<GPUBuffer, BufferRecord>();
  private nextBufferId = 1;
  /** Counts submits: a cached group's uniforms may be rewritten only outside the batch that used them. */
  private batch = 0;
  private dispatchesInBatch = 0;
  /** Counts dropBindGroups(): a recording replays only in the generation it was made in. */
  private groupGeneration = 0;
  private recording: GpuRecording | null = null;
  private activePool: BufferPool;
  private readonly ownsDevice: boolean;
  /**
   * The kernel family ops choose: 'cpu' on software adapters, 'gpu' elsewhere. Settable, so
   * either family can run (and be tested) on any adapter.
   */
  kernelClass: KernelClass;
  /** Fill every newly allocated tensor with NaN, so a kernel that leaves elements unwritten is caught (tests). */
  poison = false;
  /**
   * Reuse bind groups and batch small uploads into one ring per submit (default). Off, every
   * dispatch makes a new bind group and every upload its own staging buffer: slower, the same
   * results (tests and benchmarks compare the two).
   */
  fastLaunch = true;
  /** Sees every dispatch, submit and wait while set (the profiler, checkNumerics: see monitor.ts); null otherwise. */
  monitor: DispatchMonitor | null = null;
  /** Number of command buffers submitted, for tests that prove work is batched. */
  submits = 0;
  dispatches = 0;
  /** Dispatches that found their bind group cached, and the bind groups made. */
  bindGroupHits = 0;
  bindGroupsMade = 0;

  constructor(device: GPUDevice, adapterName = 'unknown adapter', options: GpuOptions = {}) {
    this.device = device;
    this.adapterName = adapterName;
    this.ownsDevice = options.ownsDevice ?? false;
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    const language = options.wgslLanguageFeatures ?? new Set<string>();
    this.offeredKernelFeatures = new Set(
      KERNEL_FEATURES.filter((f) => this.features.has(f) && (f !== 'subgroups' || language.has('subgroup_id'))),
    );
    this.activeFeatures = this.offeredKernelFeatures;
    this.errors = new ErrorLog(device);
    this.pipelines = new Pipelines(device, this.activeFeatures, (scope, doing) => this.errors.track(scope, doing));
    this.stream = new CommandStream(device, this.errors);
    this.kernelClass = options.kernelClass ?? kernelClassOf(adapterName);
    if (options.kernelFeatures) this.useKernelFeatures(options.kernelFeatures);
    this.maxWorkgroups = device.limits.maxComputeWorkgroupsPerDimension;
    this.pool = this.createPool();
    this.activePool = this.pool;
    this.arena = uniformArena(device);
    this.slots = new UniformSlots(device);
    this.ring = uploadRing(device);
    this.staging = new StagingBuffers(device);
  }

  /** A buffer pool whose allocations report running out of GPU memory as one clear error (the device's own pool, or a captured step's). */
  createPool(): BufferPool {
    return new BufferPool(this.device, (scope, bytes, label, inUse) =>
      this.errors.track(
        scope,
        `allocating ${bytes} bytes for ${label ?? 'a tensor'} with ${inUse} bytes already in use ` +
          '(the work does not fit in GPU memory: lower the batch size or the max length)',
      ),
    );
  }

  /** The pool new tensors come from: the device's own, or a captured step's while it records. */
  get allocator(): BufferPool {
    return this.activePool;
  }

  /**
   * Starts keeping every command encoded from now on, with new tensors taken from `pool`, until
   * stopRecording(). Work encoded before is submitted first, so the recording starts a command
   * buffer of its own, as its replays will.
   */
  startRecording(pool: BufferPool): void {
    if (this.recording) throw new GpuError('startRecording: already recording');
    this.flush();
    this.recording = new GpuRecording(this.groupGeneration);
    this.activePool = pool;
  }

  stopRecording(): GpuRecording {
    const recording = this.recording;
    if (!recording) throw new GpuError('stopRecording: not recording');
    this.recording = null;
    this.activePool = this.pool;
    return recording;
  }

  /** Whether replay() can still encode the recording: it can be replayed and its bind groups were not dropped since. */
  canReplay(recording: GpuRecording): boolean {
    return recording.unreplayable === null && recording.generation === this.groupGeneration;
  }

  /**
   * Encodes a recording's commands again, as the work that made it did, without that work's
   * JavaScript: its bind groups, uniform values, copies and uploads. The buffers it uses must
   * still exist and hold what that work would find (capture.ts checks this for the engine).
   */
  replay(recording: GpuRecording): void {
    this.errors.throwIfFailed();
    if (this.recording) throw new GpuError('replay: cannot replay while recording');
    if (!this.canReplay(recording)) throw new GpuError(`replay: ${recording.unreplayable ?? 'its bind groups were dropped since it was recorded'}`);
    this.flush();
    // Marked used by the whole batch at once, and again after each submit (a recorded flush, or
    // an upload that found the ring full): an upload into any of them then stays in order with the batch.
    for (const b of recording.buffers) this.touch(b);
    let batch = this.batch;
    for (const c of recording.commands) {
      if (c.kind === 'dispatch') {
        const cached = c.cached;
        // Within its recording a group's slot held one set of values per batch (else the group would not be cached), so rewriting it here is as safe as it was there.
        if (c.params && !this.slots.holds(cached.slot, c.params)) this.slots.write(cached.slot, c.params);
        cached.batch = this.batch;
        this.stream.dispatch(c.pipeline, cached.group, c.x, c.y, c.z);
        this.dispatchesInBatch++;
      } else if (c.kind === 'copy') {
        this.encodeCopy(c.src, c.dst);
      } else if (c.kind === 'write') {
        this.encodeWrite(c.dst, c.data);
      } else {
        this.flush();
      }
      if (this.batch !== batch) {
        batch = this.batch;
        for (const b of recording.buffers) this.touch(b);
      }
    }
    this.dispatches += recording.dispatches;
    this.bindGroupHits += recording.dispatches;
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
    this.pipelines.useFeatures(this.activeFeatures);
    // Recordings hold the old variants' pipelines.
    this.groupGeneration++;
    return this.activeFeatures;
  }

  /** A compute pipeline for one entry point of a kernel family, compiled once per variant and cached. */
  pipeline(kernel: KernelName, entry: string, constants?: Record<string, number>, opFlags?: readonly string[]): GPUComputePipeline {
    return this.pipelines.entry(kernel, entry, constants, opFlags).pipeline;
  }

  /** Encodes one dispatch into the current batch; nothing is submitted until flush() or read(). */
  dispatch(d: Dispatch): void {
    this.errors.throwIfFailed();
    const [x, y = 1, z = 1] = d.workgroups;
    const maxGroups = this.maxWorkgroups;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new GpuError(`${d.kernel}.${d.entry}: ${x}×${y}×${z} workgroups exceed the limit of ${maxGroups} per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const entry = this.pipelines.entry(d.kernel, d.entry, d.constants, d.flags);
    let rangesKey = '';
    for (const b of d.bindings) rangesKey += this.rangeKey(this.bufferRecord(b.buffer), b);
    const cached = this.fastLaunch ? this.cachedGroup(entry, d, rangesKey) : null;
    const group = cached ? cached.group : this.newGroup(entry, d);
    // Marked after the group is chosen: making one may submit the batch first (slots or arena
    // full), and the buffers belong to the batch this dispatch lands in, or an upload to one
    // of them would go straight to the queue, ahead of this dispatch.
    for (const b of d.bindings) this.touch(b.buffer);
    const recording = this.recording;
    if (recording) {
      // A copy of the uniforms: a caller may reuse its array.
      if (cached) recording.commands.push({ kind: 'dispatch', pipeline: entry.pipeline, cached, params: d.params?.slice(), x, y, z });
      else recording.unreplayable ??= `${d.kernel}.${d.entry} made a bind group for itself alone (fast launch off, or its cached group's uniforms were in use)`;
      for (const b of d.bindings) recording.buffers.add(b.buffer);
      recording.dispatches++;
    }
    const monitor = this.monitor;
    if (monitor) {
      this.stream.dispatch(entry.pipeline, group, x, y, z, monitor.beforeDispatch(d, [x, y, z]));
      monitor.afterDispatch(d);
    } else {
      this.stream.dispatch(entry.pipeline, group, x, y, z);
    }
    this.dispatches++;
    // Bound the size of one command buffer; submitting does not wait for the GPU.
    if (++this.dispatchesInBatch >= DISPATCHES_PER_SUBMIT) this.flush();
  }

  /**
   * The cached bind group of this dispatch's pipeline and buffer ranges, with its uniform slot
   * holding d.params; null where its slot holds other values this batch still uses.
   */
  private cachedGroup(entry: PipelineEntry, d: Dispatch, rangesKey: string): CachedGroup | null {
    const params = d.params;
    if (params && params.byteLength > PARAM_SLOT_BYTES) return null;
    const key = params ? params.length + rangesKey : rangesKey;
    let cached = entry.groups.get(key);
    if (!cached) {
      this.checkBindings(d);
      if (params && this.slots.full) {
        // Full: start over. After the submit, rewritten slots cannot reach work already encoded.
        this.dropBindGroups();
      }
      const slot = params ? this.slots.allocate() : -1;
      if (params) this.slots.write(slot, params);
      const group = this.device.createBindGroup({ layout: entry.layout, entries: this.groupEntries(d, params ? { buffer: this.slots.buffer, offset: slot } : null) });
      this.bindGroupsMade++;
      cached = { group, slot, batch: this.batch };
      entry.groups.set(key, cached);
      return cached;
    }
    if (params && !this.slots.holds(cached.slot, params)) {
      if (cached.batch === this.batch) return null;
      this.slots.write(cached.slot, params);
    }
    cached.batch = this.batch;
    this.bindGroupHits++;
    return cached;
  }

  /** A bind group for this dispatch alone, its uniforms in the per-submit arena. */
  private newGroup(entry: PipelineEntry, d: Dispatch): GPUBindGroup {
    this.checkBindings(d);
    let uniforms: { buffer: GPUBuffer; offset: number } | null = null;
    if (d.params) {
      if (!this.arena.fits(d.params.byteLength)) this.flush();
      uniforms = { buffer: this.arena.buffer, offset: this.arena.place(d.params) };
    }
    this.bindGroupsMade++;
    return this.device.createBindGroup({ layout: entry.layout, entries: this.groupEntries(d, uniforms) });
  }

  private groupEntries(d: Dispatch, uniforms: { buffer: GPUBuffer; offset: number } | null): GPUBindGroupEntry[] {
    const entries: GPUBindGroupEntry[] = [];
    if (uniforms && d.params) entries.push({ binding: 0, resource: { ...uniforms, size: d.params.byteLength } });
    d.bindings.forEach((b, i) => {
      entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: Math.max(4, b.size) } });
    });
    return entries;
  }

  /** Runs only when a bind group is made, so a check here costs nothing on the launches that reuse one. */
  private checkBindings(d: Dispatch): void {
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    for (const b of d.bindings) {
      if (b.gpu !== undefined && b.gpu !== this) {
        throw new GpuError(
          `${d.kernel}.${d.entry}: ${b.label ?? 'a buffer'} belongs to another Gpu (another GPUDevice) than the one this op runs on; ` +
            'the tensors of one op must share a Gpu',
        );
      }
      if (b.size > maxBinding) {
        throw new GpuError(
          `${d.kernel}.${d.entry}: ${b.label ?? 'a buffer'} needs a ${b.size}-byte storage binding, ` +
            `over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes`,
        );
      }
    }
  }

  private bufferRecord(buffer: GPUBuffer): BufferRecord {
    let record = this.buffers.get(buffer);
    if (record === undefined) this.buffers.set(buffer, (record = { id: this.nextBufferId++, lastUse: -1, wholeSize: -1, wholeKey: '' }));
    return record;
  }

  /** The bound range's part of a bind group key. */
  private rangeKey(record: BufferRecord, b: Binding): string {
    const offset = b.offset ?? 0;
    if (offset === 0 && b.size === record.wholeSize) return record.wholeKey;
    const key = `|${record.id}:${offset}:${b.size}`;
    if (offset === 0) {
      record.wholeSize = b.size;
      record.wholeKey = key;
    }
    return key;
  }

  private record(command: RecordedCommand, buffers: GPUBuffer[]): void {
    const recording = this.recording!;
    recording.commands.push(command);
    for (const b of buffers) recording.buffers.add(b);
  }

  private touch(buffer: GPUBuffer): void {
    this.bufferRecord(buffer).lastUse = this.batch;
  }

  /**
   * Forgets every cached bind group (they are remade on next use), e.g. once the buffers they
   * bind are destroyed. Encoded work keeps its groups; their slots are rewritten only after it is submitted.
   */
  dropBindGroups(): void {
    this.flush();
    this.groupGeneration++;
    for (const entry of this.pipelines.entries()) entry.groups.clear();
    this.slots.reset();
  }

  /** Bind groups held for reuse. */
  get cachedBindGroups(): number {
    let n = 0;
    for (const entry of this.pipelines.entries()) n += entry.groups.size;
    return n;
  }

  /** Copies between buffers, in order with the dispatches around it. */
  copy(src: Binding, dst: Binding): void {
    this.errors.throwIfFailed();
    if (this.recording) this.record({ kind: 'copy', src: { ...src }, dst: { ...dst } }, [src.buffer, dst.buffer]);
    this.encodeCopy(src, dst);
  }

  private encodeCopy(src: Binding, dst: Binding): void {
    this.touch(src.buffer);
    this.touch(dst.buffer);
    this.stream.copy(src.buffer, src.offset ?? 0, dst.buffer, dst.offset ?? 0, src.size);
  }

  /**
   * Writes host data into a buffer, in order with the encoded kernels. queue.writeBuffer
   * overtakes unsubmitted work, so it serves only buffers the unsubmitted batch has not used;
   * other uploads are copies in the command stream, from the upload ring or a staging buffer.
   */
  write(dst: Binding, data: ArrayBufferView): void {
    this.errors.throwIfFailed();
    if (this.recording && data.byteLength > 0) {
      this.record({ kind: 'write', dst: { ...dst }, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() }, [dst.buffer]);
    }
    this.encodeWrite(dst, data);
  }

  private encodeWrite(dst: Binding, data: ArrayBufferView): void {
    const size = Math.ceil(data.byteLength / 4) * 4;
    if (size === 0) return;
    if (this.fastLaunch && size <= RING_UPLOAD_MAX && size === data.byteLength && this.bufferRecord(dst.buffer).lastUse !== this.batch) {
      this.device.queue.writeBuffer(dst.buffer, dst.offset ?? 0, data.buffer as ArrayBuffer, data.byteOffset, size);
      return;
    }
    if (this.fastLaunch && size <= RING_UPLOAD_MAX) {
      if (!this.ring.fits(size)) this.flush();
      this.encodeCopy({ buffer: this.ring.buffer, offset: this.ring.place(data), size }, { ...dst, size });
      return;
    }
    this.encodeCopy({ buffer: this.staging.create(data, size), size }, { ...dst, size });
    if (this.staging.overLimit) this.flush();
  }

  /** Submits all encoded work. Does not wait for it. */
  flush(): void {
    if (!this.stream.open) return;
    if (this.recording) this.recording.commands.push({ kind: 'flush' });
    const queue = this.device.queue;
    this.arena.upload(queue);
    this.ring.upload(queue);
    this.slots.upload(queue);
    const monitor = this.monitor;
    const start = monitor ? performance.now() : 0;
    this.stream.submit(queue);
    monitor?.submitted(start, performance.now(), this.dispatchesInBatch);
    this.dispatchesInBatch = 0;
    this.batch++;
    this.submits++;
    this.staging.release();
  }

  /** Reads a buffer range back to the host: the one place the engine waits on the GPU. */
  async read(src: Binding): Promise<ArrayBuffer> {
    if (this.recording) this.recording.unreplayable ??= 'it read data back';
    if (this.monitor?.beforeWait) await this.monitor.beforeWait();
    const size = Math.ceil(src.size / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (size > 0) this.copy({ ...src, size }, { buffer: staging, size });
    this.flush();
    const waitStart = this.monitor ? performance.now() : 0;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      this.monitor?.waited(waitStart, performance.now(), 'read', src.size);
      const data = staging.getMappedRange().slice(0, src.size);
      staging.unmap();
      await this.errors.check();
      return data;
    } catch (error) {
      await this.errors.check();
      throw this.errors.failure ?? (error instanceof Error && this.errors.lost ? new GpuError(`GPU device lost: ${error.message}`) : error);
    } finally {
      staging.destroy();
    }
  }

  /** Waits for all submitted work and throws the first WebGPU error it raised. */
  async sync(): Promise<void> {
    if (this.recording) this.recording.unreplayable ??= 'it waited for the GPU';
    if (this.monitor?.beforeWait) await this.monitor.beforeWait();
    this.flush();
    const waitStart = this.monitor ? performance.now() : 0;
    await this.device.queue.onSubmittedWorkDone();
    this.monitor?.waited(waitStart, performance.now(), 'sync', 0);
    await this.errors.check();
  }

  memory(): MemoryStats {
    return this.pool.stats();
  }

  /** Returns pooled buffers to the device, and forgets the bind groups that bound them. */
  trim(): void {
    this.dropBindGroups();
    this.pool.trim();
  }

  /**
   * Frees the engine's buffers, and the device too where the engine owns it (ownsDevice);
   * the process can exit once nothing else holds Dawn. A caller's device stays usable.
   */
  destroy(): void {
    this.flush();
    this.pool.destroy();
    this.arena.destroy();
    this.slots.destroy();
    this.ring.destroy();
    if (this.ownsDevice) this.device.destroy();
  }
}
