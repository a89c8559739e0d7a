// The benchmark suite: kernel throughput at GPT-2 small's shapes against the adapter's measured
// peaks, TensorFlow.js's WebGPU backend as a peer for matmul, the method's pipeline, and the
// epoch time saved by caching pasts, and the host cost of launching work (per op against
// Dawn's own floor and tfjs, per training step), pretraining updates (tokens/s), the general
// ops and layers (nn: forward + backward) against tfjs, and `serve` under HTTP load (requests/s, latency, batching). Prints tables
// and writes bench/results/<adapter>.json.
//   npm run bench [-- --quick] [-- --only matmul,attention,norms,pipeline,epoch,pretrain,peer,peak,overhead,ops,nn,serve] [-- --imdb PATH] [-- --trace DIR]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openGpu } from '../src/node/device.ts';
import { profile } from '../src/tensor/profile.ts';
import { measurePeak, type Peak } from './peak.ts';
import { attentionBench, normsBench, type KernelResult } from './kernels.ts';
import { tfjsMatmul, tfjsHostCost, closeTfjs, TFJS_ADD, TFJS_HOST_ADD, type PeerShape } from './peers/tfjs.ts';
import { dawnFloor, engineOps, measureInTurn, promptStep, dawnOf, DAWN_REUSED, DAWN_FRESH, type OverheadOptions } from './overhead.ts';
import { randomModel, pipelineBench, epochBench, imdbLengths, type BenchModel, type EpochOptions } from './pipeline.ts';
import { pretrainBench, type PretrainShape } from './pretrain.ts';
import { opsBench, type OpsOptions } from './ops.ts';
import { nnBench, type NnOptions } from './nn.ts';
import type { TimingOptions } from './timing.ts';
import type { MatmulResult } from './matmul.ts';
import { serveBench, type ServeBenchOptions } from './serve.ts';

const SECTIONS = ['peak', 'matmul', 'peer', 'attention', 'norms', 'features', 'overhead', 'pipeline', 'epoch', 'pretrain', 'ops', 'nn', 'serve'] as const;
type Section = (typeof SECTIONS)[number];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(root, 'bench', 'results');

function parseArgs(argv: string[]): { quick: boolean; only: Set<Section>; imdb: string; trace: string | null } {
  let quick = false;
  let trace: string | null = null;
  let only = new Set<Section>(SECTIONS);
  let imdb = join(root, '..', 'shared', 'data', 'imdb', 'train.gz.parquet');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const names = value().split(',').filter(Boolean);
      const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (unknown.length) throw new Error(`--only: unknown section ${unknown.join(', ')} (sections: ${SECTIONS.join(', ')})`);
      only = new Set(names as Section[]);
    } else if (arg === '--imdb' || arg.startsWith('--imdb=')) imdb = value();
    else if (arg === '--trace' || arg.startsWith('--trace=')) trace = value();
    else if (arg === '--help' || arg === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--only ${SECTIONS.join(',')}] [--imdb train.gz.parquet] [--trace DIR]`);
      console.log('  --trace DIR: run each section inside profile() and write DIR/<section>.trace.json and .summary.txt (its timings then include the profiler\'s cost)');
      process.exit(0);
    } else throw new Error(`unknown option ${arg} (try --help)`);
  }
  return { quick, only, imdb, trace };
}

// ---- output -------------------------------------------------------------------------------------

type Cell = string | number | null;

function fmt(x: number | null, digits = 2): string {
  if (x === null || !Number.isFinite(x)) return '-';
  if (Number.isInteger(x) || Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits);
}

function printTable(title: string, header: string[], rows: Cell[][]): void {
  const text = rows.map((r) => r.map((c) => (c === null ? '-' : typeof c === 'number' ? fmt(c) : c)));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of text) console.log(line(r));
}

const pct = (x: number, peak: number | undefined) => (peak ? `${((100 * x) / peak).toFixed(1)}%` : '-');

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 80).replace(/^-+|-+$/g, '');
}

// ---- matmul -------------------------------------------------------------------------------------

interface EngineMatmul {
  adapter: string;
  kernelClass: string;
  results: MatmulResult[];
}

/** The engine's matmul numbers from bench/matmul.ts (run as its own process: it exports nothing to call). */
function engineMatmul(quick: boolean): Promise<EngineMatmul> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('bench', 'matmul.ts'), '--json', ...(quick ? ['--quick'] : [])], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const json = out.slice(out.indexOf('{'));
      if (code !== 0 || !json) return reject(new Error(`bench/matmul.ts --json exited with ${code}:\n${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(json) as EngineMatmul);
      } catch (e) {
        reject(new Error(`bench/matmul.ts --json printed no JSON (${(e as Error).message}):\n${out.slice(0, 500)}`));
      }
    });
  });
}

const PEER_SHAPES: PeerShape[] = [
  { name: 'qkv [1024,768]×[768,2304]+b', m: 1024, k: 768, n: 2304, bias: true },
  { name: 'mlp up [1024,768]×[768,3072]+b', m: 1024, k: 768, n: 3072, bias: true },
  { name: 'mlp down [1024,3072]×[3072,768]+b', m: 1024, k: 3072, n: 768, bias: true },
  { name: '1024³', m: 1024, k: 1024, n: 1024, bias: false },
  { name: 'dX [1024,2304]×[768,2304]ᵀ', m: 1024, k: 2304, n: 768, bias: false, transB: true },
];

// ---- main -----------------------------------------------------------------------------------------

interface Settings {
  timing: TimingOptions;
  copyBytes: number;
  pasts: number[];
  normRows: number[];
  layers: number;
  pipeline: { samples: number; budgetMs: number; maxLength: number };
  epoch: EpochOptions;
  overhead: OverheadOptions & { layers: number };
  pretrain: { shapes: PretrainShape[]; samples: number };
  ops: OpsOptions;
  nn: NnOptions;
  serve: ServeBenchOptions;
}

// The shipped weights/imdb-gpt2 shape, and the 4 × 256 one issue 13 suggests.
const PRETRAIN_SHIPPED: PretrainShape = { name: '4 layers × 128, T 128, batch 4 (weights/imdb-gpt2)', nLayer: 4, nEmbd: 128, nHead: 4, seqLen: 128, batchSize: 4 };
const PRETRAIN_WIDER: PretrainShape = { name: '4 layers × 256, T 256, batch 2', nLayer: 4, nEmbd: 256, nHead: 4, seqLen: 256, batchSize: 2 };

const FULL: Settings = {
  timing: { targetMs: 300, samples: 5 },
  copyBytes: 256 << 20,
  pasts: [128, 512, 1000],
  normRows: [1024, 8192],
  layers: 12,
  pipeline: { samples: 1, budgetMs: 10000, maxLength: 1019 },
  epoch: { examples: 64, tokens: 128, batchSize: 8, epochs: 3 },
  pretrain: { shapes: [PRETRAIN_SHIPPED, PRETRAIN_WIDER], samples: 3 },
  overhead: { reps: 128, samples: 21, steps: 3, layers: 12 },
  ops: { targetMs: 100, samples: 31, warmRounds: 3 },
  nn: { targetMs: 300, samples: 15, warmRounds: 2 },
  serve: { seconds: 10, concurrencies: [1, 8, 32], constantSeconds: 60 },
};

const QUICK: Settings = {
  timing: { targetMs: 100, samples: 2 },
  copyBytes: 64 << 20,
  pasts: [128, 1000],
  normRows: [1024],
  layers: 2,
  pipeline: { samples: 1, budgetMs: 0, maxLength: 256 },
  epoch: { examples: 24, tokens: 128, batchSize: 8, epochs: 3 },
  pretrain: { shapes: [PRETRAIN_SHIPPED], samples: 1 },
  overhead: { reps: 64, samples: 9, steps: 3, layers: 2 },
  ops: { targetMs: 40, samples: 5, warmRounds: 1 },
  nn: { targetMs: 100, samples: 5, warmRounds: 1 },
  serve: { seconds: 3, concurrencies: [1, 8, 32], constantSeconds: 10 },
};

const args = parseArgs(process.argv.slice(2));
const settings = args.quick ? QUICK : FULL;
const started = performance.now();
const gpu = await openGpu();
console.log(`adapter: ${gpu.adapterName}${args.quick ? '  (--quick: fewer samples, smaller sizes)' : ''}`);
console.log(`kernel features in use: ${[...gpu.kernelFeatures].join(', ') || 'none (every kernel runs its fallback)'}`);
const sections: Record<string, unknown> = {};
let failures = 0;

/**
 * Runs one section and records its result; a failure is reported and recorded, and the run
 * goes on (after a WebGPU error in the engine the later sections fail too, and say so).
 */
async function section<T extends object>(name: Section, body: () => Promise<T>, print: (value: T) => void): Promise<T | undefined> {
  try {
    const value = args.trace ? await traced(name, body, args.trace) : await body();
    sections[name] = { date: new Date().toISOString(), ...value };
    print(value);
    return value;
  } catch (e) {
    failures++;
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    console.error(`\n${name}: FAILED\n${message}`);
    sections[name] = { date: new Date().toISOString(), error: message };
    return undefined;
  }
}

/** Runs a section inside profile() and writes its trace and summary (a section run in a child process, such as matmul, has no dispatches here). */
async function traced<T>(name: Section, body: () => Promise<T>, dir: string): Promise<T> {
  const p = await profile(gpu, body);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.trace.json`), p.toChromeTrace());
  writeFileSync(join(dir, `${name}.summary.txt`), p.summary(30) + '\n');
  console.log(`\n${name}: trace of ${p.records.length} dispatches in ${join(dir, `${name}.trace.json`)}`);
  return p.result;
}

const kernelHeader = ['op', 'ms/op', 'GB/s', '% peak BW', 'kernel GB/s', 'GFLOP/s', 'rme', 'max abs err'];
const kernelRows = (results: KernelResult[], peak: Peak | undefined): Cell[][] =>
  results.map((r) => [r.name, r.ms, r.gbps, pct(r.gbps, peak?.bandwidthGBps), r.kernelGbps, r.gflops, `±${r.rme.toFixed(1)}%`, r.maxAbsError.toExponential(1)]);

const wantsPeak = (['peak', 'matmul', 'peer', 'attention', 'norms'] as const).some((s) => args.only.has(s));
const peak = !wantsPeak
  ? undefined
  : await section(
      'peak',
      () => measurePeak(gpu, { ...settings.timing, copyBytes: settings.copyBytes }),
      (p) =>
        printTable('Measured peaks', ['probe', 'value'], [
          [`buffer copy (${p.copyBytes >> 20} MiB, read + write)`, `${fmt(p.copyGBps)} GB/s`],
          ['vec4 shader copy (same bytes)', `${fmt(p.shaderCopyGBps)} GB/s`],
          ['f32 vec4 FMA shader', `${fmt(p.fmaGflops)} GFLOP/s`],
        ]),
    );

const ours = !args.only.has('matmul')
  ? undefined
  : await section('matmul', () => engineMatmul(args.quick), (m) => {
      printTable(
        `Matmul (engine, kernel class ${m.kernelClass}; bench/matmul.ts: sampled outputs checked against float64, then timed; previous = the register-blocked kernel, same run)`,
        ['shape', 'kernel', 'ms', 'GFLOP/s', '% peak FMA', 'previous GFLOP/s', 'new / previous', 'max rel err'],
        m.results.map((r) => [r.shape, r.kernel, r.msPerMatmul, r.gflops, pct(r.gflops, peak?.fmaGflops), r.previous.gflops, `${(r.gflops / r.previous.gflops).toFixed(2)}×`, r.maxRelError.toExponential(1)]),
      );
      const swept = m.results.filter((r) => r.sweep.length > 0);
      if (swept.length === 0) return;
      printTable(
        'Tiled matmul sweep: GFLOP/s of every tile and K split (the engine chooses one by shape; tune FILL_WORKGROUPS and gpuSplits in src/ops/matmul.ts from this)',
        ['shape', ...swept[0]!.sweep.map((v) => `${v.tile}/${v.splits}`)],
        swept.map((r) => [r.shape, ...r.sweep.map((v) => v.gflops)]),
      );
    });

if (args.only.has('peer')) {
  await section(
    'peer',
    async () => {
      // --quick multiplies 256 rows, as bench/matmul.ts --quick does.
      const shapes = args.quick ? PEER_SHAPES.map((s) => ({ ...s, m: s.m / 4, name: `${s.name} at 256 rows` })) : PEER_SHAPES;
      const peer = await tfjsMatmul(gpu.adapterName, shapes, settings.timing);
      const results = peer.results.map((r) => {
        const mine = ours?.results.find((o) => o.m === r.m && o.k === r.k && o.n === r.n && o.transB === r.transB);
        return { ...r, oursGflops: mine?.gflops ?? null, ratio: mine ? mine.gflops / r.gflops : null };
      });
      return { ...peer, results };
    },
    (peer) =>
      printTable(
        `Matmul peer: TensorFlow.js ${peer.version} WebGPU backend on ${peer.adapter}`,
        ['shape', 'tfjs ms', 'tfjs GFLOP/s', 'ours GFLOP/s', 'ours/tfjs', 'tfjs max rel err'],
        peer.results.map((r) => [r.name, r.ms, r.gflops, r.oursGflops, r.ratio === null ? null : `${r.ratio.toFixed(2)}×`, r.maxRelError.toExponential(1)]),
      ),
  );
}

if (args.only.has('attention')) {
  await section(
    'attention',
    async () => {
      const results = await attentionBench(gpu, settings.pasts, settings.timing);
      if (gpu.kernelClass !== 'gpu') return { results, previous: [] };
      // The previous form beside it: one workgroup per (example, head) over the whole past, as
      // CPU-class adapters run it.
      gpu.kernelClass = 'cpu';
      try {
        return { results, previous: await attentionBench(gpu, settings.pasts, settings.timing) };
      } finally {
        gpu.kernelClass = 'gpu';
      }
    },
    ({ results, previous }) => {
      printTable('Attention with a KV cache (forward, and backward to qkv as prompt training runs it; GB/s counts the past k, v read)', kernelHeader, kernelRows(results, peak));
      if (previous.length > 0) printTable('Attention, previous form (the past not split across workgroups), same run', kernelHeader, kernelRows(previous, peak));
    },
  );
}

if (args.only.has('norms')) {
  await section(
    'norms',
    async () => ({ results: await normsBench(gpu, settings.normRows, settings.timing) }),
    ({ results }) => printTable('LayerNorm and GELU (GB/s counts [rows, 768] inputs read and outputs written)', kernelHeader, kernelRows(results, peak)),
  );
}

if (args.only.has('features')) {
  await section(
    'features',
    async () => {
      const offered = [...gpu.kernelFeatures];
      if (offered.length === 0) return { offered, results: [] };
      // The kernels with feature variants, timed with the features and with the fallbacks, side by side.
      const variantKernels = async () => [
        ...(await normsBench(gpu, settings.normRows.slice(0, 1), settings.timing)).filter((r) => r.name.startsWith('layerNorm')),
        ...(await attentionBench(gpu, settings.pasts.slice(0, 1), settings.timing)),
      ];
      gpu.useKernelFeatures([]);
      const fallback = await variantKernels();
      gpu.useKernelFeatures(offered);
      const featured = await variantKernels();
      const results = featured.map((r, i) => ({ name: r.name, ms: r.ms, fallbackMs: fallback[i]!.ms, speedup: fallback[i]!.ms / r.ms, maxAbsError: r.maxAbsError, fallbackMaxAbsError: fallback[i]!.maxAbsError }));
      return { offered, results };
    },
    ({ offered, results }) => {
      if (offered.length === 0) return console.log('\nKernel feature variants: this adapter offers neither shader-f16 nor subgroups (fallbacks only)');
      printTable(
        `Kernel feature variants (${offered.join(', ')}) against their fallbacks, same adapter, same run`,
        ['op', 'ms with features', 'ms fallback', 'speedup', 'max abs err', 'fallback max abs err'],
        results.map((r) => [r.name, r.ms, r.fallbackMs, `${r.speedup.toFixed(2)}×`, r.maxAbsError.toExponential(1), r.fallbackMaxAbsError.toExponential(1)]),
      );
    },
  );
}

if (args.only.has('overhead')) {
  const opts = settings.overhead;
  await section(
    'overhead',
    async () => {
      // The engine's ops and Dawn's floor measured sample by sample in turn, so their ratios share
      // the machine's moments; then tfjs, whose ops leave garbage and per-dispatch bind groups
      // and buffers behind that would slow whatever ran after them.
      const floorSet = dawnFloor(gpu, opts.reps);
      const opSet = engineOps(gpu, opts.reps);
      const ours = await measureInTurn([...floorSet.cases, ...opSet.cases], opts.samples);
      floorSet.dispose();
      opSet.dispose();
      const peerSet = await tfjsHostCost(gpu.adapterName, opts.reps);
      const theirs = await measureInTurn(peerSet.cases, opts.samples);
      await peerSet.dispose();
      const costs = new Map([...ours, ...theirs].map((c) => [c.name, c]));
      const cost = (name: string) => costs.get(name)!;
      const floor = { reused: cost(DAWN_REUSED), fresh: cost(DAWN_FRESH) };
      const ops = opSet.names.map((name) => ({ engine: cost(name), dawn: cost(dawnOf(name)) }));
      const peer = { adapter: peerSet.adapter, version: peerSet.version, results: peerSet.cases.map((c) => cost(c.name)) };
      // The step on GPT-2 small's shape: captured, with the fast launch path, and without it, in this one run.
      const model = randomModel(gpu, opts.layers);
      const stepOptions = { batch: 8, past: 128, steps: opts.steps };
      const label = `prompt + head step, B8 P5 over past 128, ${opts.layers} layers`;
      try {
        const captured = await promptStep(gpu, model, { ...stepOptions, capture: true }, `${label}, captured (replayed)`);
        const fast = await promptStep(gpu, model, stepOptions, label);
        gpu.fastLaunch = false;
        const plain = await promptStep(gpu, model, stepOptions, `${label}, fast launch off`);
        return {
          floor, ops, peer,
          steps: { captured, fast, plain, hostSpeedup: plain.hostCpuMs / fast.hostCpuMs, capturedSpeedup: fast.hostCpuMs / captured.hostCpuMs },
          model: model.description,
        };
      } finally {
        gpu.fastLaunch = true;
        model.model.dispose();
      }
    },
    ({ floor, ops, peer, steps }) => {
      const f = floor.reused.hostUs;
      const tfAdd = peer.results.find((r) => r.name === TFJS_ADD)!.hostUs;
      const tfOf = (name: string) => peer.results.find((r) => r.name === `tfjs ${name}`)?.hostUs;
      printTable(
        `Host cost per op (µs; median and fastest of ${opts.samples} samples of ${opts.reps} ops, a quarter as many for matmul and attention; the engine's and Dawn's rows sampled in turn, then tfjs ${peer.version}'s; same adapter, same run)`,
        ['op', 'host µs', 'fastest', '× Dawn floor (reused group)', 'Dawn alone, same dispatches µs', '× that', 'total µs', 'tfjs host µs', 'ours / tfjs'],
        [
          [floor.reused.name, f, floor.reused.hostMinUs, '1.00×', null, null, floor.reused.totalUs, null, null],
          [floor.fresh.name, floor.fresh.hostUs, floor.fresh.hostMinUs, `${(floor.fresh.hostUs / f).toFixed(2)}×`, null, null, floor.fresh.totalUs, null, null],
          ...ops.map(({ engine: r, dawn }): Cell[] => {
            const tf = tfOf(r.name);
            return [
              r.name, r.hostUs, r.hostMinUs, `${(r.hostUs / f).toFixed(2)}×`, dawn.hostUs, `${(r.hostUs / dawn.hostUs).toFixed(2)}×`,
              r.totalUs, tf ?? null, tf ? `${(r.hostUs / tf).toFixed(2)}×` : null,
            ];
          }),
        ],
      );
      const tfHostAdd = peer.results.find((r) => r.name === TFJS_HOST_ADD)!.hostUs;
      console.log(`tfjs add host cost (inputs on the GPU, one dispatch): ${fmt(tfAdd)} µs; ours / tfjs: ${(ops[0]!.engine.hostUs / tfAdd).toFixed(2)}× (target ≤ 0.5×)`);
      console.log(`tfjs add of host tensors, which it adds on the CPU without a dispatch: ${fmt(tfHostAdd)} µs`);
      printTable(
        'Prompt + head training step (forward over the past, backward, Adam; host = until all its work is encoded)',
        ['step', 'dispatches', 'bind groups made', 'replayed', 'host CPU ms', 'main thread CPU ms', 'host wall ms', 'fastest wall', 'Dawn alone, same dispatches ms', 'total ms'],
        [steps.captured, steps.fast, steps.plain].map((s) => [s.name, s.dispatches, s.bindGroupsMade, s.replayed, s.hostCpuMs, s.hostThreadMs, s.hostMs, s.hostMinMs, s.dawnMs, s.totalMs]),
      );
      console.log(`step host CPU time, fast launch off / on: ${steps.hostSpeedup.toFixed(2)}×; on / captured: ${steps.capturedSpeedup.toFixed(2)}×`);
    },
  );
}

let bench: BenchModel | undefined;
if (args.only.has('pipeline') || args.only.has('epoch')) bench = randomModel(gpu, settings.layers);

if (bench && args.only.has('pipeline')) {
  const model = bench;
  await section(
    'pipeline',
    async () => {
      const lengths = await imdbLengths(args.imdb, join(resultsDir, 'imdb-token-lengths.json'));
      if (!lengths) console.log(`\n(no ${args.imdb} and no stored IMDB length sample: the IMDB-like batch is skipped)`);
      return pipelineBench(gpu, model, { ...settings.pipeline, lengths });
    },
    (result) => {
      printTable(`Past caching: encoding texts (${result.model})`, ['batch', 'ms', 'tokens/s', 'padded positions/s', 'samples'], result.encode.map((r) => [r.name, r.ms, r.tokensPerSec, r.paddedPerSec, r.samples]));
      printTable('Prompt + head training step over a cached past (forward, backward, Adam step, loss read back)', ['step', 'ms', 'examples/s', 'samples'], result.step.map((r) => [r.name, r.ms, r.examplesPerSec, r.samples]));
      if (result.lengthSource) console.log(`IMDB lengths: ${result.lengthSource}`);
      for (const note of result.notes) console.log(`note: ${note}`);
      console.log(`peak GPU memory in use: ${fmt(result.peakBytes / 2 ** 20, 0)} MiB (model weights ${fmt(result.weightsBytes / 2 ** 20, 0)} MiB)`);
    },
  );
}

if (bench && args.only.has('epoch')) {
  const model = bench;
  await section(
    'epoch',
    () => epochBench(model, settings.epoch),
    (result) => {
      printTable(
        `Training epoch: ${result.examples} examples of ~${Math.round(result.meanTokens)} tokens, batch ${result.batchSize}, P 5 (${result.model})`,
        ['run', ...result.cachedEpochs.map((_, i) => `epoch ${i + 1} s`), 'fastest after 1st'],
        [
          ["recomputing every batch's past (cacheBytes 0)", ...result.recomputeEpochs, result.recomputeSeconds],
          ['cached pasts (epoch 1 computes and stores them)', ...result.cachedEpochs, result.cachedSeconds],
          ['cached pasts in f16 (--cache-f16: half the memory)', ...result.cachedF16Epochs, result.cachedF16Seconds],
        ],
      );
      console.log(`cached / recomputing epoch time: ${(100 * result.ratio).toFixed(1)}% (target < 15%: ${result.ratio < 0.15 ? 'met' : 'NOT met'}); mean losses agree within ${result.lossDifference.toExponential(1)}`);
      console.log(`f16 cached / recomputing: ${((100 * result.cachedF16Seconds) / result.recomputeSeconds).toFixed(1)}%; its mean losses differ from the f32 run's by at most ${result.f16LossDifference.toExponential(1)}`);
    },
  );
}
bench?.model.dispose();

if (args.only.has('pretrain')) {
  await section(
    'pretrain',
    async () => ({ results: await pretrainBench(gpu, settings.pretrain.shapes, settings.pretrain.samples) }),
    ({ results }) =>
      printTable(
        'Pretraining update (forward + backward of every weight, tied head over 50,257 tokens, clipping, AdamW; random tokens)',
        ['model', 'parameters', 'tokens/update', 'ms/update', 'tokens/s', 'samples'],
        results.map((r) => [r.name, r.parameters, r.tokensPerStep, r.msPerStep, r.tokensPerSec, r.samples]),
      ),
  );
}

if (args.only.has('ops')) {
  await section(
    'ops',
    () => opsBench(gpu, settings.ops),
    ({ version, adapter, results }) =>
      printTable(
        `General ops against TensorFlow.js ${version} WebGPU on ${adapter} (ms per op to completion, medians of ${settings.ops.samples} samples taken in turn; ours / tfjs = median of paired samples)`,
        ['op', 'ours ms', 'tfjs ms', 'ours / tfjs', 'fastest ours / tfjs', 'ours GB/s', 'tfjs GB/s', 'ours encode ms', 'tfjs encode+submit ms', 'dispatches ours / tfjs', 'reps', 'max abs err ours / tfjs'],
        results.map((r) => [
          r.name, r.oursMs, r.tfjsMs, `${r.ratio.toFixed(2)}×`, `${r.fastestRatio.toFixed(2)}×`, r.oursGBps, r.tfjsGBps, r.oursHostMs, r.tfjsHostMs,
          `${r.oursDispatches} / ${r.tfjsPrograms.length}`, r.reps, `${r.oursMaxError.toExponential(1)} / ${r.tfjsMaxError.toExponential(1)}`,
        ]),
      ),
  );
}

if (args.only.has('nn')) {
  await section(
    'nn',
    () => nnBench(gpu, settings.nn),
    ({ version, adapter, results }) =>
      printTable(
        `Layers against TensorFlow.js ${version} WebGPU on ${adapter} (ms per entry to completion, medians of ${settings.nn.samples} samples taken in turn; ours / tfjs = median of paired samples)`,
        ['entry', 'ours ms', 'tfjs ms', 'ours / tfjs', 'fastest ours / tfjs', 'dispatches ours / tfjs', 'reps', 'check'],
        results.map((r) => [
          r.name, r.oursMs, r.tfjsMs, `${r.ratio.toFixed(2)}×`, `${r.fastestRatio.toFixed(2)}×`,
          `${r.oursDispatches} / ${r.tfjsDispatches}`, r.reps, r.check,
        ]),
      ),
  );
}

if (args.only.has('serve')) {
  await section(
    'serve',
    async () => serveBench(settings.serve),
    (r) => {
      printTable(
        `gpt2-prompt serve on 127.0.0.1 (shipped small model, two prompt files, tasks interleaved, one text a request; ${settings.serve.seconds} s a run)`,
        ['server', 'texts', 'concurrency', 'requests/s', 'rows/s', 'p50 ms', 'p99 ms', 'rows a pass', 'failures', 'server CPU ms/req', 'client CPU ms/req', 'load'],
        r.closedLoop.map((x) => [x.setting, x.texts, x.concurrency, x.requestsPerSec, x.rowsPerSec, x.p50Ms, x.p99Ms, x.meanBatchRows, x.failures, x.serverCpuMsPerRequest, x.clientCpuMsPerRequest, x.loadAverage]),
      );
      const c = r.constantRate;
      console.log(`batching / one row per pass at concurrency ${Math.max(...settings.serve.concurrencies)}: ${r.speedupAtMaxConcurrency.toFixed(2)}× requests/s (target ≥ 3×: ${r.speedupAtMaxConcurrency >= 3 ? 'met' : 'NOT met'}); tweet-length texts: ${r.shortTextSpeedupAtMaxConcurrency.toFixed(2)}×`);
      console.log(`constant rate ${c.ratePerSec} requests/s for ${c.seconds} s (half the batching capacity): ${c.sent} sent, ${c.ok} answered 200, ${c.failures} failed, p50 ${c.p50Ms} ms, p99 ${c.p99Ms} ms, ${c.meanBatchRows.toFixed(2)} rows a pass`);
    },
  );
}

await closeTfjs();

mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `${slug(gpu.adapterName)}${args.quick ? '.quick' : ''}.json`);
// A run of some sections updates those and keeps the others' latest numbers.
const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { sections?: Record<string, unknown> }) : {};
const output = {
  adapter: gpu.adapterName,
  updated: new Date().toISOString(),
  command: ['npm run bench', ...(args.quick || args.only.size < SECTIONS.length ? ['--'] : []), ...(args.quick ? ['--quick'] : []), ...(args.only.size < SECTIONS.length ? [`--only ${[...args.only].join(',')}`] : [])].join(' '),
  node: process.version,
  sections: { ...previous.sections, ...sections },
};
writeFileSync(file, JSON.stringify(output, null, 2) + '\n');
console.log(`\nwrote ${relative(process.cwd(), file)} in ${((performance.now() - started) / 1000).toFixed(0)} s${failures ? `; ${failures} section(s) FAILED` : ''}`);
gpu.destroy();
process.exitCode = failures ? 1 : 0;
