// The engine's view of one GPUDevice: pipelines, batched command encoding, pooled buffers,
// and error reporting. Uses only web-standard WebGPU so it runs in browsers, Deno and Node.
import { kernelSource, type KernelName } from './registry.ts';
import { BufferPool, type MemoryStats } from './pool.ts';
import { KERNEL_FEATURES, featureFlags, kernelFlags, specialize, type KernelFeature } from './features.ts';
import { kernelClassOf, type KernelClass } from './kernel-class.ts';

export type { KernelName };

/** A range of a GPU buffer bound to one kernel binding. */
export interface Binding {
  buffer: GPUBuffer;
  offset?: number;
  size: number;
  /** Named in error messages when a limit is exceeded. */
  label?: string;
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

const UNIFORM_ARENA_BYTES = 1 << 16;
/** Uniform slots owned by cached bind groups (each 256 bytes, the largest offset alignment WebGPU allows). */
const PARAM_SLOTS = 4096;
const PARAM_SLOT_BYTES = 256;
/** Small uploads go through one ring per submit; larger ones through a staging buffer of their own. */
const UPLOAD_RING_BYTES = 4 << 20;
const RING_UPLOAD_MAX = 256 << 10;
/** Dispatches per command buffer. */
const DISPATCHES_PER_SUBMIT = 512;

/**
 * A bind group kept for reuse: the same pipeline over the same buffer ranges finds it again
 * (pooled buffers keep their identity). Its uniforms live in a slot of its own, rewritten when
 * a dispatch brings other values and the slot is not already used by the unsubmitted batch.
 */
interface CachedGroup {
  group: GPUBindGroup;
  /** Byte offset of its uniform slot, or -1 without uniforms. */
  slot: number;
  /** The batch that last used the slot's contents. */
  batch: number;
}

/** One command of a recording, as replay() encodes it again. */
type RecordedCommand =
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

interface PipelineEntry {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  groups: Map<string, CachedGroup>;
}

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
  private readonly pipelines = new Map<string, PipelineEntry>();
  /** The same pipelines by kernel, entry and (frozen) constants object, for lookups that build no key. */
  private readonly quickPipelines = new Map<KernelName, Map<string, { plain: PipelineEntry | null; byConstants: WeakMap<object, PipelineEntry> }>>();
  /** Per kernel, the device-feature flags it tests and their part of a pipeline key (cleared when the features change). */
  private readonly variants = new Map<KernelName, { tested: Set<string>; flags: string[]; key: string }>();
  private readonly uniformAlign: number;
  /** maxComputeWorkgroupsPerDimension, read once: each read of a limit is a native call in Dawn's Node binding. */
  private readonly maxWorkgroups: number;
  private readonly uniformArena: GPUBuffer;
  private readonly uniformStaging: Uint8Array;
  private uniformUsed = 0;
  private readonly paramHeap: GPUBuffer;
  private readonly paramMirror: Uint8Array;
  private readonly paramWords: Uint32Array;
  private paramSlotsUsed = 0;
  /** Slots whose contents changed in this batch, written to the GPU at the submit. */
  private dirtySlots: number[] = [];
  private readonly uploadRing: GPUBuffer;
  private readonly uploadMirror: Uint8Array;
  private uploadUsed = 0;
  private readonly buffers = new WeakMap<GPUBuffer, BufferRecord>();
  private nextBufferId = 1;
  /** Counts submits: a cached group's uniforms may be rewritten only outside the batch that used them. */
  private batch = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private passPipeline: GPUComputePipeline | null = null;
  private passGroup: GPUBindGroup | null = null;
  private dispatchesInBatch = 0;
  private stagingToDestroy: GPUBuffer[] = [];
  /** Counts dropBindGroups(): a recording replays only in the generation it was made in. */
  private groupGeneration = 0;
  private recording: GpuRecording | null = null;
  private activePool: BufferPool;
  private stagingBytes = 0;
  private pendingErrors: Promise<GPUError | null>[] = [];
  private failure: Error | null = null;
  private lost = false;
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
    this.kernelClass = options.kernelClass ?? kernelClassOf(adapterName);
    if (options.kernelFeatures) this.useKernelFeatures(options.kernelFeatures);
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.maxWorkgroups = device.limits.maxComputeWorkgroupsPerDimension;
    this.pool = this.createPool();
    this.activePool = this.pool;
    this.uniformArena = device.createBuffer({
      label: 'uniform arena',
      size: UNIFORM_ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.uniformStaging = new Uint8Array(UNIFORM_ARENA_BYTES);
    this.paramHeap = device.createBuffer({
      label: 'bind group uniforms',
      size: PARAM_SLOTS * PARAM_SLOT_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.paramMirror = new Uint8Array(PARAM_SLOTS * PARAM_SLOT_BYTES);
    this.paramWords = new Uint32Array(this.paramMirror.buffer);
    this.uploadRing = device.createBuffer({ label: 'upload ring', size: UPLOAD_RING_BYTES, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.uploadMirror = new Uint8Array(UPLOAD_RING_BYTES);
    device.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= new GpuError(`WebGPU error: ${error.message}`);
    });
    device.lost.then((info) => {
      this.lost = true;
      if (info.reason !== 'destroyed') this.failure ??= new GpuError(`GPU device lost: ${info.message}`);
    });
  }

  /** A buffer pool whose allocations report running out of GPU memory as one clear error (the device's own pool, or a captured step's). */
  createPool(): BufferPool {
    return new BufferPool(this.device, (scope, bytes, label, inUse) =>
      this.track(
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
    this.throwIfFailed();
    if (this.recording) throw new GpuError('replay: cannot replay while recording');
    if (!this.canReplay(recording)) throw new GpuError(`replay: ${recording.unreplayable ?? 'its bind groups were dropped since it was recorded'}`);
    this.flush();
    // Marked used by the whole batch at once (again after each submit): an upload into any of them then stays in order with the batch.
    for (const b of recording.buffers) this.touch(b);
    for (const c of recording.commands) {
      if (c.kind === 'dispatch') {
        const cached = c.cached;
        // Within its recording a group's slot held one set of values per batch (else the group would not be cached), so rewriting it here is as safe as it was there.
        if (c.params && !this.slotHolds(cached.slot, c.params)) this.writeSlot(cached.slot, c.params);
        cached.batch = this.batch;
        const pass = this.computePass();
        if (this.passPipeline !== c.pipeline) pass.setPipeline((this.passPipeline = c.pipeline));
        if (this.passGroup !== cached.group) pass.setBindGroup(0, (this.passGroup = cached.group));
        pass.dispatchWorkgroups(c.x, c.y, c.z);
        this.dispatchesInBatch++;
      } else if (c.kind === 'copy') {
        this.encodeCopy(c.src, c.dst);
      } else if (c.kind === 'write') {
        this.encodeWrite(c.dst, c.data);
      } else {
        this.flush();
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
    this.variants.clear();
    this.quickPipelines.clear();
    // Recordings hold the old variants' pipelines.
    this.groupGeneration++;
    return this.activeFeatures;
  }

  /** A compute pipeline for one entry point of a kernel family, compiled once per variant and cached. */
  pipeline(kernel: KernelName, entry: string, constants?: Record<string, number>, opFlags?: readonly string[]): GPUComputePipeline {
    return this.pipelineEntry(kernel, entry, constants, opFlags).pipeline;
  }

  /**
   * The pipeline, its layout and its bind groups; looked up per dispatch. Without op flags, and
   * with no constants or frozen ones (the ops' own tables), it is found by identity, building no
   * key at all; otherwise by a key built without sorting or JSON.
   */
  private pipelineEntry(kernel: KernelName, entry: string, constants: Record<string, number> | undefined, opFlags: readonly string[] | undefined): PipelineEntry {
    if (opFlags && opFlags.length > 0) return this.keyedPipelineEntry(kernel, entry, constants, opFlags);
    let byEntry = this.quickPipelines.get(kernel);
    if (!byEntry) this.quickPipelines.set(kernel, (byEntry = new Map()));
    let quick = byEntry.get(entry);
    if (!quick) byEntry.set(entry, (quick = { plain: null, byConstants: new WeakMap() }));
    let found = constants ? quick.byConstants.get(constants) : quick.plain;
    if (!found) {
      found = this.keyedPipelineEntry(kernel, entry, constants, opFlags);
      if (!constants) quick.plain = found;
      else if (Object.isFrozen(constants)) quick.byConstants.set(constants, found);
    }
    return found;
  }

  private keyedPipelineEntry(kernel: KernelName, entry: string, constants: Record<string, number> | undefined, opFlags: readonly string[] | undefined): PipelineEntry {
    let variant = this.variants.get(kernel);
    if (!variant) {
      const tested = kernelFlags(kernelSource(kernel));
      const flags = featureFlags(this.activeFeatures).filter((f) => tested.has(f));
      variant = { tested, flags, key: `${kernel}[${flags.join(',')}]` };
      this.variants.set(kernel, variant);
    }
    let flags = variant.flags;
    let variantKey = variant.key;
    if (opFlags && opFlags.length > 0) {
      const tested = variant.tested;
      flags = [...flags, ...opFlags.filter((f) => tested.has(f))].sort();
      variantKey = `${kernel}[${flags.join(',')}]`;
    }
    let key = `${variantKey}:${entry}:`;
    // Ops build their constants in a fixed order, and a different order only costs a second copy of the same pipeline.
    for (const name in constants) key += `${name}=${constants[name]},`;
    let found = this.pipelines.get(key);
    if (!found) {
      this.device.pushErrorScope('validation');
      let module = this.modules.get(variantKey);
      if (!module) {
        module = this.device.createShaderModule({ label: variantKey, code: specialize(kernelSource(kernel), new Set(flags)) });
        this.modules.set(variantKey, module);
      }
      const pipeline = this.device.createComputePipeline({
        label: `${variantKey}.${entry}`,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants: constants ?? {} },
      });
      this.track(this.device.popErrorScope(), `compiling kernel ${kernel}.${entry}`);
      // getBindGroupLayout() makes a new object per call.
      found = { pipeline, layout: pipeline.getBindGroupLayout(0), groups: new Map() };
      this.pipelines.set(key, found);
    }
    return found;
  }

  /** Encodes one dispatch into the current batch; nothing is submitted until flush() or read(). */
  dispatch(d: Dispatch): void {
    this.throwIfFailed();
    const [x, y = 1, z = 1] = d.workgroups;
    const maxGroups = this.maxWorkgroups;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new GpuError(`${d.kernel}.${d.entry}: ${x}×${y}×${z} workgroups exceed the limit of ${maxGroups} per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const entry = this.pipelineEntry(d.kernel, d.entry, d.constants, d.flags);
    let rangesKey = '';
    for (const b of d.bindings) {
      const record = this.bufferRecord(b.buffer);
      record.lastUse = this.batch;
      rangesKey += this.rangeKey(record, b);
    }
    const cached = this.fastLaunch ? this.cachedGroup(entry, d, rangesKey) : null;
    const group = cached ? cached.group : this.newGroup(entry, d);
    const recording = this.recording;
    if (recording) {
      // A copy of the uniforms: a caller may reuse its array.
      if (cached) recording.commands.push({ kind: 'dispatch', pipeline: entry.pipeline, cached, params: d.params?.slice(), x, y, z });
      else recording.unreplayable ??= `${d.kernel}.${d.entry} made a bind group for itself alone (fast launch off, or its cached group's uniforms were in use)`;
      for (const b of d.bindings) recording.buffers.add(b.buffer);
      recording.dispatches++;
    }
    const pass = this.computePass();
    if (this.passPipeline !== entry.pipeline) pass.setPipeline((this.passPipeline = entry.pipeline));
    if (this.passGroup !== group) pass.setBindGroup(0, (this.passGroup = group));
    pass.dispatchWorkgroups(x, y, z);
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
      if (params && this.paramSlotsUsed === PARAM_SLOTS) {
        // Full: start over. After the submit, rewritten slots cannot reach work already encoded.
        this.dropBindGroups();
      }
      const slot = params ? this.paramSlotsUsed++ * PARAM_SLOT_BYTES : -1;
      if (params) this.writeSlot(slot, params);
      const group = this.device.createBindGroup({ layout: entry.layout, entries: this.groupEntries(d, params ? { buffer: this.paramHeap, offset: slot } : null) });
      this.bindGroupsMade++;
      cached = { group, slot, batch: this.batch };
      entry.groups.set(key, cached);
      return cached;
    }
    if (params && !this.slotHolds(cached.slot, params)) {
      if (cached.batch === this.batch) return null;
      this.writeSlot(cached.slot, params);
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
      if (this.uniformUsed + d.params.byteLength > UNIFORM_ARENA_BYTES) this.flush();
      uniforms = { buffer: this.uniformArena, offset: this.uniformUsed };
      this.uniformStaging.set(new Uint8Array(d.params.buffer, d.params.byteOffset, d.params.byteLength), this.uniformUsed);
      this.uniformUsed += Math.ceil(d.params.byteLength / this.uniformAlign) * this.uniformAlign;
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

  private checkBindings(d: Dispatch): void {
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    for (const b of d.bindings) {
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

  private slotHolds(slot: number, params: Uint32Array): boolean {
    const base = slot >> 2;
    for (let i = 0; i < params.length; i++) if (this.paramWords[base + i] !== params[i]) return false;
    return true;
  }

  private writeSlot(slot: number, params: Uint32Array): void {
    this.paramWords.set(params, slot >> 2);
    this.dirtySlots.push(slot);
  }

  /**
   * Forgets every cached bind group (they are remade on next use), e.g. once the buffers they
   * bind are destroyed. Encoded work keeps its groups; their slots are rewritten only after it is submitted.
   */
  dropBindGroups(): void {
    this.flush();
    this.groupGeneration++;
    for (const entry of this.pipelines.values()) entry.groups.clear();
    this.paramSlotsUsed = 0;
  }

  /** Bind groups held for reuse. */
  get cachedBindGroups(): number {
    let n = 0;
    for (const entry of this.pipelines.values()) n += entry.groups.size;
    return n;
  }

  /** Copies between buffers, in order with the dispatches around it. */
  copy(src: Binding, dst: Binding): void {
    this.throwIfFailed();
    if (this.recording) this.record({ kind: 'copy', src: { ...src }, dst: { ...dst } }, [src.buffer, dst.buffer]);
    this.encodeCopy(src, dst);
  }

  private encodeCopy(src: Binding, dst: Binding): void {
    this.endPass();
    this.touch(src.buffer);
    this.touch(dst.buffer);
    this.commandEncoder().copyBufferToBuffer(src.buffer, src.offset ?? 0, dst.buffer, dst.offset ?? 0, src.size);
  }

  /**
   * Writes host data into a buffer, in order with the encoded kernels. queue.writeBuffer
   * overtakes unsubmitted work, so it serves only buffers the unsubmitted batch has not used;
   * other uploads are copies in the command stream, from the upload ring or a staging buffer.
   */
  write(dst: Binding, data: ArrayBufferView): void {
    this.throwIfFailed();
    if (this.recording && data.byteLength > 0) {
      this.record({ kind: 'write', dst: { ...dst }, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() }, [dst.buffer]);
    }
    this.encodeWrite(dst, data);
  }

  private encodeWrite(dst: Binding, data: ArrayBufferView): void {
    const size = Math.ceil(data.byteLength / 4) * 4;
    if (size === 0) return;
    if (this.fastLaunch && size <= RING_UPLOAD_MAX && size === data.byteLength && this.bufferRecord(dst.buffer).lastUse !== this.batch) {
      this.device.queue.writeBuffer(dst.buffer, dst.offset ?? 0, data.buffer, data.byteOffset, size);
      return;
    }
    if (this.fastLaunch && size <= RING_UPLOAD_MAX) {
      // The ring's contents reach the GPU at the submit, before the copies that read them.
      if (this.uploadUsed + size > UPLOAD_RING_BYTES) this.flush();
      this.uploadMirror.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), this.uploadUsed);
      this.encodeCopy({ buffer: this.uploadRing, offset: this.uploadUsed, size }, { ...dst, size });
      this.uploadUsed += size;
      return;
    }
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.encodeCopy({ buffer: staging, size }, { ...dst, size });
    this.stagingToDestroy.push(staging);
    this.stagingBytes += size;
    // Bound host-visible memory held by pending uploads.
    if (this.stagingBytes > 256 << 20) this.flush();
  }

  /** Submits all encoded work. Does not wait for it. */
  flush(): void {
    if (!this.encoder) return;
    if (this.recording) this.recording.commands.push({ kind: 'flush' });
    this.endPass();
    const queue = this.device.queue;
    if (this.uniformUsed > 0) {
      queue.writeBuffer(this.uniformArena, 0, this.uniformStaging.buffer, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    if (this.uploadUsed > 0) {
      queue.writeBuffer(this.uploadRing, 0, this.uploadMirror.buffer, 0, this.uploadUsed);
      this.uploadUsed = 0;
    }
    this.writeDirtySlots();
    const commands = this.encoder.finish();
    this.encoder = null;
    this.dispatchesInBatch = 0;
    this.batch++;
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
    if (this.recording) this.recording.unreplayable ??= 'it read data back';
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
    if (this.recording) this.recording.unreplayable ??= 'it waited for the GPU';
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  memory(): MemoryStats {
    return this.pool.stats();
  }

  /** Returns pooled buffers to the device, and forgets the bind groups that bound them. */
  trim(): void {
    this.dropBindGroups();
    this.pool.trim();
  }

  /** Writes the changed uniform slots, runs of adjacent slots in one write each. */
  private writeDirtySlots(): void {
    if (this.dirtySlots.length === 0) return;
    const slots = this.dirtySlots.sort((a, b) => a - b);
    this.dirtySlots = [];
    let start = slots[0]!;
    let end = start + PARAM_SLOT_BYTES;
    const write = () => this.device.queue.writeBuffer(this.paramHeap, start, this.paramMirror.buffer, start, end - start);
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
    this.passPipeline = null;
    this.passGroup = null;
  }

  /**
   * Frees the engine's buffers, and the device too where the engine owns it (ownsDevice);
   * the process can exit once nothing else holds Dawn. A caller's device stays usable.
   */
  destroy(): void {
    this.flush();
    this.pool.destroy();
    this.uniformArena.destroy();
    this.paramHeap.destroy();
    this.uploadRing.destroy();
    if (this.ownsDevice) this.device.destroy();
  }
}
