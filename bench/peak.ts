// The adapter's measured peaks, the yardsticks for the kernel numbers:
//   bandwidth: a large buffer copy (copyBufferToBuffer), and the same bytes copied by a plain
//              vec4 shader, since the two can differ widely (on llvmpipe the buffer copy is a
//              memcpy, several times faster than any shader); the peak is the faster;
//   f32 FLOP/s: a shader of independent vec4 fused multiply-adds and nothing else.
// The probe shaders are here rather than in kernels/: they measure the adapter and are no part
// of the engine, so they are not embedded in it.
import type { Gpu } from '../src/gpu/context.ts';
import { timeOp, type TimingOptions } from './timing.ts';

export interface Peak {
  /** Bytes read plus bytes written per second by copyBufferToBuffer. */
  copyGBps: number;
  /** The same through a vec4 copy shader. */
  shaderCopyGBps: number;
  bandwidthGBps: number;
  fmaGflops: number;
  copyBytes: number;
}

const WG = 256;
const FMA_ITERS = 256;

const COPY_SHADER = /* wgsl */ `
struct Params { count: u32, row: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(${WG})
fn copy(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.y * params.row + id.x;
  if (i < params.count) { dst[i] = src[i]; }
}`;

// Four independent chains per invocation hide the FMA latency; the seed comes from memory and
// the result goes to memory, so the compiler can neither fold nor drop the loop.
const FMA_SHADER = /* wgsl */ `
struct Params { iters: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> data: array<vec4<f32>>;
@compute @workgroup_size(${WG})
fn fma_peak(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = id.y * groups.x * ${WG}u + id.x;
  let m = data[i];
  var a = m;
  var b = m + vec4<f32>(1.0);
  var c = m + vec4<f32>(2.0);
  var d = m + vec4<f32>(3.0);
  let s = vec4<f32>(0.999);
  let t = vec4<f32>(0.001);
  for (var k = 0u; k < params.iters; k++) {
    a = fma(a, s, t);
    b = fma(b, s, t);
    c = fma(c, s, t);
    d = fma(d, s, t);
  }
  data[i] = a + b + c + d;
}`;

function pipeline(gpu: Gpu, code: string, entry: string): GPUComputePipeline {
  const module = gpu.device.createShaderModule({ label: `peak ${entry}`, code });
  return gpu.device.createComputePipeline({ label: `peak ${entry}`, layout: 'auto', compute: { module, entryPoint: entry } });
}

function uniform(gpu: Gpu, words: number[]): GPUBuffer {
  const buffer = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  gpu.device.queue.writeBuffer(buffer, 0, new Uint32Array(words));
  return buffer;
}

function encodeDispatch(gpu: Gpu, pipe: GPUComputePipeline, buffers: GPUBuffer[], x: number, y: number): void {
  const group = gpu.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const encoder = gpu.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(x, y);
  pass.end();
  gpu.device.queue.submit([encoder.finish()]);
}

async function readWords(gpu: Gpu, src: GPUBuffer, offset: number, words: number): Promise<ArrayBuffer> {
  const staging = gpu.device.createBuffer({ size: words * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = gpu.device.createCommandEncoder();
  encoder.copyBufferToBuffer(src, offset, staging, 0, words * 4);
  gpu.device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0);
  staging.destroy();
  return out;
}

/** Checks that the last words of dst equal the source pattern (index i holds i). */
async function checkCopy(gpu: Gpu, dst: GPUBuffer, bytes: number, what: string): Promise<void> {
  const words = 64;
  const got = new Uint32Array(await readWords(gpu, dst, bytes - words * 4, words));
  const first = bytes / 4 - words;
  got.forEach((v, i) => {
    if (v !== first + i) throw new Error(`peak ${what}: word ${first + i} reads ${v}`);
  });
}

export async function measurePeak(gpu: Gpu, opts: TimingOptions & { copyBytes: number }): Promise<Peak> {
  const device = gpu.device;
  const bytes = Math.min(opts.copyBytes, Math.floor(gpu.limits.maxStorageBufferBindingSize / 16) * 16, Math.floor(gpu.limits.maxBufferSize / 16) * 16);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const src = device.createBuffer({ size: bytes, usage, mappedAtCreation: true });
  const init = new Uint32Array(src.getMappedRange());
  for (let i = 0; i < init.length; i++) init[i] = i;
  src.unmap();
  const dst = device.createBuffer({ size: bytes, usage });
  const sync = () => device.queue.onSubmittedWorkDone();

  const copyOnce = () => {
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
    device.queue.submit([encoder.finish()]);
  };
  copyOnce();
  await checkCopy(gpu, dst, bytes, 'buffer copy');
  const copy = await timeOp(copyOnce, sync, opts);

  const vec4s = bytes / 16;
  const row = 65535 * WG;
  const copyPipe = pipeline(gpu, COPY_SHADER, 'copy');
  const copyParams = uniform(gpu, [vec4s, row, 0, 0]);
  const gx = Math.min(65535, Math.ceil(vec4s / WG));
  const gy = Math.ceil(vec4s / (gx * WG));
  const shaderOnce = () => encodeDispatch(gpu, copyPipe, [copyParams, src, dst], gx, gy);
  device.queue.writeBuffer(dst, bytes - 256, new Uint32Array(64));
  shaderOnce();
  await checkCopy(gpu, dst, bytes, 'shader copy');
  const shader = await timeOp(shaderOnce, sync, opts);

  // 2^20 invocations: more than enough to fill any current GPU.
  const invocations = 1 << 20;
  const fmaPipe = pipeline(gpu, FMA_SHADER, 'fma_peak');
  const fmaParams = uniform(gpu, [FMA_ITERS, 0, 0, 0]);
  const fmaData = device.createBuffer({ size: invocations * 16, usage });
  const fmaOnce = () => encodeDispatch(gpu, fmaPipe, [fmaParams, fmaData], invocations / WG / 16, 16);
  // From zeros the chains start at 0, 1, 2, 3 and each step x ← 0.999x + 0.001 moves them
  // towards 1: x_n = 1 + (x_0 − 1)·0.999ⁿ, so the four sum to 4 + 2·0.999ⁿ.
  fmaOnce();
  const sums = new Float32Array(await readWords(gpu, fmaData, 0, 4));
  const expected = 4 + 2 * 0.999 ** FMA_ITERS;
  for (const v of sums) if (!(Math.abs(v - expected) < 1e-3)) throw new Error(`peak fma: lane reads ${v}, expected ${expected}`);
  const fma = await timeOp(fmaOnce, sync, opts);

  for (const b of [src, dst, copyParams, fmaParams, fmaData]) b.destroy();
  const gbps = (ms: number) => (2 * bytes) / (ms / 1000) / 1e9;
  const copyGBps = gbps(copy.ms);
  const shaderCopyGBps = gbps(shader.ms);
  return {
    copyGBps,
    shaderCopyGBps,
    bandwidthGBps: Math.max(copyGBps, shaderCopyGBps),
    fmaGflops: (invocations * FMA_ITERS * 4 * 4 * 2) / (fma.ms / 1000) / 1e9,
    copyBytes: bytes,
  };
}
