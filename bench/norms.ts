// Memory bandwidth of the layerNorm and gelu kernels over GPT-2-sized activations [B·T, 768].
//   node --import tsx bench/norms.ts
// GB/s counts the bytes each op must move at least once: its [B·T, 768] inputs read and
// outputs written (gamma, beta and the per-row statistics are negligible). Each sample
// encodes REPS ops and waits for them, so the per-sync latency is amortised; "encode µs"
// is the CPU time to encode one op: when it approaches the per-op time, the op is bound by
// the host, not by the kernel.
import { Bench } from 'tinybench';
import { openGpu } from '../src/node/device.js';
import { tensor, tidy, noGrad, keep, type Tensor } from '../src/engine/tensor.js';
import { layerNorm } from '../src/ops/layernorm.js';
import { gelu } from '../src/ops/gelu.js';
import { randn } from '../test/helpers.js';

const C = 768;
const REPS = 10;
const ROWS = [1024, 4096];

const gpu = await openGpu();
console.log(`device: ${gpu.adapterName}`);

interface Case {
  name: string;
  /** Bytes read and written by one op. */
  bytes: number;
  run: () => void;
}

function cases(rows: number): Case[] {
  const n = rows * C;
  const x = keep(tensor(gpu, randn(n, 1), [rows, C]));
  const dy = keep(tensor(gpu, randn(n, 2), [rows, C]));
  const gamma = keep(tensor(gpu, randn(C, 3), [C]));
  const beta = keep(tensor(gpu, randn(C, 4), [C]));
  // Backward passes run from a recorded node, so only the gradient kernel is timed (frozen gamma/beta, as in prompt tuning).
  const xg = keep(tensor(gpu, randn(n, 1), [rows, C], { requiresGrad: true }));
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

const table = all.map((c) => {
  const task = bench.getTask(c.name)!;
  const msPerOp = task.result!.latency.mean / REPS;
  return {
    op: c.name,
    'µs/op': +(msPerOp * 1000).toFixed(1),
    'encode µs/op': +encodeMicros.get(c.name)!.toFixed(1),
    'GB/s': +(c.bytes / (msPerOp / 1000) / 1e9).toFixed(2),
    samples: task.result!.latency.samples.length,
  };
});
console.table(table);
gpu.destroy();
