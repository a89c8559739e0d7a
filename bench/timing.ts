// How every benchmark here times GPU work. WebGPU calls only encode work; it is done when the
// queue says so. A sample therefore encodes `reps` operations, submits them, and waits for the
// queue (the engine's gpu.sync(), or a peer's own queue) — the wait is part of the sample, so
// the time is wall time to completion, never just encoding time. `reps` is sized so one sample
// lasts about `targetMs`, which amortises the submit-and-wait latency over many operations.
import { Bench } from 'tinybench';
import type { Dispatch, Gpu } from '../src/gpu/context.ts';
import { tidy } from '../src/tensor/tensor.ts';

export interface TimingOptions {
  /** Wall time to aim for per sample. */
  targetMs: number;
  /** Samples after one warm-up sample. */
  samples: number;
}

export interface Timing {
  /** Median over samples of the per-operation time. */
  ms: number;
  /** tinybench's relative margin of error of the per-sample mean, in percent. */
  rme: number;
  reps: number;
  samples: number;
}

const MAX_REPS = 4096;

/**
 * Times `run` (which encodes one operation) to completion. The first call also compiles
 * pipelines, so it runs once before the sizing run.
 */
export async function timeOp(run: () => void, sync: () => Promise<void>, opts: TimingOptions): Promise<Timing> {
  run();
  await sync();
  let t = performance.now();
  run();
  await sync();
  const single = performance.now() - t;
  const reps = Math.min(MAX_REPS, Math.max(1, Math.round(opts.targetMs / Math.max(single, 1e-3))));
  const bench = new Bench({ iterations: opts.samples, time: 0, warmupIterations: 1, warmupTime: 0, throws: true });
  bench.add('op', async () => {
    for (let i = 0; i < reps; i++) run();
    await sync();
  });
  await bench.run();
  const latency = bench.tasks[0]!.result!.latency;
  t = latency.p50 ?? latency.mean;
  return { ms: t / reps, rme: latency.rme, reps, samples: latency.samples.length };
}

/** timeOp for an engine op: each rep's tensors are freed at once, so the pool reuses them. */
export function timeEngineOp(gpu: Gpu, run: () => void, opts: TimingOptions): Promise<Timing> {
  return timeOp(() => tidy(run), () => gpu.sync(), opts);
}

/**
 * Times one whole step (already warm) at least `samples` times, and more while the samples
 * add up to under `budgetMs`: for work too large to repeat within a sample (a model pass, a
 * training step), which on a slow adapter gets few samples and on a fast one many.
 */
export async function timeStep(step: () => Promise<void>, samples: number, budgetMs = 0): Promise<Timing> {
  const bench = new Bench({ iterations: samples, time: budgetMs, warmup: false, throws: true });
  bench.add('step', step);
  await bench.run();
  const latency = bench.tasks[0]!.result!.latency;
  return { ms: latency.p50 ?? latency.mean, rme: latency.rme, reps: 1, samples: latency.samples.length };
}

const KERNEL_REPLAYS = 100;

/** One dispatch ready for Dawn alone: its pipeline, a bind group of its own, its grid. */
export interface ReplayStep {
  pipeline: GPUComputePipeline;
  group: GPUBindGroup;
  workgroups: Dispatch['workgroups'];
}

/**
 * Runs `run` once through the engine, recording its dispatches, and returns them as raw
 * Dawn steps with their uniforms in one buffer of their own. Call inside tidy(), so that the
 * op's tensors (which the steps bind) live until the replay is submitted.
 */
export function recordReplay(gpu: Gpu, run: () => void): { steps: ReplayStep[]; uniforms: GPUBuffer } {
  const device = gpu.device;
  const recorded: Dispatch[] = [];
  const dispatch = gpu.dispatch;
  gpu.dispatch = (d) => {
    recorded.push(d);
    dispatch.call(gpu, d);
  };
  try {
    run();
  } finally {
    gpu.dispatch = dispatch;
  }
  gpu.flush();
  // Each dispatch's uniforms at its own aligned offset (a struct may be larger than the alignment).
  const align = gpu.limits.minUniformBufferOffsetAlignment;
  const largest = Math.max(4, ...recorded.map((d) => d.params?.byteLength ?? 0));
  const stride = Math.ceil(largest / align) * align;
  const uniforms = device.createBuffer({ size: Math.max(1, recorded.length) * stride, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const steps = recorded.map((d, i) => {
    const pipeline = gpu.pipeline(d.kernel, d.entry, d.constants, d.flags);
    const entries: GPUBindGroupEntry[] = d.bindings.map((b, k) => ({ binding: k + 1, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: Math.max(4, b.size) } }));
    if (d.params) {
      device.queue.writeBuffer(uniforms, i * stride, d.params);
      entries.unshift({ binding: 0, resource: { buffer: uniforms, offset: i * stride, size: d.params.byteLength } });
    }
    return { pipeline, group: device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), workgroups: d.workgroups };
  });
  return { steps, uniforms };
}

/** Encodes the steps into a pass: setPipeline + setBindGroup + dispatch each, as Dawn alone would. */
export function encodeReplay(pass: GPUComputePassEncoder, steps: readonly ReplayStep[]): void {
  for (const { pipeline, group, workgroups } of steps) {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...workgroups);
  }
}

/**
 * GPU time in ms of the kernels that one call of `run` dispatches, measured with timestamp
 * queries around KERNEL_REPLAYS back-to-back replays of them in one compute pass; null where
 * the adapter has no timestamp queries. On a fast GPU small ops are bound by host encoding,
 * and this separates the kernels' own speed from that. A WebGPU error in the replay itself is
 * reported and gives null, and leaves the engine's device usable.
 */
export async function kernelMs(gpu: Gpu, run: () => void): Promise<number | null> {
  if (!gpu.features.has('timestamp-query')) return null;
  const device = gpu.device;
  // With no encoder open, the engine's own error scopes open and close inside this one.
  gpu.flush();
  device.pushErrorScope('validation');
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const uniforms = tidy(() => {
    const { steps, uniforms } = recordReplay(gpu, run);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    for (let r = 0; r < KERNEL_REPLAYS; r++) encodeReplay(pass, steps);
    pass.end();
    encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, 16);
    device.queue.submit([encoder.finish()]);
    return uniforms;
  });
  const error = await device.popErrorScope();
  if (error) {
    for (const b of [resolved, readback, uniforms]) b.destroy();
    querySet.destroy();
    console.warn(`kernel timing with timestamp queries failed, skipped: ${error.message}`);
    return null;
  }
  await readback.mapAsync(GPUMapMode.READ);
  const [begin, end] = new BigUint64Array(readback.getMappedRange());
  readback.unmap();
  for (const b of [resolved, readback, uniforms]) b.destroy();
  querySet.destroy();
  return Number(end! - begin!) / 1e6 / KERNEL_REPLAYS;
}
