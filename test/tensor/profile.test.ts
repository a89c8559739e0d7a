// The profiler: one record per dispatch with its op, kernel, shapes and FLOPs; a Chrome trace
// that parses and nests; timestamp queries where the adapter has them (lavapipe), the labelled
// host-timed fallback where not (llvmpipe through GL ES).
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu } from '../helpers.ts';
import { openGpu } from '../../src/node/device.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.ts';
import { profile, type Profile, type ChromeTrace, type TraceEvent } from '../../src/tensor/profile.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { softmax } from '../../src/ops/softmax.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';
import { seededRandom } from '../../src/util/random.ts';

let gpu: Gpu;
let vulkan: Gpu | null;
beforeAll(async () => {
  gpu = await testGpu();
  vulkan = await openGpu({ backend: 'vulkan', quiet: true }).catch(() => null);
});

const [M, K, N] = [24, 40, 36];

/** matmul [M, K]·[K, N], softmax over rows, layerNorm over N: the step, profiled (or not), read back at the end. */
async function step(g: Gpu, profiled = true): Promise<Profile<Float32Array> | Float32Array> {
  const random = seededRandom(7);
  const values = (n: number) => Array.from({ length: n }, () => random() - 0.5);
  const a = tensor(g, values(M * K), [M, K]);
  const b = tensor(g, values(K * N), [K, N]);
  const gamma = tensor(g, values(N), [N]);
  const beta = tensor(g, values(N), [N]);
  const before = g.dispatches;
  const work = async () => {
    const out: Tensor = tidy(() => layerNorm(softmax(matmul(a, b)), gamma, beta));
    const data = (await out.read()) as Float32Array;
    out.dispose();
    return data;
  };
  const p = profiled ? await profile(g, work) : await work();
  if (!(p instanceof Float32Array)) expect(p.records.length).toBe(g.dispatches - before);
  for (const t of [a, b, gamma, beta]) t.dispose();
  return p;
}

async function profiledStep(g: Gpu): Promise<Profile<Float32Array>> {
  return (await step(g)) as Profile<Float32Array>;
}

function checkRecords(p: Profile<Float32Array>): void {
  expect(p.records.map((r) => r.op)).toEqual(['matmul', 'softmax', 'layerNorm']);
  const [mm, sm, ln] = p.records;
  expect(mm!.family).toMatch(/^matmul/);
  expect(mm!.shapes[0]).toEqual([M, K]);
  expect(mm!.shapes[1]).toEqual([K, N]);
  expect(mm!.shapes.at(-1)).toEqual([M, N]);
  expect(mm!.flops).toBe(2 * M * N * K);
  expect(sm!.kernel).toBe('softmax.softmax_forward');
  expect(sm!.shapes).toEqual([[M, N], [M, N]]);
  expect(sm!.flops).toBe(5 * M * N);
  expect(ln!.kernel).toMatch(/^layernorm\.ln_forward/);
  expect(ln!.shapes.slice(0, 4)).toEqual([[M, N], [N], [N], [M, N]]);
  expect(ln!.flops).toBe(8 * M * N);
  for (const r of p.records) {
    expect(r.caller).toMatch(/profile\.test\.ts:\d+:\d+/);
    expect(r.gpuMs).toBeGreaterThan(0);
    expect(r.bytes).toBeGreaterThan(0);
  }
}

function checkTrace(p: Profile<Float32Array>): TraceEvent[] {
  const trace = JSON.parse(p.toChromeTrace()) as ChromeTrace;
  const events = trace.traceEvents;
  const spans = events.filter((e) => e.ph === 'X');
  const host = spans.filter((e) => e.pid === 1);
  const gpuSpans = spans.filter((e) => e.pid === 2);
  expect(gpuSpans.map((e) => e.name)).toEqual(p.records.map((r) => r.kernel));
  // Host spans on one track nest: any two are disjoint or one contains the other.
  for (const x of host) {
    for (const y of host) {
      const disjoint = x.ts + x.dur <= y.ts || y.ts + y.dur <= x.ts;
      const nested = (x.ts <= y.ts && y.ts + y.dur <= x.ts + x.dur) || (y.ts <= x.ts && x.ts + x.dur <= y.ts + y.dur);
      expect(disjoint || nested, `${x.name} and ${y.name} overlap without nesting`).toBe(true);
    }
  }
  // Each op span contains its dispatches' encoding.
  const ops = host.filter((e) => e.cat?.startsWith('op'));
  expect(ops.map((e) => e.name)).toEqual(['matmul', 'softmax', 'layerNorm']);
  const encodes = host.filter((e) => e.cat === 'encode');
  expect(encodes).toHaveLength(3);
  encodes.forEach((e, i) => {
    expect(ops[i]!.ts).toBeLessThanOrEqual(e.ts);
    expect(e.ts + e.dur).toBeLessThanOrEqual(ops[i]!.ts + ops[i]!.dur);
  });
  expect(host.some((e) => e.name === 'wait')).toBe(true);
  expect(host.some((e) => e.name === 'submit')).toBe(true);
  return events;
}

describe('profile', () => {
  it('records each dispatch of matmul + softmax + layerNorm with its op, shapes and FLOPs (llvmpipe: the labelled fallback)', async () => {
    const p = await profiledStep(gpu);
    expect(p.result).toHaveLength(M * N);
    if (gpu.features.has('timestamp-query')) return;
    expect(p.timing).toBe('host-replay');
    expect(p.timingNote).toMatch(/no timestamp queries/);
    checkRecords(p);
    const events = checkTrace(p);
    expect(events.find((e) => e.ph === 'M' && e.pid === 2 && e.name === 'thread_name')!.args!.name).toMatch(/host-timed replay/);
    expect(p.summary()).toMatch(/host-timed replays/);
    expect(p.summary()).toMatch(/softmax\.softmax_forward\s+1 /);
  });

  it('uses timestamp queries where the adapter offers them (lavapipe through Dawn Vulkan)', async (ctx) => {
    if (!vulkan || !vulkan.features.has('timestamp-query')) return ctx.skip('no adapter with timestamp-query here');
    const p = await profiledStep(vulkan);
    expect(p.timing).toBe('timestamp-query');
    checkRecords(p);
    const events = checkTrace(p);
    expect(events.find((e) => e.ph === 'M' && e.pid === 2 && e.name === 'thread_name')!.args!.name).toMatch(/timestamp queries/);
    // In place: the GPU ran each dispatch after its batch was submitted, in order.
    const r = p.records;
    for (let i = 1; i < r.length; i++) expect(r[i]!.gpuStart).toBeGreaterThanOrEqual(r[i - 1]!.gpuStart + r[i - 1]!.gpuMs - 1e-6);
  });

  it('gives the same results as unprofiled work, and refuses to nest', async () => {
    const p = await profiledStep(gpu);
    expect(Array.from(p.result)).toEqual(Array.from((await step(gpu, false)) as Float32Array));
    await expect(profile(gpu, () => profile(gpu, () => 1))).rejects.toThrow(/do not nest/);
    expect(gpu.monitor).toBeNull();
  });
});
