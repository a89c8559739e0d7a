// One Llama-style decoder block (Touvron et al. 2023, "LLaMA: Open and Efficient Foundation
// Language Models") written with the general tensor API only: pre-norm RMSNorm, rotary position
// embeddings (Su et al. 2021, the "rotate half" form of Hugging Face's Llama), causal multi-head
// attention, a SwiGLU feed-forward (Shazeer 2020) and two residual connections. No biases.
//
//   node --import tsx examples/llama-block.ts
//
// runs the block forward and backward on the inputs of test/fixtures/llama-block (made by
// scripts/llama-reference.py in float64 PyTorch) and prints how far the output and every
// gradient are from PyTorch's.
//
// Shapes: B batch, T positions, D model width, H heads of d = D / H, F feed-forward width.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  tensor,
  tidy,
  matmul,
  mul,
  add,
  neg,
  exp,
  cos,
  sin,
  silu,
  arange,
  narrow,
  cat,
  transpose,
  rmsNorm,
  scaledDotProductAttention,
  type Gpu,
  type Tensor,
} from '../src/index.ts';
import { openGpu } from '../src/node/index.ts';

export interface LlamaConfig {
  /** H */
  heads: number;
  /** ε inside RMSNorm's square root. */
  rmsEps: number;
  /** The base of RoPE's frequencies (10000 in Llama). */
  ropeBase: number;
}

/** The block's weights; matrices have nn.Linear's [out, in] layout. */
export interface LlamaBlockWeights {
  attnNorm: Tensor; // [D]
  qProj: Tensor; // [D, D]
  kProj: Tensor; // [D, D]
  vProj: Tensor; // [D, D]
  oProj: Tensor; // [D, D]
  mlpNorm: Tensor; // [D]
  gateProj: Tensor; // [F, D]
  upProj: Tensor; // [F, D]
  downProj: Tensor; // [D, F]
}

/** cos and sin of the rotary angles, each [T, d]. */
export interface RopeTables {
  cos: Tensor;
  sin: Tensor;
}

/** x [..., in] · Wᵀ with W [out, in] → [..., out]: nn.Linear without a bias. */
export function linear(x: Tensor, weight: Tensor): Tensor {
  return matmul(x, weight, { transB: true });
}

/**
 * The rotary tables for positions 0 … T−1 and a head of d columns: column j turns by
 * t · base^(−2·(j mod d/2)/d), the d/2 frequencies repeated over both halves of the head.
 */
export function ropeTables(gpu: Gpu, positions: number, headDim: number, base: number): RopeTables {
  const t = arange(gpu, positions).reshape([positions, 1]); // [T, 1]
  const invFreq = exp(mul(arange(gpu, 0, headDim, 2), -Math.log(base) / headDim)); // [d/2]
  const angles = mul(t, invFreq); // [T, d/2]
  const emb = cat([angles, angles], -1); // [T, d]
  return { cos: cos(emb), sin: sin(emb) };
}

/** [u₁, u₂] → [−u₂, u₁] over the last dim's halves: multiplying by i, pairing column j with j + d/2. */
export function rotateHalf(u: Tensor): Tensor {
  const half = u.shape.at(-1)! / 2;
  const u1 = narrow(u, -1, 0, half); // [..., d/2]
  const u2 = narrow(u, -1, half, half); // [..., d/2]
  return cat([neg(u2), u1], -1); // [..., d]
}

/** u [B, H, T, d] rotated position by position: u·cos + rotate_half(u)·sin. */
export function applyRope(u: Tensor, rope: RopeTables): Tensor {
  return add(mul(u, rope.cos), mul(rotateHalf(u), rope.sin));
}

/** [B, T, D] → [B, H, T, d]: head h owns columns h·d … h·d + d − 1. */
export function splitHeads(y: Tensor, heads: number): Tensor {
  const [B, T, D] = y.shape as [number, number, number];
  return transpose(y.reshape([B, T, heads, D / heads]), 1, 2);
}

/** [B, H, T, d] → [B, T, D], the inverse of splitHeads. */
export function mergeHeads(y: Tensor): Tensor {
  const [B, H, T, d] = y.shape as [number, number, number, number];
  return transpose(y, 1, 2).reshape([B, T, H * d]);
}

/** Causal multi-head self-attention with RoPE on q and k: x [B, T, D] → [B, T, D], before o_proj. */
export function selfAttention(x: Tensor, w: LlamaBlockWeights, rope: RopeTables, config: LlamaConfig): Tensor {
  const q = applyRope(splitHeads(linear(x, w.qProj), config.heads), rope); // [B, H, T, d]
  const k = applyRope(splitHeads(linear(x, w.kProj), config.heads), rope); // [B, H, T, d]
  const v = splitHeads(linear(x, w.vProj), config.heads); // [B, H, T, d]
  // softmax(q·kᵀ/√d + causal mask)·v
  return mergeHeads(scaledDotProductAttention(q, k, v, { causal: true })); // [B, T, D]
}

/** SwiGLU: (silu(x·Wgᵀ) ⊙ x·Wuᵀ)·Wdᵀ, x [B, T, D] → [B, T, D] through F hidden units. */
export function swiglu(x: Tensor, w: LlamaBlockWeights): Tensor {
  const gate = silu(linear(x, w.gateProj)); // [B, T, F]
  const up = linear(x, w.upProj); // [B, T, F]
  return linear(mul(gate, up), w.downProj); // [B, T, D]
}

/** The decoder block, pre-norm with residuals: x [B, T, D] → [B, T, D]. */
export function llamaBlock(x: Tensor, w: LlamaBlockWeights, rope: RopeTables, config: LlamaConfig): Tensor {
  const h = add(x, linear(selfAttention(rmsNorm(x, w.attnNorm, config.rmsEps), w, rope, config), w.oProj)); // [B, T, D]
  return add(h, swiglu(rmsNorm(h, w.mlpNorm, config.rmsEps), w)); // [B, T, D]
}

/** Each weight's name in test/fixtures/llama-block (PyTorch's snake case). */
export const FIXTURE_NAMES: Readonly<Record<keyof LlamaBlockWeights, string>> = {
  attnNorm: 'attn_norm',
  qProj: 'q_proj',
  kProj: 'k_proj',
  vProj: 'v_proj',
  oProj: 'o_proj',
  mlpNorm: 'mlp_norm',
  gateProj: 'gate_proj',
  upProj: 'up_proj',
  downProj: 'down_proj',
};

export interface LlamaFixture {
  config: { batch: number; seq: number; dim: number; heads: number; head_dim: number; hidden: number; rms_eps: number; rope_base: number };
  tensors: Record<string, { shape: number[]; data: number[] }>;
}

export function readFixture(path: string | URL = new URL('../test/fixtures/llama-block/block.json', import.meta.url)): LlamaFixture {
  return JSON.parse(readFileSync(path, 'utf8')) as LlamaFixture;
}

/** The block's output, its RoPE tables and the gradient of x and of every weight, read back to the host. */
export interface BlockRun {
  output: Float32Array;
  ropeCos: Float32Array;
  ropeSin: Float32Array;
  gradX: Float32Array;
  gradWeights: Record<keyof LlamaBlockWeights, Float32Array>;
}

/** Runs the block on the fixture's x and weights and backpropagates the fixture's output_grad. */
export async function runFixture(gpu: Gpu, fixture: LlamaFixture): Promise<BlockRun> {
  const load = (name: string, requiresGrad = false) => {
    const entry = fixture.tensors[name];
    if (!entry) throw new Error(`llama-block fixture: no tensor "${name}"`);
    return tensor(gpu, entry.data, entry.shape, { requiresGrad, label: name });
  };
  const c = fixture.config;
  const config: LlamaConfig = { heads: c.heads, rmsEps: c.rms_eps, ropeBase: c.rope_base };
  const names = Object.keys(FIXTURE_NAMES) as (keyof LlamaBlockWeights)[];
  const x = load('x', true);
  const weights = Object.fromEntries(names.map((n) => [n, load(FIXTURE_NAMES[n], true)])) as unknown as LlamaBlockWeights;
  const outputGrad = load('output_grad');
  try {
    const { output, rope } = tidy(() => {
      const rope = ropeTables(gpu, c.seq, c.head_dim, config.ropeBase);
      const output = llamaBlock(x, weights, rope, config);
      output.backward(outputGrad); // L = sum(output · output_grad)
      return { output, rope };
    });
    const read = (t: Tensor | null, what: string) => {
      if (!t) throw new Error(`llama-block: ${what} got no gradient`);
      return t.readF32();
    };
    const gradWeights = {} as Record<keyof LlamaBlockWeights, Float32Array>;
    for (const n of names) gradWeights[n] = await read(weights[n].grad, n);
    const run = {
      output: await output.readF32(),
      ropeCos: await rope.cos.readF32(),
      ropeSin: await rope.sin.readF32(),
      gradX: await read(x.grad, 'x'),
      gradWeights,
    };
    for (const t of [output, rope.cos, rope.sin]) t.dispose();
    return run;
  } finally {
    for (const t of [x, outputGrad, ...Object.values(weights)]) t.dispose();
  }
}

function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < expected.length; i++) m = Math.max(m, Math.abs(actual[i]! - expected[i]!));
  return m;
}

async function main(): Promise<void> {
  const gpu = await openGpu();
  const fixture = readFixture();
  const started = performance.now();
  const run = await runFixture(gpu, fixture);
  console.error(`forward and backward in ${((performance.now() - started) / 1000).toFixed(2)} s on ${gpu.adapterName}`);
  const rows: [string, ArrayLike<number>, string][] = [
    ['output', run.output, 'output'],
    ['dL/dx', run.gradX, 'grad_x'],
    ...(Object.keys(FIXTURE_NAMES) as (keyof LlamaBlockWeights)[]).map((n): [string, ArrayLike<number>, string] => [`dL/d${FIXTURE_NAMES[n]}`, run.gradWeights[n], `grad_${FIXTURE_NAMES[n]}`]),
  ];
  console.log('max |engine (f32) − PyTorch (f64)|:');
  for (const [label, actual, name] of rows) console.log(`  ${label.padEnd(14)} ${maxAbsDiff(actual, fixture.tensors[name]!.data).toExponential(2)}`);
  gpu.destroy();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
