// Matmul throughput at GPT-2 shapes. Checks sampled outputs against float64 first, then times.
//   node --import tsx bench/matmul.ts [--json]
import { Bench } from 'tinybench';
import { openGpu } from '../src/node/device.js';
import { tensor, type Tensor } from '../src/engine/tensor.js';
import { matmul } from '../src/ops/matmul.js';
import type { Gpu } from '../src/gpu/context.js';

interface Shape {
  name: string;
  m: number;
  k: number;
  n: number;
  transB?: boolean;
  bias?: boolean;
}

const SHAPES: Shape[] = [
  { name: 'qkv [1024,768]×[768,2304]+b', m: 1024, k: 768, n: 2304, bias: true },
  { name: 'mlp up [1024,768]×[768,3072]+b', m: 1024, k: 768, n: 3072, bias: true },
  { name: 'mlp down [1024,3072]×[3072,768]+b', m: 1024, k: 3072, n: 768, bias: true },
  { name: '1024³', m: 1024, k: 1024, n: 1024 },
  // Backward through a frozen Conv1D: dX = dY·Wᵀ.
  { name: 'dX [1024,2304]×[768,2304]ᵀ', m: 1024, k: 2304, n: 768, transB: true },
];

const SAMPLES = 64;
/** Wall time to aim for per timed iteration, so dispatch and sync overheads are amortized. */
const ITERATION_MS = 300;

function uniform(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

interface Result {
  shape: string;
  m: number;
  k: number;
  n: number;
  transB: boolean;
  gflops: number;
  msPerMatmul: number;
  maxRelError: number;
}

async function checkSamples(s: Shape, a: Float32Array, b: Float32Array, bias: Float32Array | null, out: Tensor): Promise<number> {
  const got = await out.readF32();
  const pick = uniform(2 * SAMPLES, 99);
  let worst = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const m = Math.floor(((pick[2 * i]! + 1) / 2) * s.m);
    const n = Math.floor(((pick[2 * i + 1]! + 1) / 2) * s.n);
    let ref = bias ? bias[n]! : 0;
    let scale = Math.abs(ref);
    for (let k = 0; k < s.k; k++) {
      const term = a[m * s.k + k]! * b[s.transB ? n * s.k + k : k * s.n + n]!;
      ref += term;
      scale += Math.abs(term);
    }
    const rel = Math.abs(got[m * s.n + n]! - ref) / Math.max(scale, 1e-30);
    if (!(rel <= 1e-5)) throw new Error(`${s.name}: C[${m}, ${n}] = ${got[m * s.n + n]}, float64 reference ${ref}`);
    worst = Math.max(worst, rel);
  }
  return worst;
}

async function run(gpu: Gpu, s: Shape): Promise<Result> {
  const aData = uniform(s.m * s.k, 1);
  const bData = uniform(s.k * s.n, 2);
  const biasData = s.bias ? uniform(s.n, 3) : null;
  const a = tensor(gpu, aData, [s.m, s.k]);
  const b = tensor(gpu, bData, s.transB ? [s.n, s.k] : [s.k, s.n]);
  const bias = biasData ? tensor(gpu, biasData, [s.n]) : undefined;
  const once = () => matmul(a, b, { transB: s.transB, bias }).dispose();

  const first = matmul(a, b, { transB: s.transB, bias });
  const maxRelError = await checkSamples(s, aData, bData, biasData, first);
  first.dispose();

  // Size the batch of dispatches per timed iteration from one warm run.
  let t = performance.now();
  once();
  await gpu.sync();
  const reps = Math.max(1, Math.round(ITERATION_MS / Math.max(performance.now() - t, 0.01)));

  const bench = new Bench({ iterations: 5, time: 0, warmupIterations: 1, warmupTime: 0, throws: true });
  bench.add(s.name, async () => {
    for (let i = 0; i < reps; i++) once();
    await gpu.sync();
  });
  await bench.run();
  const ms = bench.tasks[0]!.result!.latency.mean / reps;
  a.dispose();
  b.dispose();
  bias?.dispose();
  return {
    shape: s.name,
    m: s.m,
    k: s.k,
    n: s.n,
    transB: s.transB ?? false,
    gflops: (2 * s.m * s.n * s.k) / (ms * 1e6),
    msPerMatmul: ms,
    maxRelError,
  };
}

const json = process.argv.includes('--json');
const gpu = await openGpu({ quiet: json });
const results: Result[] = [];
for (const s of SHAPES) {
  const r = await run(gpu, s);
  results.push(r);
  if (!json) console.log(`${r.shape.padEnd(36)} ${r.gflops.toFixed(2).padStart(9)} GFLOP/s  ${r.msPerMatmul.toFixed(3).padStart(9)} ms  (max rel err ${r.maxRelError.toExponential(1)})`);
}
if (json) console.log(JSON.stringify({ adapter: gpu.adapterName, results }, null, 2));
else console.log(`adapter: ${gpu.adapterName}`);
gpu.destroy();
