// General ops against TensorFlow.js's WebGPU backend on the same adapter, in the same process:
// exp, broadcast add, sum over the last dim, max over dim 0, a materialised transpose, softmax
// over the last dim, cat, and batched matmul, on tensors of about GPT-2 small's [1024, 768].
//
// Each op is first checked, ours and tfjs's alike, against a float64 reference at sampled
// elements. A sample then runs `reps` of the op and waits for its queue (the engine's
// gpu.sync(), tfjs's own queue): time to completion per op, the GPU's work included, on
// inputs that live on the GPU. The samples of the two are taken in turn (ours, tfjs's, then
// tfjs's, ours, ...), so a shared machine's slow moments fall on both alike, and each ratio is
// the median over rounds of a sample of ours over the tfjs sample beside it; the ratio of the
// two fastest samples is given beside it (on a loaded machine, the least disturbed of each).
//
// tfjs runs an op on the CPU when all its inputs are still host values under
// WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD elements (shouldExecuteOnCPU); its inputs here are uploaded
// first, the check says so, and the programs each op dispatched are recorded.
import type { Gpu } from '../src/gpu/context.ts';
import { tensor, tidy, type Tensor } from '../src/tensor/tensor.ts';
import { exp, add } from '../src/ops/elementwise.ts';
import { sum, max } from '../src/ops/reduce.ts';
import { softmax } from '../src/ops/softmax.ts';
import { transpose, cat } from '../src/ops/movement.ts';
import { matmul } from '../src/ops/matmul.ts';
import { seededRandom } from '../src/util/random.ts';
import { median } from './overhead.ts';
import { pairedSamples, pairedSummary, type PairedOptions, type PairedSummary } from './paired.ts';
import { tfjsSession, type WebGPUBackendLike } from './peers/tfjs.ts';

type Tf = typeof import('@tensorflow/tfjs-core');
type TfTensor = import('@tensorflow/tfjs-core').Tensor;

/** The backend members used here beyond peers/tfjs.ts's: where a tensor's data lives, and each program run. */
export interface ResidentBackend extends WebGPUBackendLike {
  tensorMap: { get(dataId: object): { resource: unknown; values: unknown } };
  uploadToGPU(dataId: object): void;
  runWebGPUProgram(program: { constructor: { name: string } }, ...rest: unknown[]): unknown;
}

export type OpsOptions = PairedOptions;

export interface OpResult extends PairedSummary {
  name: string;
  /** Median ms per op until the reps were encoded (tfjs submits every 15 dispatches on its own, so its part includes GPU work). */
  oursHostMs: number;
  tfjsHostMs: number;
  /** Bytes the op must read and write at least once, over oursMs and tfjsMs. */
  oursGBps: number;
  tfjsGBps: number;
  oursDispatches: number;
  /** tfjs's programs for one op, by class name. */
  tfjsPrograms: string[];
  oursMaxError: number;
  tfjsMaxError: number;
}

/** Runs `body` while recording the class name of each program tfjs dispatches. */
export function tfjsProgramsOf(backend: ResidentBackend, body: () => void): string[] {
  const programs: string[] = [];
  const runProgram = backend.runWebGPUProgram;
  backend.runWebGPUProgram = function (program, ...rest) {
    programs.push(program.constructor.name);
    return runProgram.call(this, program, ...rest);
  };
  try {
    body();
  } finally {
    backend.runWebGPUProgram = runProgram;
  }
  return programs;
}

/** A float64 reference of the output, element by flat index. */
type Reference = (inputs: readonly Float32Array[], i: number) => number;

interface OpCase {
  name: string;
  inputs: number[][];
  outShape: number[];
  ours: (xs: readonly Tensor[]) => Tensor;
  tfjs: (tf: Tf, xs: readonly TfTensor[]) => TfTensor;
  reference: Reference;
  /** Allowed |got − want| ≤ tol · scale(i), scale being the float64 sum of the magnitudes that make element i. */
  scale: Reference;
}

const R = 1024;
const C = 768;
const BMM = { batch: 12, m: 128, k: 64, n: 128 };
const TOLERANCE = 1e-5;

function rowMax(x: Float32Array, r: number): number {
  let m = -Infinity;
  for (let j = 0; j < C; j++) m = Math.max(m, x[r * C + j]!);
  return m;
}

function rowExpSum(x: Float32Array, r: number, m: number): number {
  let z = 0;
  for (let j = 0; j < C; j++) z += Math.exp(x[r * C + j]! - m);
  return z;
}

function rowAbsSum(x: Float32Array, r: number): number {
  let s = 0;
  for (let j = 0; j < C; j++) s += Math.abs(x[r * C + j]!);
  return s;
}

const bmmTerms = (xs: readonly Float32Array[], i: number, f: (a: number, b: number) => number): number => {
  const { m, k, n } = BMM;
  const b = Math.floor(i / (m * n));
  const row = Math.floor(i / n) % m;
  const col = i % n;
  let s = 0;
  for (let t = 0; t < k; t++) s += f(xs[0]![(b * m + row) * k + t]!, xs[1]![(b * k + t) * n + col]!);
  return s;
};

const CASES: OpCase[] = [
  {
    name: 'exp [1024,768]',
    inputs: [[R, C]],
    outShape: [R, C],
    ours: ([x]) => exp(x!),
    tfjs: (tf, [x]) => tf.exp(x!),
    reference: ([x], i) => Math.exp(x![i]!),
    scale: ([x], i) => Math.exp(x![i]!),
  },
  {
    name: 'add [1024,768] + [768]',
    inputs: [[R, C], [C]],
    outShape: [R, C],
    ours: ([a, b]) => add(a!, b!),
    tfjs: (tf, [a, b]) => tf.add(a!, b!),
    reference: ([a, b], i) => a![i]! + b![i % C]!,
    scale: ([a, b], i) => Math.abs(a![i]!) + Math.abs(b![i % C]!),
  },
  {
    name: 'sum over dim -1 [1024,768]',
    inputs: [[R, C]],
    outShape: [R],
    ours: ([x]) => sum(x!, -1),
    tfjs: (tf, [x]) => tf.sum(x!, -1),
    reference: ([x], r) => {
      let s = 0;
      for (let j = 0; j < C; j++) s += x![r * C + j]!;
      return s;
    },
    scale: ([x], r) => rowAbsSum(x!, r),
  },
  {
    name: 'max over dim 0 [1024,768]',
    inputs: [[R, C]],
    outShape: [C],
    ours: ([x]) => max(x!, 0),
    tfjs: (tf, [x]) => tf.max(x!, 0),
    reference: ([x], c) => {
      let m = -Infinity;
      for (let r = 0; r < R; r++) m = Math.max(m, x![r * C + c]!);
      return m;
    },
    scale: () => 0,
  },
  {
    name: 'transpose [1024,768] → [768,1024]',
    inputs: [[R, C]],
    outShape: [C, R],
    ours: ([x]) => transpose(x!, 0, 1),
    tfjs: (tf, [x]) => tf.transpose(x!, [1, 0]),
    reference: ([x], i) => x![(i % R) * C + Math.floor(i / R)]!,
    scale: () => 0,
  },
  {
    name: 'softmax over dim -1 [1024,768]',
    inputs: [[R, C]],
    outShape: [R, C],
    ours: ([x]) => softmax(x!, -1),
    tfjs: (tf, [x]) => tf.softmax(x!, -1),
    reference: ([x], i) => {
      const r = Math.floor(i / C);
      const m = rowMax(x!, r);
      return Math.exp(x![i]! - m) / rowExpSum(x!, r, m);
    },
    // Each output is a quotient of terms within the row, each good to a few ulps of 1.
    scale: () => 1,
  },
  {
    name: 'cat dim -1 [1024,768] ++ [1024,768]',
    inputs: [[R, C], [R, C]],
    outShape: [R, 2 * C],
    ours: ([a, b]) => cat([a!, b!], -1),
    tfjs: (tf, [a, b]) => tf.concat([a!, b!], -1),
    reference: ([a, b], i) => {
      const r = Math.floor(i / (2 * C));
      const c = i % (2 * C);
      return c < C ? a![r * C + c]! : b![r * C + c - C]!;
    },
    scale: () => 0,
  },
  {
    name: 'matmul [12,128,64]×[12,64,128]',
    inputs: [[BMM.batch, BMM.m, BMM.k], [BMM.batch, BMM.k, BMM.n]],
    outShape: [BMM.batch, BMM.m, BMM.n],
    ours: ([a, b]) => matmul(a!, b!),
    tfjs: (tf, [a, b]) => tf.matMul(a!, b!),
    reference: (xs, i) => bmmTerms(xs, i, (a, b) => a * b),
    scale: (xs, i) => bmmTerms(xs, i, (a, b) => Math.abs(a * b)),
  },
];

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Values uniform in [-2, 2): exp and softmax see a range of magnitudes, reductions a mix of signs. */
function hostValues(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => 4 * random() - 2);
}

/** Element indices to check: the first, the last, and random ones between. */
function sampledIndices(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  return [0, n - 1, ...Array.from({ length: 510 }, () => Math.floor(random() * n))];
}

/** The largest error against the float64 reference at sampled elements; throws beyond the tolerance or on any non-finite output. */
function check(side: string, op: OpCase, inputs: readonly Float32Array[], got: Float32Array): number {
  if (got.length !== numel(op.outShape)) throw new Error(`${side} ${op.name}: ${got.length} outputs, expected ${numel(op.outShape)}`);
  const bad = got.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${side} ${op.name}: output ${bad} is ${got[bad]}`);
  let worst = 0;
  for (const i of sampledIndices(got.length, 7)) {
    const want = op.reference(inputs, i);
    const err = Math.abs(got[i]! - want);
    if (!(err <= TOLERANCE * op.scale(inputs, i) + 1e-7)) throw new Error(`${side} ${op.name}: element ${i} is ${got[i]}, float64 reference ${want}`);
    worst = Math.max(worst, err);
  }
  return worst;
}

export async function opsBench(gpu: Gpu, options: OpsOptions): Promise<{ adapter: string; version: string; results: OpResult[] }> {
  const { tf, adapter, sync } = await tfjsSession(gpu.adapterName);
  const backend = tf.backend() as unknown as ResidentBackend;
  const results: OpResult[] = [];
  for (const op of CASES) {
    const host = op.inputs.map((shape, k) => hostValues(numel(shape), 11 + k));
    const ours = host.map((values, k) => tensor(gpu, values, op.inputs[k]!));
    const theirs = host.map((values, k) => tf.tensor(values, op.inputs[k]!));
    try {
      for (const t of theirs) backend.uploadToGPU(t.dataId);
      await sync();
      if (theirs.some((t) => backend.tensorMap.get(t.dataId).resource == null) || backend.shouldExecuteOnCPU(theirs)) {
        throw new Error(`tfjs ${op.name}: the inputs are not on the GPU, so tfjs could run the op on the CPU`);
      }

      // Checked once each, counting what they dispatch.
      const before = gpu.dispatches;
      const oursOut = tidy(() => op.ours(ours));
      const oursDispatches = gpu.dispatches - before;
      const oursMaxError = check('ours', op, host, (await oursOut.read()) as Float32Array);
      oursOut.dispose();
      let tfjsOut: TfTensor | undefined;
      const tfjsPrograms = tfjsProgramsOf(backend, () => (tfjsOut = op.tfjs(tf, theirs)));
      if (tfjsPrograms.length === 0) throw new Error(`tfjs ${op.name}: ran no GPU program (computed on the CPU)`);
      const tfjsMaxError = check('tfjs', op, host, (await tfjsOut!.data()) as Float32Array);
      tfjsOut!.dispose();

      const timed = await pairedSamples(
        [
          { run: () => tidy(() => void op.ours(ours)), wait: () => gpu.sync() },
          { run: () => op.tfjs(tf, theirs).dispose(), wait: sync },
        ],
        options,
      );
      const bytes = 4 * (host.reduce((n, x) => n + x.length, 0) + numel(op.outShape));
      const summary = pairedSummary(timed);
      const [o, t] = timed.times;
      results.push({
        name: op.name,
        ...summary,
        oursHostMs: median(o.host),
        tfjsHostMs: median(t.host),
        oursGBps: bytes / summary.oursMs / 1e6,
        tfjsGBps: bytes / summary.tfjsMs / 1e6,
        oursDispatches,
        tfjsPrograms,
        oursMaxError,
        tfjsMaxError,
      });
    } finally {
      for (const x of ours) x.dispose();
      for (const x of theirs) x.dispose();
    }
  }
  await sync();
  return { adapter, version: tf.version_core, results };
}
