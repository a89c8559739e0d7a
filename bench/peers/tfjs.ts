// Peer: TensorFlow.js's WebGPU backend on the same Dawn adapter as the engine, for matmul
// throughput and per-op host cost, and the session bench/ops.ts times general ops in.
// tfjs looks for navigator.gpu when its backend module loads, so the Dawn GPU object is put
// there first; on the software adapter Dawn only gives a compatibility-level adapter, which
// tfjs does not ask for, so requestAdapter is wrapped to ask for the level the engine got.
// Results are checked against float64 and timed as the engine's ops are (bench/timing.ts):
// reps of tf.matMul, then tfjs's queue submitted and awaited.
import { seededRandom } from '../../src/util/random.ts';
import { timeOp, type TimingOptions } from '../timing.ts';
import type { CostSet } from '../overhead.ts';

export const TFJS_ADD = 'tfjs add [64] + [64]';
export const TFJS_HOST_ADD = 'tfjs add [64] + [64], inputs on the host (added on the CPU)';

export interface PeerShape {
  name: string;
  m: number;
  k: number;
  n: number;
  bias: boolean;
  /** B stored [n, k] and used transposed. */
  transB?: boolean;
}

export interface PeerResult {
  name: string;
  m: number;
  k: number;
  n: number;
  transB: boolean;
  gflops: number;
  ms: number;
  maxRelError: number;
  rme: number;
}

/** The backend members used here (they are public in tfjs's WebGPUBackend, but not typed from the core's view). */
export interface WebGPUBackendLike {
  device: GPUDevice;
  shouldExecuteOnCPU(inputs: unknown[]): boolean;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

// Dropping the last reference to a Dawn instance while its device is in use is not safe.
const instances: GPU[] = [];

/** Dawn flags and feature level behind an engine adapter name such as "… (opengles, compatibility)". */
function dawnSetup(adapterName: string): { flags: string[]; featureLevel: string } {
  const match = /\((\w+), (core|compatibility)\)$/.exec(adapterName);
  if (!match) throw new Error(`cannot tell the Dawn backend of adapter "${adapterName}"`);
  return { flags: match[1] === 'default' ? [] : [`backend=${match[1]}`], featureLevel: match[2]! };
}

function hostMatrix(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => 2 * random() - 1);
}

/** Largest |C − C64| / Σ|terms| over sampled elements; throws above 1e-5. */
function checkSamples(s: PeerShape, a: Float32Array, b: Float32Array, bias: Float32Array | null, got: Float32Array): number {
  const pick = seededRandom(99);
  let worst = 0;
  for (let i = 0; i < 64; i++) {
    const m = Math.floor(pick() * s.m);
    const n = Math.floor(pick() * s.n);
    let ref = bias ? bias[n]! : 0;
    let scale = Math.abs(ref);
    for (let k = 0; k < s.k; k++) {
      const term = a[m * s.k + k]! * b[s.transB ? n * s.k + k : k * s.n + n]!;
      ref += term;
      scale += Math.abs(term);
    }
    const rel = Math.abs(got[m * s.n + n]! - ref) / Math.max(scale, 1e-30);
    if (!(rel <= 1e-5)) throw new Error(`tfjs ${s.name}: C[${m}, ${n}] = ${got[m * s.n + n]}, float64 reference ${ref}`);
    worst = Math.max(worst, rel);
  }
  return worst;
}

type Tf = typeof import('@tensorflow/tfjs-core');

export interface TfjsSession {
  tf: Tf;
  adapter: string;
  sync: () => Promise<void>;
  /** Ends tfjs's encoder and submits what it holds, without waiting. */
  submit: () => void;
}

let session: Promise<TfjsSession> | null = null;

/**
 * tfjs's WebGPU backend on its own device of the engine's adapter, opened once per process
 * (tfjs registers its backend once) and shared by the sections that use it; closeTfjs() ends it.
 */
export function tfjsSession(engineAdapter: string): Promise<TfjsSession> {
  session ??= (async () => {
    const { flags, featureLevel } = dawnSetup(engineAdapter);
    const { create } = (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU };
    const dawn = create(flags);
    instances.push(dawn);
    const requestAdapter = dawn.requestAdapter.bind(dawn);
    let adapter: GPUAdapter | null = null;
    dawn.requestAdapter = async (options?: GPURequestAdapterOptions) => {
      adapter = await requestAdapter({ ...options, featureLevel } as GPURequestAdapterOptions);
      return adapter;
    };
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn }, configurable: true, writable: true });
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not initialise');
    const backend = tf.backend() as unknown as WebGPUBackendLike;
    const info = (adapter as GPUAdapter | null)?.info;
    const adapterName = info ? [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ').trim() : 'unknown adapter';
    const submit = () => {
      if (backend.commandEncoder) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
    };
    const sync = async () => {
      submit();
      await backend.device.queue.onSubmittedWorkDone();
    };
    return { tf, adapter: `${adapterName} (${flags[0]?.slice('backend='.length) ?? 'default'}, ${featureLevel})`, sync, submit };
  })();
  return session;
}

/** Releases tfjs's device, if a section opened it. */
export async function closeTfjs(): Promise<void> {
  if (!session) return;
  const { tf, sync } = await session;
  session = null;
  await sync();
  const device = (tf.backend() as unknown as WebGPUBackendLike).device;
  tf.removeBackend('webgpu');
  device.destroy();
}

export async function tfjsMatmul(engineAdapter: string, shapes: readonly PeerShape[], timing: TimingOptions): Promise<{ adapter: string; version: string; results: PeerResult[] }> {
  const { tf, adapter, sync } = await tfjsSession(engineAdapter);
  const results: PeerResult[] = [];
  for (const s of shapes) {
    const aHost = hostMatrix(s.m * s.k, 1);
    const bHost = hostMatrix(s.k * s.n, 2);
    const biasHost = s.bias ? hostMatrix(s.n, 3) : null;
    const a = tf.tensor2d(aHost, [s.m, s.k]);
    const transB = s.transB ?? false;
    const b = tf.tensor2d(bHost, transB ? [s.n, s.k] : [s.k, s.n]);
    const bias = biasHost ? tf.tensor1d(biasHost) : undefined;
    const matmul = () => (bias ? tf.fused.matMul({ a, b, bias, transposeB: transB }) : tf.matMul(a, b, false, transB));
    const first = matmul();
    const maxRelError = checkSamples(s, aHost, bHost, biasHost, (await first.data()) as Float32Array);
    first.dispose();
    const t = await timeOp(() => matmul().dispose(), sync, timing);
    results.push({ name: s.name, m: s.m, k: s.k, n: s.n, transB, gflops: (2 * s.m * s.n * s.k) / t.ms / 1e6, ms: t.ms, maxRelError, rme: t.rme });
    for (const x of [a, b, bias]) x?.dispose();
  }
  await sync();
  return { adapter, version: tf.version_core, results };
}

/**
 * tfjs's per-op host cost, measured as the engine's (bench/overhead.ts): add of two [64]
 * tensors and a [40,768]×[768,768] matmul with bias, each output disposed at once.
 *
 * tfjs runs an op on the CPU instead of dispatching it when every input is under 1,000
 * elements and still only on the host (WEBGPU_CPU_FORWARD, on by default). In a training step
 * the inputs are earlier kernels' outputs on the GPU, so the add the engine's is compared with
 * takes inputs that tfjs itself computed on the GPU, and dispatches; the add of host tensors,
 * which tfjs does in JavaScript, is measured beside it.
 */
export async function tfjsHostCost(engineAdapter: string, reps: number): Promise<CostSet & { adapter: string; version: string }> {
  const { tf, adapter, sync, submit } = await tfjsSession(engineAdapter);
  const backend = tf.backend() as unknown as WebGPUBackendLike;
  const hostA = tf.tensor1d(hostMatrix(64, 1));
  const hostB = tf.tensor1d(hostMatrix(64, 2));
  // Computed on the GPU from copies (a kernel's use uploads its inputs, so hostA and hostB are not used).
  const forward = tf.env().getBool('WEBGPU_CPU_FORWARD');
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const [a, b] = [1, 2].map((seed) => tf.tidy(() => tf.add(tf.tensor1d(hostMatrix(64, seed)), 0)));
  tf.env().set('WEBGPU_CPU_FORWARD', forward);
  if (backend.shouldExecuteOnCPU([a, b])) throw new Error('tfjs: the add inputs meant to live on the GPU would be added on the CPU');
  if (forward && !backend.shouldExecuteOnCPU([hostA, hostB])) throw new Error('tfjs: the add of host tensors would dispatch');
  const x = tf.tensor2d(hostMatrix(40 * 768, 3), [40, 768]);
  const w = tf.tensor2d(hostMatrix(768 * 768, 4), [768, 768]);
  const bias = tf.tensor1d(hostMatrix(768, 5));
  return {
    adapter,
    version: tf.version_core,
    cases: [
      { name: TFJS_ADD, encodeOne: () => tf.add(a, b).dispose(), submit, wait: sync, reps },
      { name: TFJS_HOST_ADD, encodeOne: () => tf.add(hostA, hostB).dispose(), submit, wait: sync, reps },
      { name: 'tfjs matmul [40,768]×[768,768] + bias', encodeOne: () => tf.fused.matMul({ a: x, b: w, bias }).dispose(), submit, wait: sync, reps: Math.max(1, reps >> 2) },
    ],
    dispose: async () => {
      for (const t of [hostA, hostB, a, b, x, w, bias]) t.dispose();
      await sync();
    },
  };
}
