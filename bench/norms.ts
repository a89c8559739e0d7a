// Memory bandwidth of the layerNorm and gelu kernels over GPT-2-sized activations [B·T, 768].
//   node --import tsx bench/norms.ts
// GB/s counts the bytes each op must move at least once: its [B·T, 768] inputs read and
// outputs written (gamma, beta and the per-row statistics are negligible). Each sample
// encodes REPS ops and waits for them, so the per-sync latency is amortised; "encode µs"
// is the CPU time to encode one op: when it approaches the per-op time, the op is bound by
// the host, not by the kernel. Where the adapter has timestamp queries, "kernel GB/s" is
// the same bytes over the GPU time of the op's kernels alone, replayed back to back.
import { Bench } from 'tinybench';
import { openGpu } from '../src/node/device.js';
import { tensor, tidy, noGrad, keep, type Tensor } from '../src/engine/tensor.js';
import type { Dispatch } from '../src/gpu/context.js';
import { layerNorm } from '../src/ops/layernorm.js';
import { gelu } from '../src/ops/gelu.js';

const C = 768;
const REPS = 10;
const ROWS = [1024, 4096];

const gpu = await openGpu();
/** Deterministic activations of unit scale; their values do not change the bytes moved. */
const data = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * 2);
console.log(`device: ${gpu.adapterName}`);

interface Case {
  name: string;
  /** Bytes read and written by one op. */
  bytes: number;
  run: () => void;
}

function cases(rows: number): Case[] {
  const n = rows * C;
  const x = keep(tensor(gpu, data(n, 1), [rows, C]));
  const dy = keep(tensor(gpu, data(n, 2), [rows, C]));
  const gamma = keep(tensor(gpu, data(C, 3), [C]));
  const beta = keep(tensor(gpu, data(C, 4), [C]));
  // Backward passes run from a recorded node, so only the gradient kernel is timed (frozen gamma/beta, as in prompt tuning).
  const xg = keep(tensor(gpu, data(n, 1), [rows, C], { requiresGrad: true }));
  const lnOut = keep(layerNorm(xg, gamma, beta));
  const geluOut = keep(gelu(xg));
  const backward = (y: Tensor) => () => void y.node!.backward(dy, [true, false, false]);
  const shape = `[${rows}, ${C}]`;
  return [
    { name: `layerNorm forward ${shape}`, bytes: 2 * n * 4, run: () => void noGrad(() => layerNorm(x, gamma, beta)) },
    { name: `layerNorm backward dx ${shape}`, bytes: 3 * n * 4, run: backward(lnOut) },
    { name: `gelu forward ${shape}`, bytes: 2 * n * 4, run: () => void noGrad(() => gelu(x)) },
    { name: `gelu backward ${shape}`, bytes: 3 * n * 4, run: backward(geluOut) },
  ];
}

const KERNEL_REPLAYS = 200;

/**
 * GPU seconds of the kernels one call of `run` dispatches, or null without timestamp queries:
 * the dispatches are recorded, then replayed KERNEL_REPLAYS times in one timed compute pass.
 */
async function kernelSeconds(run: () => void): Promise<number | null> {
  if (!gpu.features.has('timestamp-query')) return null;
  const device = gpu.device;
  const align = gpu.limits.minUniformBufferOffsetAlignment;
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const uniforms = device.createBuffer({ size: 64 * align, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  // Tensors the op allocates stay alive (tidy) until the replay is submitted.
  tidy(() => {
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
    const steps = recorded.map((d, i) => {
      const pipeline = gpu.pipeline(d.kernel, d.entry, d.constants);
      const entries: GPUBindGroupEntry[] = d.bindings.map((b, k) => ({ binding: k + 1, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: b.size } }));
      if (d.params) {
        device.queue.writeBuffer(uniforms, i * align, d.params);
        entries.unshift({ binding: 0, resource: { buffer: uniforms, offset: i * align, size: d.params.byteLength } });
      }
      return { pipeline, group: device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), workgroups: d.workgroups };
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    for (let r = 0; r < KERNEL_REPLAYS; r++) {
      for (const { pipeline, group, workgroups } of steps) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(...workgroups);
      }
    }
    pass.end();
    encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, 16);
    device.queue.submit([encoder.finish()]);
  });
  await readback.mapAsync(GPUMapMode.READ);
  const [begin, end] = new BigUint64Array(readback.getMappedRange());
  const seconds = Number(end! - begin!) / 1e9 / KERNEL_REPLAYS;
  for (const b of [resolved, readback, uniforms]) b.destroy();
  querySet.destroy();
  return seconds;
}

const all = ROWS.flatMap(cases);
const encodeMicros = new Map<string, number>();
const bench = new Bench({ name: 'norms', time: 200, iterations: 4, warmupIterations: 1, warmupTime: 0 });
for (const c of all) {
  bench.add(c.name, async () => {
    const t0 = performance.now();
    tidy(() => {
      for (let i = 0; i < REPS; i++) c.run();
    });
    encodeMicros.set(c.name, ((performance.now() - t0) * 1000) / REPS);
    await gpu.sync();
  });
}
await bench.run();

const kernel = new Map<string, number | null>();
for (const c of all) kernel.set(c.name, await kernelSeconds(c.run));

const table = all.map((c) => {
  const task = bench.getTask(c.name)!;
  const msPerOp = task.result!.latency.mean / REPS;
  const seconds = kernel.get(c.name);
  return {
    op: c.name,
    'µs/op': +(msPerOp * 1000).toFixed(1),
    'encode µs/op': +encodeMicros.get(c.name)!.toFixed(1),
    'GB/s': +(c.bytes / (msPerOp / 1000) / 1e9).toFixed(2),
    'kernel µs': seconds ? +(seconds * 1e6).toFixed(2) : '-',
    'kernel GB/s': seconds ? +(c.bytes / seconds / 1e9).toFixed(1) : '-',
    samples: task.result!.latency.samples.length,
  };
});
console.table(table);
gpu.destroy();
