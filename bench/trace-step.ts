// One GPT-2 prompt + head training step, profiled: where its time goes, kernel by kernel and by
// family, with each kernel's share of the adapter's measured peaks (bench/peak.ts), and the
// cost of profiling (the step's median time with and without the profiler, side by side).
//
//   node --import tsx bench/trace-step.ts [--layers 12] [--batch 8] [--past 128] [--steps 5]
//        [--out DIR] [--peak] [--overhead]
//
// Writes DIR/prompt-step.trace.json (Perfetto, chrome://tracing; scripts/trace-svg.ts draws it)
// and DIR/prompt-step.summary.txt. GPT-2 small's shape with random weights (bench/pipeline.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openGpu } from '../src/node/device.ts';
import { profile, type KernelTotal, type Profile } from '../src/tensor/profile.ts';
import { encode, disposePast } from '../src/prompt/train.ts';
import { GPT2_EOS_ID } from '../src/gpt2/tokenizer.ts';
import { seededRandom } from '../src/util/random.ts';
import { promptTrainer, randomModel } from './pipeline.ts';
import { measurePeak, type Peak } from './peak.ts';
import { median } from './overhead.ts';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const layers = flag('--layers', 12);
const batch = flag('--batch', 8);
const width = flag('--past', 128);
const steps = flag('--steps', 5);
const outAt = process.argv.indexOf('--out');
const outDir = outAt < 0 ? 'bench/results/traces' : process.argv[outAt + 1]!;

const gpu = await openGpu();
const bench = randomModel(gpu, layers);
const random = seededRandom(1);
const ids = new Uint32Array(batch * width).map(() => Math.floor(random() * GPT2_EOS_ID));
const past = encode(bench.model, { ids, lengths: new Uint32Array(batch).fill(width), width });
const trainer = promptTrainer(bench, past);
const step = async () => {
  const loss = trainer.encodeStep();
  const value = (await loss.readF32())[0]!;
  loss.dispose();
  if (!Number.isFinite(value)) throw new Error(`loss is ${value}`);
};
// Warm-up: kernels compiled, pools filled.
await step();
await step();

/** Median wall ms of `steps` steps, each started with the GPU idle; with `profiled`, each inside profile(). */
async function stepMs(profiled: boolean): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    await gpu.sync();
    if (profiled) {
      const p = await profile(gpu, step);
      times.push(p.end - p.start);
    } else {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
  }
  return median(times);
}

const p: Profile<void> = await profile(gpu, step);
const peak: Peak | null = process.argv.includes('--peak') ? await measurePeak(gpu, { targetMs: 200, samples: 5, copyBytes: 256 * 2 ** 20 }) : null;

const pct = (value: number | null, of: number | undefined) => (value === null || !of ? '-' : `${((100 * value) / of).toFixed(1)}%`);
const table = (title: string, totals: KernelTotal[], top: number) => [
  title,
  `${'name'.padEnd(36)} ${'calls'.padStart(6)} ${'GPU ms'.padStart(10)} ${'share'.padStart(7)} ${'GB/s'.padStart(8)} ${'%peak BW'.padStart(9)} ${'GFLOP/s'.padStart(9)} ${'%peak FLOP'.padStart(10)}`,
  ...totals.slice(0, top).map(
    (t) =>
      `${t.name.padEnd(36)} ${String(t.calls).padStart(6)} ${t.gpuMs.toFixed(3).padStart(10)} ${(100 * t.share).toFixed(1).padStart(6)}% ${t.gbps.toFixed(2).padStart(8)} ${pct(t.gbps, peak?.bandwidthGBps).padStart(9)} ${(t.gflops === null ? '-' : t.gflops.toFixed(2)).padStart(9)} ${pct(t.gflops, peak?.fmaGflops).padStart(10)}`,
  ),
];
const lines = [
  `GPT-2 prompt + head step: ${bench.description}, batch ${batch}, past ${width}; ${gpu.adapterName}`,
  p.summary(0).split('\n')[0]!,
  ...(peak ? [`measured peaks: ${peak.bandwidthGBps.toFixed(1)} GB/s, ${peak.fmaGflops.toFixed(1)} GFLOP/s (bench/peak.ts)`] : []),
  '',
  ...table('by family', p.totals('family'), 30),
  '',
  ...table('by kernel', p.totals('kernel'), 25),
];
if (process.argv.includes('--overhead')) {
  // Interleaved, so both see the machine's same moments.
  const plain: number[] = [];
  const profiled: number[] = [];
  for (let round = 0; round < 3; round++) {
    plain.push(await stepMs(false));
    profiled.push(await stepMs(true));
  }
  const [a, b] = [median(plain), median(profiled)];
  lines.push('', `profiling overhead (${p.timing}): step ${a.toFixed(1)} ms plain, ${b.toFixed(1)} ms profiled (${(100 * (b / a - 1)).toFixed(1)}%), medians of 3×${steps} interleaved`);
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'prompt-step.trace.json'), p.toChromeTrace());
writeFileSync(join(outDir, 'prompt-step.summary.txt'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
console.log(`\nwrote ${join(outDir, 'prompt-step.trace.json')} and prompt-step.summary.txt`);
trainer.dispose();
disposePast(past);
process.exit(0);
