// profile(gpu, fn): what a step spends its time on, dispatch by dispatch, as torch.profiler and
// tf.profile report it. While fn runs, the device's monitor records every dispatch: the op
// that launched it and its caller (site.ts), the kernel, the shapes bound, bytes bound and,
// where defined, FLOPs; and host spans for op calls, encoding, submits and waits.
//
// GPU time comes from one of two sources, never mixed, and the profile says which:
//   'timestamp-query': where the device has the feature, each dispatch runs in a compute pass
//     of its own whose beginning and end the GPU timestamps (real times, in place);
//   'host-replay': elsewhere, once fn has returned each recorded dispatch runs again alone on
//     scratch copies of its buffers (the caller's tensors are never written), submitted by
//     itself and timed on the host from submit to done, less an empty submit's time. Durations
//     only: the trace lays them end to end after their submits, not where they ran.
import type { Dispatch, Gpu } from '../gpu/context.ts';
import { attachMonitor, type DispatchMonitor } from '../gpu/monitor.ts';
import { numel, shapeString, Tensor, type Shape } from './tensor.ts';
import { currentSite, noteKernel, watchSites } from './site.ts';

export type GpuTiming = 'timestamp-query' | 'host-replay';

/** One dispatch of the profiled work. */
export interface DispatchRecord {
  index: number;
  /** The op that launched it (`matmul`; `log (backward)` for a gradient). */
  op: string;
  /** Kernel and entry point, `matmul.mm_tiled`, `elementwise.add.same4`. */
  kernel: string;
  /** The kernel's file, `matmul`, `elementwise`. */
  family: string;
  /** Where the op was called, `file:line:column`. */
  caller: string;
  backward: boolean;
  /** Shapes of the tensors bound, in binding order (inputs first, outputs last); null for a buffer that is no tensor's. */
  shapes: (Shape | null)[];
  workgroups: readonly [number, number, number];
  /** Bytes of all bindings, each counted once: what the kernel reads and writes at least. */
  bytes: number;
  /** Floating-point operations (estimate; see flopsOf), null where not defined. */
  flops: number | null;
  /** GPU time in ms (see Profile.timing). */
  gpuMs: number;
  /** Where the trace places it on the GPU track, host clock in ms. */
  gpuStart: number;
  /** Host time encoding it (performance.now() ms); opStart is when the profiler first saw its op. */
  opStart: number;
  encodeStart: number;
  encodeEnd: number;
  /** Host time its command buffer was submitted. */
  submitted: number;
}

export interface HostSpan {
  name: 'submit' | 'wait';
  start: number;
  end: number;
  detail: string;
}

/** One kernel's (or family's) share of the profiled GPU time. */
export interface KernelTotal {
  name: string;
  calls: number;
  gpuMs: number;
  /** Of the profiled dispatches' GPU time. */
  share: number;
  bytes: number;
  flops: number | null;
  gbps: number;
  gflops: number | null;
}

export interface ProfileOptions {
  /** Force the host-replay fallback even where timestamp queries are offered (to compare the two). */
  timing?: GpuTiming;
  /** Host-replay runs per dispatch (median taken); default 3. */
  replays?: number;
}

export interface Profile<T> {
  result: T;
  timing: GpuTiming;
  /** What the timing means, for reports and the trace. */
  timingNote: string;
  adapter: string;
  records: DispatchRecord[];
  spans: HostSpan[];
  /** Host time of fn, start and end (ms). */
  start: number;
  end: number;
  /** Totals by kernel entry (`matmul.mm_tiled`) or by family (`matmul`), by GPU time, largest first. */
  totals(by?: 'kernel' | 'family' | 'op'): KernelTotal[];
  /** A text table of the top kernels. */
  summary(top?: number): string;
  /** The profile in Chrome's Trace Event Format (Perfetto, chrome://tracing): host and GPU on separate tracks. */
  toChromeTrace(): string;
}

const QUERIES_PER_SET = 4096;
const TIMING_NOTES: Record<GpuTiming, string> = {
  'timestamp-query': 'GPU times from timestamp queries, each dispatch in a compute pass of its own',
  'host-replay': 'no timestamp queries on this adapter: GPU times are host-timed replays, each dispatch re-run alone on scratch copies of its buffers, submit to done less an empty submit; laid end to end on the GPU track, not where they ran',
};

let active: Gpu | null = null;

/**
 * Runs fn (sync or async) and records every dispatch it makes on this device. Work on other
 * devices, and captured steps replayed (their dispatches are not re-encoded), are not seen.
 */
export async function profile<T>(gpu: Gpu, fn: () => T | Promise<T>, options: ProfileOptions = {}): Promise<Profile<T>> {
  if (active) throw new Error('profile: already profiling (profiles do not nest)');
  const timing = options.timing ?? (gpu.features.has('timestamp-query') ? 'timestamp-query' : 'host-replay');
  if (timing === 'timestamp-query' && !gpu.features.has('timestamp-query')) throw new Error(`profile: ${gpu.adapterName} does not offer timestamp-query`);
  const recorder = new Recorder(gpu, timing);
  gpu.flush();
  active = gpu;
  const stopSites = watchSites();
  const detach = attachMonitor(gpu, recorder);
  const start = performance.now();
  let result: T;
  try {
    result = await fn();
    gpu.flush();
  } catch (error) {
    recorder.destroy();
    throw error;
  } finally {
    detach();
    stopSites();
    active = null;
  }
  const end = performance.now();
  try {
    await gpu.sync();
    if (timing === 'timestamp-query') await recorder.readTimestamps();
    else await recorder.replay(options.replays ?? 3);
  } finally {
    recorder.destroy();
  }
  return makeProfile(result, timing, gpu.adapterName, recorder.records, recorder.spans, start, end);
}

/** What the host-replay fallback needs to run a dispatch again. */
interface Replayable {
  pipeline: GPUComputePipeline;
  dispatch: Dispatch;
}

class Recorder implements DispatchMonitor {
  readonly records: DispatchRecord[] = [];
  readonly spans: HostSpan[] = [];
  private readonly querySets: GPUQuerySet[] = [];
  private readonly replayables: Replayable[] = [];
  /** Records not yet submitted. */
  private pending: DispatchRecord[] = [];
  private lastOp = '';
  private opStart = 0;
  private beforeStart = 0;
  /** When profiling began (performance.now() ms). */
  readonly started = performance.now();

  constructor(
    private readonly gpu: Gpu,
    private readonly timing: GpuTiming,
  ) {}

  beforeDispatch(d: Dispatch, workgroups: readonly [number, number, number]): GPUComputePassTimestampWrites | undefined {
    this.beforeStart = performance.now();
    noteKernel(d.kernel);
    const site = currentSite();
    const shapes = d.bindings.map((b) => (b as { tensor?: unknown }).tensor instanceof Tensor ? (b as unknown as { tensor: Tensor }).tensor.shape : null);
    const index = this.records.length;
    const key = `${site.op}@${site.caller}`;
    if (key !== this.lastOp || index === 0) {
      this.lastOp = key;
      this.opStart = this.beforeStart;
    }
    const record: DispatchRecord = {
      index,
      op: site.op,
      kernel: `${d.kernel}.${d.entry}`,
      family: d.kernel.split('.')[0]!,
      caller: site.caller,
      backward: site.backward,
      shapes,
      workgroups,
      bytes: d.bindings.reduce((sum, b) => sum + b.size, 0),
      flops: flopsOf(d.kernel, d.entry, shapes),
      gpuMs: 0,
      gpuStart: 0,
      opStart: this.opStart,
      encodeStart: performance.now(),
      encodeEnd: 0,
      submitted: 0,
    };
    this.records.push(record);
    this.pending.push(record);
    if (this.timing === 'host-replay') {
      // A copy: callers reuse their launch words.
      this.replayables.push({ pipeline: this.gpu.pipeline(d.kernel, d.entry, d.constants, d.flags), dispatch: { ...d, params: d.params?.slice(), bindings: d.bindings.map((b) => ({ buffer: b.buffer, offset: b.offset ?? 0, size: b.size })) } });
      return undefined;
    }
    const set = Math.floor((2 * index) / QUERIES_PER_SET);
    if (set === this.querySets.length) this.querySets.push(this.gpu.device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET }));
    const at = (2 * index) % QUERIES_PER_SET;
    return { querySet: this.querySets[set]!, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 };
  }

  afterDispatch(): void {
    this.records[this.records.length - 1]!.encodeEnd = performance.now();
  }

  submitted(start: number, end: number, dispatches: number): void {
    for (const r of this.pending) r.submitted = start;
    this.pending = [];
    this.spans.push({ name: 'submit', start, end, detail: `${dispatches} dispatches` });
  }

  waited(start: number, end: number, what: 'read' | 'sync', bytes: number): void {
    // A read begun before the profile (a step's loss read back late) shows from the profile's start.
    const detail = what === 'read' ? `readback of ${bytes} bytes` : 'sync';
    this.spans.push({ name: 'wait', start: Math.max(start, this.started), end, detail: start < this.started ? `${detail}, begun before the profile` : detail });
  }

  /** Resolves the timestamps and places each dispatch on the host clock: as early as its batch's submit allows. */
  async readTimestamps(): Promise<void> {
    const n = this.records.length;
    if (n === 0) return;
    const device = this.gpu.device;
    const bytes = this.querySets.length * QUERIES_PER_SET * 8;
    const resolved = device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = device.createCommandEncoder();
    this.querySets.forEach((set, i) => {
      const count = Math.min(QUERIES_PER_SET, 2 * n - i * QUERIES_PER_SET);
      encoder.resolveQuerySet(set, 0, count, resolved, i * QUERIES_PER_SET * 8);
    });
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const ns = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    resolved.destroy();
    const origin = ns[0]!;
    const ms = (i: number) => Number(ns[i]! - origin) / 1e6;
    let offset = -Infinity;
    this.records.forEach((r, i) => {
      r.gpuMs = Math.max(0, ms(2 * i + 1) - ms(2 * i));
      offset = Math.max(offset, r.submitted - ms(2 * i));
    });
    this.records.forEach((r, i) => (r.gpuStart = ms(2 * i) + offset));
  }

  /** The fallback: each dispatch again, alone, on scratch copies of its buffers, timed from submit to done. */
  async replay(runs: number): Promise<void> {
    const device = this.gpu.device;
    const queue = device.queue;
    const timeSubmit = async (commands: GPUCommandBuffer[]): Promise<number> => {
      const t0 = performance.now();
      queue.submit(commands);
      await queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    const empty: number[] = [];
    for (let i = 0; i < 5; i++) empty.push(await timeSubmit([device.createCommandEncoder().finish()]));
    const baseline = median(empty);
    const scratch = new ScratchBuffers(device);
    let gpuClock = -Infinity;
    for (let i = 0; i < this.replayables.length; i++) {
      const { pipeline, dispatch: d } = this.replayables[i]!;
      const copies = device.createCommandEncoder();
      const entries: GPUBindGroupEntry[] = d.bindings.map((b, k) => {
        const buffer = scratch.take(b.size);
        // A buffer that cannot be copied (a caller's, or an op's placeholder) leaves its scratch as it is.
        if (b.size > 0 && (b.buffer.usage & GPUBufferUsage.COPY_SRC) !== 0) copies.copyBufferToBuffer(b.buffer, b.offset ?? 0, buffer, 0, Math.ceil(b.size / 4) * 4);
        return { binding: k + 1, resource: { buffer, size: Math.max(4, b.size) } };
      });
      if (d.params) {
        const uniforms = scratch.uniform(d.params.byteLength);
        queue.writeBuffer(uniforms, 0, d.params);
        entries.unshift({ binding: 0, resource: { buffer: uniforms, size: d.params.byteLength } });
      }
      queue.submit([copies.finish()]);
      const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      const times: number[] = [];
      for (let run = 0; run < runs; run++) {
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(...this.records[i]!.workgroups);
        pass.end();
        times.push(await timeSubmit([encoder.finish()]));
      }
      scratch.release();
      const r = this.records[i]!;
      r.gpuMs = Math.max(0, median(times) - baseline);
      r.gpuStart = Math.max(r.submitted, gpuClock);
      gpuClock = r.gpuStart + r.gpuMs;
    }
    scratch.destroy();
  }

  destroy(): void {
    for (const set of this.querySets) set.destroy();
  }
}

/** Scratch buffers for replays, by size: one dispatch takes distinct ones (bindings must not alias), release() hands them back. */
class ScratchBuffers {
  private readonly free = new Map<number, GPUBuffer[]>();
  private taken: [number, GPUBuffer][] = [];
  private readonly all: GPUBuffer[] = [];

  constructor(private readonly device: GPUDevice) {}

  take(bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const buffer = this.free.get(size)?.pop() ?? this.make(size, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    this.taken.push([size, buffer]);
    return buffer;
  }

  uniform(bytes: number): GPUBuffer {
    const buffer = this.make(Math.max(16, bytes), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.taken.push([-1, buffer]);
    return buffer;
  }

  release(): void {
    for (const [size, buffer] of this.taken) {
      if (size < 0) continue;
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(buffer);
    }
    this.taken = [];
  }

  private make(size: number, usage: number): GPUBuffer {
    const buffer = this.device.createBuffer({ size, usage });
    this.all.push(buffer);
    return buffer;
  }

  destroy(): void {
    for (const b of this.all) b.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The last two dims of a shape (a vector is one row), and the count of such matrices. */
function matrix(shape: Shape): { rows: number; cols: number; batch: number } {
  const cols = shape.at(-1) ?? 1;
  const rows = shape.length >= 2 ? shape.at(-2)! : 1;
  return { rows, cols, batch: numel(shape) / Math.max(1, rows * cols) };
}

/**
 * FLOPs of a dispatch, estimated from the shapes bound, where defined:
 *   matmul (a, b, bias, out): 2·M·N·K per matrix pair (the split sum: none; counted in the product);
 *   attention (qkv [B, T, 3C], past k [.., P, ..]): forward 4·B·T·S·C with S = P + T (no causal
 *     discount), each backward entry 6·B·T·S·C (it recomputes the scores);
 *   layer norm: 8 per element forward, 10 per element for dx, 4 for the parameter partials;
 *   softmax: 5 per element forward, 3 backward.
 * Elementwise ops and movement count bytes only.
 */
export function flopsOf(family: string, entry: string, shapes: readonly (Shape | null)[]): number | null {
  const first = shapes[0];
  if (!first) return null;
  const n = numel(first);
  switch (family) {
    case 'matmul':
    case 'matmul_register': {
      const b = shapes[1];
      const out = shapes.at(-1);
      if (entry === 'mm_split_sum' || !b || !out) return null;
      const a = matrix(first);
      // K is the dim of a that is not the output's rows (a may be transposed).
      const k = first.length === 1 ? first[0]! : a.rows === matrix(out).rows ? a.cols : a.rows;
      const bm = matrix(b);
      const m = (a.rows * a.cols) / k;
      const nCols = (bm.rows * bm.cols) / k;
      return 2 * m * nCols * k * Math.max(a.batch, bm.batch);
    }
    case 'attention': {
      if (entry === 'split_past' || entry === 'attn_merge') return null;
      const c = first.at(-1)! / 3;
      const t = first.at(-2) ?? 1;
      const batch = n / (t * 3 * c);
      const past = entry === 'attn_forward' && shapes[1] ? numel(shapes[1]) / (batch * c) : 0;
      const s = past + t;
      return (entry === 'attn_forward' ? 4 : 6) * batch * t * s * c;
    }
    case 'layernorm':
      if (entry.startsWith('ln_forward')) return 8 * n;
      if (entry.startsWith('ln_backward')) return 10 * n;
      if (entry === 'ln_param_partial') return 4 * n;
      return null;
    case 'softmax':
      return (entry === 'softmax_forward' ? 5 : 3) * n;
    default:
      return null;
  }
}

function makeProfile<T>(result: T, timing: GpuTiming, adapter: string, records: DispatchRecord[], spans: HostSpan[], start: number, end: number): Profile<T> {
  const totals = (by: 'kernel' | 'family' | 'op' = 'kernel'): KernelTotal[] => {
    const all = records.reduce((s, r) => s + r.gpuMs, 0) || 1;
    const groups = new Map<string, KernelTotal>();
    for (const r of records) {
      const name = by === 'kernel' ? r.kernel : by === 'family' ? r.family : r.op;
      let t = groups.get(name);
      if (!t) groups.set(name, (t = { name, calls: 0, gpuMs: 0, share: 0, bytes: 0, flops: null, gbps: 0, gflops: null }));
      t.calls++;
      t.gpuMs += r.gpuMs;
      t.bytes += r.bytes;
      if (r.flops !== null) t.flops = (t.flops ?? 0) + r.flops;
    }
    return [...groups.values()]
      .map((t) => ({ ...t, share: t.gpuMs / all, gbps: t.gpuMs > 0 ? t.bytes / t.gpuMs / 1e6 : 0, gflops: t.flops !== null && t.gpuMs > 0 ? t.flops / t.gpuMs / 1e6 : null }))
      .sort((a, b) => b.gpuMs - a.gpuMs);
  };
  return {
    result,
    timing,
    timingNote: TIMING_NOTES[timing],
    adapter,
    records,
    spans,
    start,
    end,
    totals,
    summary: (top = 15) => summaryTable(totals('kernel'), records, timing, start, end, top),
    toChromeTrace: () => chromeTrace(records, spans, timing, adapter, start, end),
  };
}

function summaryTable(totals: KernelTotal[], records: DispatchRecord[], timing: GpuTiming, start: number, end: number, top: number): string {
  const gpuMs = records.reduce((s, r) => s + r.gpuMs, 0);
  const lines = [
    `${records.length} dispatches, GPU ${gpuMs.toFixed(2)} ms, host ${(end - start).toFixed(2)} ms (${TIMING_NOTES[timing]})`,
    `${'kernel'.padEnd(36)} ${'calls'.padStart(6)} ${'GPU ms'.padStart(10)} ${'share'.padStart(7)} ${'GB/s'.padStart(8)} ${'GFLOP/s'.padStart(9)}`,
  ];
  for (const t of totals.slice(0, top)) {
    lines.push(
      `${t.name.padEnd(36)} ${String(t.calls).padStart(6)} ${t.gpuMs.toFixed(3).padStart(10)} ${(100 * t.share).toFixed(1).padStart(6)}% ${t.gbps.toFixed(2).padStart(8)} ${(t.gflops === null ? '-' : t.gflops.toFixed(2)).padStart(9)}`,
    );
  }
  if (totals.length > top) lines.push(`… ${totals.length - top} more kernels`);
  return lines.join('\n');
}

/** One event of toChromeTrace(): 'X' a span (ts and dur in µs), 'M' a track's name. */
export interface TraceEvent {
  ph: 'X' | 'M';
  name: string;
  cat?: string;
  pid: number;
  tid: number;
  ts: number;
  dur: number;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: { adapter: string; timing: GpuTiming; note: string };
}

const HOST_PID = 1;
const GPU_PID = 2;
const us = (ms: number) => Math.round(ms * 1000 * 1000) / 1000;
/** A span's ts and dur in µs, both rounded from the ends, so spans that nest in ms still nest. */
const span = (startMs: number, endMs: number) => ({ ts: us(startMs), dur: us(endMs) - us(startMs) });

function chromeTrace(records: DispatchRecord[], spans: HostSpan[], timing: GpuTiming, adapter: string, start: number, end: number): string {
  const name = (ph: 'process_name' | 'thread_name', pid: number, value: string): TraceEvent => ({ ph: 'M', name: ph, pid, tid: 1, ts: 0, dur: 0, args: { name: value } });
  const events: TraceEvent[] = [
    name('process_name', HOST_PID, 'host'),
    name('thread_name', HOST_PID, 'JavaScript (ops, encoding, submits, waits)'),
    name('process_name', GPU_PID, `GPU: ${adapter}`),
    name('thread_name', GPU_PID, timing === 'timestamp-query' ? 'kernels (timestamp queries)' : 'kernels (host-timed replay; not where they ran)'),
    { ph: 'X', name: 'profiled work', cat: 'step', pid: HOST_PID, tid: 1, ...span(start, end) },
  ];
  // Op spans: a run of dispatches of one op call; each contains its dispatches' encoding.
  for (let i = 0; i < records.length; ) {
    let j = i;
    while (j + 1 < records.length && records[j + 1]!.opStart === records[i]!.opStart) j++;
    const first = records[i]!;
    const last = records[j]!;
    events.push({ ph: 'X', name: first.op, cat: first.backward ? 'op,backward' : 'op', pid: HOST_PID, tid: 1, ...span(first.opStart, last.encodeEnd), args: { caller: first.caller, dispatches: j - i + 1 } });
    i = j + 1;
  }
  for (const r of records) {
    const shapes = r.shapes.map((s) => (s ? shapeString(s) : '-')).join(' ');
    events.push({ ph: 'X', name: `encode ${r.kernel}`, cat: 'encode', pid: HOST_PID, tid: 1, ...span(r.encodeStart, r.encodeEnd) });
    events.push({
      ph: 'X',
      name: r.kernel,
      cat: `gpu,${r.family}`,
      pid: GPU_PID,
      tid: 1,
      ...span(r.gpuStart, r.gpuStart + r.gpuMs),
      args: { op: r.op, caller: r.caller, shapes, workgroups: r.workgroups.join('×'), bytes: r.bytes, flops: r.flops, timing },
    });
  }
  for (const s of spans) events.push({ ph: 'X', name: s.name, cat: s.name, pid: HOST_PID, tid: 1, ...span(s.start, s.end), args: { detail: s.detail } });
  const trace: ChromeTrace = { traceEvents: events, displayTimeUnit: 'ms', otherData: { adapter, timing, note: TIMING_NOTES[timing] } };
  return JSON.stringify(trace);
}
