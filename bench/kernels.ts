// Attention (with a KV cache) and layerNorm/GELU throughput at GPT-2 small's shapes. Each case
// is checked against a float64 reference before it is timed.
import type { Gpu } from '../src/gpu/context.ts';
import { tensor, keep, noGrad, type Tensor } from '../src/tensor/tensor.ts';
import { attention, type Past } from '../src/ops/attention.ts';
import { layerNorm } from '../src/ops/layernorm.ts';
import { gelu, GELU_TANH } from '../src/ops/gelu.ts';
import { seededRandom } from '../src/util/random.ts';
import { timeEngineOp, kernelMs, type TimingOptions } from './timing.ts';

export interface KernelResult {
  name: string;
  /** Median wall time per op, submission to completion. */
  ms: number;
  /** Bytes the op must move at least once, over `ms`. */
  gbps: number;
  gflops: number | null;
  /** The same bytes over the kernels' own GPU time (timestamp queries), where available. */
  kernelGbps: number | null;
  maxAbsError: number;
  rme: number;
}

/** Unit-variance values, uniform in ±√3 (cheap for the tens of millions a long past needs). */
function uniformValues(n: number, seed: number, scale = 1): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(n);
  const width = 2 * Math.sqrt(3) * scale;
  for (let i = 0; i < n; i++) out[i] = (random() - 0.5) * width;
  return out;
}

/** The absolute error of one element, or a throw when it is outside atol + rtol·|want|. */
function checked(name: string, index: number, got: number, want: number, atol: number, rtol: number): number {
  const err = Math.abs(got - want);
  if (!(err <= atol + rtol * Math.abs(want))) throw new Error(`${name}: element ${index} is ${got}, float64 reference ${want}`);
  return err;
}

/** The largest absolute error of got against want(i) over every element. */
function compareAll(name: string, got: Float32Array, want: (i: number) => number, atol: number, rtol: number): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, checked(name, i, got[i]!, want(i), atol, rtol));
  return worst;
}

const H = 12;
const D = 64;
const C = H * D;

/**
 * Float64 attention of the T new queries of head h of example b over its past and the causal
 * new keys, with the gradients of Σ out·gout: returns out, dq, dk, dv as [T][D].
 */
function attentionReference(qkv: Float32Array, pk: Float32Array, pv: Float32Array, gout: Float32Array, b: number, h: number, T: number, Tp: number) {
  const scale = 1 / Math.sqrt(D);
  const q = (t: number, d: number) => qkv[(b * T + t) * 3 * C + h * D + d]!;
  const key = (j: number, d: number) => (j < Tp ? pk[((b * H + h) * Tp + j) * D + d]! : qkv[(b * T + j - Tp) * 3 * C + C + h * D + d]!);
  const val = (j: number, d: number) => (j < Tp ? pv[((b * H + h) * Tp + j) * D + d]! : qkv[(b * T + j - Tp) * 3 * C + 2 * C + h * D + d]!);
  const g = (t: number, d: number) => gout[(b * T + t) * C + h * D + d]!;
  const zeros = () => Array.from({ length: T }, () => new Float64Array(D));
  const out = zeros();
  const dq = zeros();
  const dk = zeros();
  const dv = zeros();
  for (let t = 0; t < T; t++) {
    const n = Tp + t + 1;
    const p = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += q(t, d) * key(j, d);
      p[j] = s * scale;
    }
    const max = Math.max(...p);
    let z = 0;
    for (let j = 0; j < n; j++) z += p[j] = Math.exp(p[j]! - max);
    const dp = new Float64Array(n);
    let pdp = 0;
    for (let j = 0; j < n; j++) {
      p[j]! /= z;
      let s = 0;
      for (let d = 0; d < D; d++) {
        out[t]![d]! += p[j]! * val(j, d);
        s += g(t, d) * val(j, d);
      }
      dp[j] = s;
      pdp += p[j]! * s;
    }
    for (let j = 0; j < n; j++) {
      const ds = p[j]! * (dp[j]! - pdp) * scale;
      for (let d = 0; d < D; d++) {
        dq[t]![d]! += ds * key(j, d);
        if (j >= Tp) {
          dk[j - Tp]![d]! += ds * q(t, d);
          dv[j - Tp]![d]! += p[j]! * g(t, d);
        }
      }
    }
  }
  return { out, dq, dk, dv };
}

async function attentionCases(gpu: Gpu, Tp: number, timing: TimingOptions): Promise<KernelResult[]> {
  const B = 32;
  const T = 5;
  const qkvHost = uniformValues(B * T * 3 * C, 1);
  const pkHost = uniformValues(B * H * Tp * D, 2);
  const pvHost = uniformValues(B * H * Tp * D, 3);
  const goutHost = uniformValues(B * T * C, 4);
  const qkv = keep(tensor(gpu, qkvHost, [B, T, 3 * C], { requiresGrad: true }));
  const past: Past = {
    k: keep(tensor(gpu, pkHost, [B, H, Tp, D])),
    v: keep(tensor(gpu, pvHost, [B, H, Tp, D])),
    lengths: new Uint32Array(B).fill(Tp),
  };
  const gout = keep(tensor(gpu, goutHost, [B, T, C]));
  const out = keep(attention(qkv, H, { past }));
  const [grad] = out.node!.backward!(gout, [true]);
  const [outValues, gradValues] = await Promise.all([out.readF32(), grad!.readF32()]);
  grad!.dispose();

  let fwdError = 0;
  let bwdError = 0;
  for (const [b, h] of [[0, 0], [B - 1, H - 1], [7, 5], [19, 10]] as const) {
    const ref = attentionReference(qkvHost, pkHost, pvHost, goutHost, b, h, T, Tp);
    // Worst error of the [T][D] reference `want` against got[base(t) + d].
    const check = (name: string, got: Float32Array, want: Float64Array[], base: (t: number) => number) => {
      let worst = 0;
      for (let t = 0; t < T; t++) {
        for (let d = 0; d < D; d++) {
          const i = base(t) + d;
          worst = Math.max(worst, checked(`attention ${name} Tp${Tp} b${b} h${h}`, i, got[i]!, want[t]![d]!, 1e-4, 1e-4));
        }
      }
      return worst;
    };
    const row = (t: number) => (b * T + t) * 3 * C;
    fwdError = Math.max(fwdError, check('forward', outValues, ref.out, (t) => (b * T + t) * C + h * D));
    bwdError = Math.max(
      bwdError,
      check('dq', gradValues, ref.dq, (t) => row(t) + h * D),
      check('dk', gradValues, ref.dk, (t) => row(t) + C + h * D),
      check('dv', gradValues, ref.dv, (t) => row(t) + 2 * C + h * D),
    );
  }

  // The past's keys and values dominate the bytes; GFLOP/s counts 4·D flops per visible
  // (query, key) pair forward (q·k and p·v) and 8·D backward.
  const bytes = 2 * B * H * Tp * D * 4;
  const pairs = B * H * T * (Tp + (T + 1) / 2);
  const cases = [
    { name: `attention fwd B${B} H${H} Tp${Tp} T${T}`, flops: 4 * D * pairs, error: fwdError, run: () => void noGrad(() => attention(qkv, H, { past })) },
    { name: `attention bwd B${B} H${H} Tp${Tp} T${T}`, flops: 8 * D * pairs, error: bwdError, run: () => void out.node!.backward!(gout, [true]) },
  ];
  const results: KernelResult[] = [];
  for (const c of cases) {
    const t = await timeEngineOp(gpu, c.run, timing);
    const kernel = await kernelMs(gpu, c.run);
    results.push({
      name: c.name,
      ms: t.ms,
      gbps: bytes / t.ms / 1e6,
      gflops: c.flops / t.ms / 1e6,
      kernelGbps: kernel ? bytes / kernel / 1e6 : null,
      maxAbsError: c.error,
      rme: t.rme,
    });
  }
  for (const x of [qkv, past.k, past.v, gout, out]) x.dispose();
  return results;
}

export async function attentionBench(gpu: Gpu, pasts: readonly number[], timing: TimingOptions): Promise<KernelResult[]> {
  const results: KernelResult[] = [];
  for (const Tp of pasts) results.push(...(await attentionCases(gpu, Tp, timing)));
  return results;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const geluRef = (x: number) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)));
function geluGradRef(x: number): number {
  const th = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
}

/** Float64 layer norm of every row, with dx for the output gradient dy (γ, β frozen). */
function layerNormReference(x: Float32Array, gamma: Float32Array, beta: Float32Array, dy: Float32Array, rows: number): { y: Float64Array; dx: Float64Array } {
  const y = new Float64Array(rows * C);
  const dx = new Float64Array(rows * C);
  const xhat = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[o + c]!;
    mean /= C;
    let variance = 0;
    for (let c = 0; c < C; c++) variance += (x[o + c]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(variance / C + 1e-5);
    let meanG = 0;
    let meanGX = 0;
    for (let c = 0; c < C; c++) {
      xhat[c] = (x[o + c]! - mean) * rstd;
      y[o + c] = xhat[c]! * gamma[c]! + beta[c]!;
      const gx = dy[o + c]! * gamma[c]!;
      meanG += gx / C;
      meanGX += (gx * xhat[c]!) / C;
    }
    for (let c = 0; c < C; c++) dx[o + c] = rstd * (dy[o + c]! * gamma[c]! - meanG - xhat[c]! * meanGX);
  }
  return { y, dx };
}

async function normCases(gpu: Gpu, rows: number, timing: TimingOptions): Promise<KernelResult[]> {
  const n = rows * C;
  // Activations of the scale GPT-2's pre-norm residual stream and MLP pre-activations reach.
  const xHost = uniformValues(n, 11, 2);
  const dyHost = uniformValues(n, 12);
  const gammaHost = uniformValues(C, 13, 0.2).map((v) => 1 + v);
  const betaHost = uniformValues(C, 14, 0.2);
  const x = keep(tensor(gpu, xHost, [rows, C], { requiresGrad: true }));
  const dy = keep(tensor(gpu, dyHost, [rows, C]));
  const gamma = keep(tensor(gpu, gammaHost, [C]));
  const beta = keep(tensor(gpu, betaHost, [C]));
  const ln = keep(layerNorm(x, gamma, beta));
  const act = keep(gelu(x, GELU_TANH));
  const lnBackward = () => ln.node!.backward!(dy, [true, false, false])[0]!;
  const geluBackward = () => act.node!.backward!(dy, [true])[0]!;

  const ref = layerNormReference(xHost, gammaHost, betaHost, dyHost, rows);
  const read = async (t: Tensor) => {
    const values = await t.readF32();
    t.dispose();
    return values;
  };
  const errors = [
    compareAll(`layerNorm forward [${rows}, ${C}]`, await ln.readF32(), (i) => ref.y[i]!, 1e-4, 1e-4),
    compareAll(`layerNorm backward [${rows}, ${C}]`, await read(noGrad(lnBackward)), (i) => ref.dx[i]!, 1e-4, 1e-4),
    compareAll(`gelu forward [${rows}, ${C}]`, await act.readF32(), (i) => geluRef(xHost[i]!), 1e-5, 1e-5),
    compareAll(`gelu backward [${rows}, ${C}]`, await read(noGrad(geluBackward)), (i) => geluGradRef(xHost[i]!) * dyHost[i]!, 1e-5, 1e-5),
  ];

  // Bytes each op must move at least once: its [rows, C] inputs read and outputs written.
  const shape = `[${rows}, ${C}]`;
  const cases = [
    { name: `layerNorm fwd ${shape}`, bytes: 2 * n * 4, run: () => void noGrad(() => layerNorm(x, gamma, beta)) },
    { name: `layerNorm bwd dx ${shape}`, bytes: 3 * n * 4, run: () => void noGrad(lnBackward) },
    { name: `gelu fwd ${shape}`, bytes: 2 * n * 4, run: () => void noGrad(() => gelu(x, GELU_TANH)) },
    { name: `gelu bwd ${shape}`, bytes: 3 * n * 4, run: () => void noGrad(geluBackward) },
  ];
  const results: KernelResult[] = [];
  for (const [i, c] of cases.entries()) {
    const t = await timeEngineOp(gpu, c.run, timing);
    const kernel = await kernelMs(gpu, c.run);
    results.push({ name: c.name, ms: t.ms, gbps: c.bytes / t.ms / 1e6, gflops: null, kernelGbps: kernel ? c.bytes / kernel / 1e6 : null, maxAbsError: errors[i]!, rme: t.rme });
  }
  for (const t of [x, dy, gamma, beta, ln, act]) t.dispose();
  return results;
}

export async function normsBench(gpu: Gpu, rowCounts: readonly number[], timing: TimingOptions): Promise<KernelResult[]> {
  const results: KernelResult[] = [];
  for (const rows of rowCounts) results.push(...(await normCases(gpu, rows, timing)));
  return results;
}
