// Attention at GPT-2 small's head shape (12 heads, D = 64):
//   prompt: 32 examples, 5 new tokens over a past of 128 / 512 / 1000 positions (forward, and
//           the backward to qkv that prompt training runs);
//   encode: 8 texts of 128 tokens, no past (the frozen pass that builds the past).
//   node --import tsx bench/attention.ts        (ATTN_BENCH_REPS=n ops per sample, default 4)
// GB/s counts the past k and v each op must read at least once (the new tokens are negligible
// next to them); GFLOP/s counts 4·D flops per visible (query, key) pair forward (q·k and p·v),
// 8·D backward.
import { Bench } from 'tinybench';
import { openGpu } from '../src/node/device.js';
import { tensor, tidy, noGrad, keep } from '../src/engine/tensor.js';
import { attention, type Past } from '../src/ops/attention.js';
import { randn } from '../test/helpers.js';

const H = 12;
const D = 64;
const C = H * D;
const REPS = Number(process.env.ATTN_BENCH_REPS ?? 4);

const gpu = await openGpu();
console.log(`device: ${gpu.adapterName}`);

interface Case {
  name: string;
  bytes: number;
  flops: number;
  run: () => void;
}

function promptCases(B: number, Tp: number, T: number): Case[] {
  const qkv = keep(tensor(gpu, randn(B * T * 3 * C, 1), [B, T, 3 * C], { requiresGrad: true }));
  const past: Past = {
    k: keep(tensor(gpu, randn(B * H * Tp * D, 2), [B, H, Tp, D])),
    v: keep(tensor(gpu, randn(B * H * Tp * D, 3), [B, H, Tp, D])),
    lengths: new Uint32Array(B).fill(Tp),
  };
  const gout = keep(tensor(gpu, randn(B * T * C, 4), [B, T, C]));
  const out = keep(attention(qkv, H, { past }));
  const pairs = B * H * T * (Tp + (T + 1) / 2);
  const pastBytes = 2 * B * H * Tp * D * 4;
  const shape = `B${B} Tp${Tp} T${T}`;
  return [
    { name: `prompt forward ${shape}`, bytes: pastBytes, flops: 4 * D * pairs, run: () => void noGrad(() => attention(qkv, H, { past })) },
    { name: `prompt backward ${shape}`, bytes: pastBytes, flops: 8 * D * pairs, run: () => void out.node!.backward(gout, [true]) },
  ];
}

function encodeCase(B: number, T: number): Case {
  const qkv = keep(tensor(gpu, randn(B * T * 3 * C, 5), [B, T, 3 * C]));
  const pairs = (B * H * T * (T + 1)) / 2;
  return { name: `encode forward B${B} T${T}`, bytes: 0, flops: 4 * D * pairs, run: () => void attention(qkv, H) };
}

const all = [...[128, 512, 1000].flatMap((Tp) => promptCases(32, Tp, 5)), encodeCase(8, 128)];
const bench = new Bench({ name: 'attention', time: 1000, iterations: 3, warmupIterations: 1, warmupTime: 0 });
for (const c of all) {
  bench.add(c.name, async () => {
    tidy(() => {
      for (let i = 0; i < REPS; i++) c.run();
    });
    await gpu.sync();
  });
}
await bench.run();

console.table(
  all.map((c) => {
    const task = bench.getTask(c.name)!;
    const msPerOp = task.result!.latency.mean / REPS;
    return {
      op: c.name,
      'ms/op': +msPerOp.toFixed(3),
      'GB/s': c.bytes ? +(c.bytes / (msPerOp / 1000) / 1e9).toFixed(2) : '',
      'GFLOP/s': +(c.flops / (msPerOp / 1000) / 1e9).toFixed(2),
      samples: task.result!.latency.samples.length,
    };
  }),
);
gpu.destroy();
