// Matmul throughput at GPT-2 shapes: the kernel the engine chooses, the previous kernel of this
// adapter's class (the register-blocked family) side by side, and on GPU-class adapters (or
// with --sweep) every tile and K split of the tiled kernel, so the choice can be tuned there.
// Every variant's sampled outputs are checked against float64 before it is timed.
//   node --import tsx bench/matmul.ts [--json] [--sweep] [--quick]
// --quick multiplies 256 rows instead of 1024 (same K and N), with shorter samples.
import { openGpu } from '../src/node/device.ts';
import { tensor, type Tensor } from '../src/tensor/tensor.ts';
import { matmul, type MatmulKernel, type MatmulTile } from '../src/ops/matmul.ts';
import type { Gpu } from '../src/gpu/context.ts';
import { timeEngineOp, type TimingOptions } from './timing.ts';

interface Shape {
  name: string;
  m: number;
  k: number;
  n: number;
  transB?: boolean;
  bias?: boolean;
}

const MATMUL_SHAPES: Shape[] = [
  { name: 'qkv [1024,768]×[768,2304]+b', m: 1024, k: 768, n: 2304, bias: true },
  { name: 'mlp up [1024,768]×[768,3072]+b', m: 1024, k: 768, n: 3072, bias: true },
  { name: 'mlp down [1024,3072]×[3072,768]+b', m: 1024, k: 3072, n: 768, bias: true },
  { name: '1024³', m: 1024, k: 1024, n: 1024 },
  // Backward through a frozen Conv1D: dX = dY·Wᵀ.
  { name: 'dX [1024,2304]×[768,2304]ᵀ', m: 1024, k: 2304, n: 768, transB: true },
];

const SAMPLES = 64;
const quick = process.argv.includes('--quick');
const TIMING: TimingOptions = quick ? { targetMs: 100, samples: 2 } : { targetMs: 300, samples: 5 };
/** The sweep times many variants: shorter samples, fewer of them. */
const SWEEP_TIMING: TimingOptions = quick ? { targetMs: 50, samples: 2 } : { targetMs: 100, samples: 3 };
const SWEEP_TILES: MatmulTile[] = ['128x128', '128x64', '64x64'];
const SWEEP_SPLITS = [1, 2, 3, 4];

function uniform(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export interface VariantResult {
  /** The kernels dispatched, e.g. "mm_tiled[tile_8x4] + mm_split_sum". */
  kernel: string;
  gflops: number;
  msPerMatmul: number;
  maxRelError: number;
}

export interface MatmulResult extends VariantResult {
  shape: string;
  m: number;
  k: number;
  n: number;
  transB: boolean;
  /** The register-blocked kernel this adapter's class ran before the tiled family. */
  previous: VariantResult;
  /** Every tile and split of the tiled kernel (GPU-class adapters, or --sweep). */
  sweep: (VariantResult & { tile: MatmulTile; splits: number })[];
}

interface Operands {
  s: Shape;
  aData: Float32Array;
  bData: Float32Array;
  biasData: Float32Array | null;
  a: Tensor;
  b: Tensor;
  bias?: Tensor;
}

async function checkSamples({ s, aData, bData, biasData }: Operands, out: Tensor): Promise<number> {
  const got = await out.readF32();
  const pick = uniform(2 * SAMPLES, 99);
  let worst = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const m = Math.floor(((pick[2 * i]! + 1) / 2) * s.m);
    const n = Math.floor(((pick[2 * i + 1]! + 1) / 2) * s.n);
    let ref = biasData ? biasData[n]! : 0;
    let scale = Math.abs(ref);
    for (let k = 0; k < s.k; k++) {
      const term = aData[m * s.k + k]! * bData[s.transB ? n * s.k + k : k * s.n + n]!;
      ref += term;
      scale += Math.abs(term);
    }
    const rel = Math.abs(got[m * s.n + n]! - ref) / Math.max(scale, 1e-30);
    if (!(rel <= 1e-5)) throw new Error(`${s.name}: C[${m}, ${n}] = ${got[m * s.n + n]}, float64 reference ${ref}`);
    worst = Math.max(worst, rel);
  }
  return worst;
}

/** The kernels one call of `run` dispatches. */
function kernelsOf(gpu: Gpu, run: () => Tensor): string {
  const names: string[] = [];
  const dispatch = gpu.dispatch;
  gpu.dispatch = (d) => {
    names.push(`${d.entry}${d.flags?.length ? `[${d.flags.join(',')}]` : ''}`);
    dispatch.call(gpu, d);
  };
  try {
    run().dispose();
  } finally {
    gpu.dispatch = dispatch;
  }
  return names.join(' + ');
}

async function variant(gpu: Gpu, ops: Operands, kernel: MatmulKernel | undefined, timing: TimingOptions): Promise<VariantResult> {
  const { s, a, b, bias } = ops;
  const once = () => matmul(a, b, { transB: s.transB, bias, kernel });
  const name = kernelsOf(gpu, once);
  const first = once();
  const maxRelError = await checkSamples(ops, first);
  first.dispose();
  // Each rep's result is freed at once (a tidy keeps what its function returns).
  const t = await timeEngineOp(gpu, () => void once(), timing);
  return { kernel: name, gflops: (2 * s.m * s.n * s.k) / (t.ms * 1e6), msPerMatmul: t.ms, maxRelError };
}

async function run(gpu: Gpu, s: Shape, sweep: boolean): Promise<MatmulResult> {
  const aData = uniform(s.m * s.k, 1);
  const bData = uniform(s.k * s.n, 2);
  const biasData = s.bias ? uniform(s.n, 3) : null;
  const ops: Operands = {
    s,
    aData,
    bData,
    biasData,
    a: tensor(gpu, aData, [s.m, s.k]),
    b: tensor(gpu, bData, s.transB ? [s.n, s.k] : [s.k, s.n]),
    bias: biasData ? tensor(gpu, biasData, [s.n]) : undefined,
  };
  const chosen = await variant(gpu, ops, undefined, TIMING);
  // On a CPU-class adapter the chosen kernel is the previous one: timed once.
  const previous = chosen.kernel.startsWith('mm_tiled') ? await variant(gpu, ops, { tile: 'register' }, TIMING) : chosen;
  const swept: MatmulResult['sweep'] = [];
  if (sweep) {
    for (const tile of SWEEP_TILES) {
      for (const splits of SWEEP_SPLITS) swept.push({ ...(await variant(gpu, ops, { tile, splits }, SWEEP_TIMING)), tile, splits });
    }
  }
  ops.a.dispose();
  ops.b.dispose();
  ops.bias?.dispose();
  return { shape: s.name, m: s.m, k: s.k, n: s.n, transB: s.transB ?? false, ...chosen, previous, sweep: swept };
}

const json = process.argv.includes('--json');
const gpu = await openGpu({ quiet: json });
const sweep = process.argv.includes('--sweep') || gpu.kernelClass === 'gpu';
const results: MatmulResult[] = [];
for (const s of MATMUL_SHAPES) {
  const r = await run(gpu, quick ? { ...s, m: s.m / 4, name: `${s.name} at 256 rows` } : s, sweep);
  results.push(r);
  if (!json) {
    const line = (label: string, v: VariantResult) =>
      console.log(`${label.padEnd(36)} ${v.gflops.toFixed(2).padStart(9)} GFLOP/s  ${v.msPerMatmul.toFixed(3).padStart(9)} ms  ${v.kernel}  (max rel err ${v.maxRelError.toExponential(1)})`);
    line(r.shape, r);
    if (r.previous !== r) line('  previous kernel', r.previous);
    for (const v of r.sweep) line(`  tiled ${v.tile}, K in ${v.splits}`, v);
  }
}
if (json) console.log(JSON.stringify({ adapter: gpu.adapterName, kernelClass: gpu.kernelClass, results }, null, 2));
else console.log(`adapter: ${gpu.adapterName} (kernel class ${gpu.kernelClass})`);
gpu.destroy();
