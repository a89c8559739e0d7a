// Host cost of launching work: what one op costs the CPU before the GPU sees it, against what
// Dawn itself needs for one dispatch (a trivial pipeline, its bind group reused or made anew)
// and against TensorFlow.js's WebGPU backend on the same adapter, and what a GPT-2 small
// prompt + head training step spends encoding. On a fast GPU that host time is the step.
//
// A sample encodes `reps` ops (host time), then submits them and waits for the queue (total
// time); both are divided by `reps`. `reps` stays under the engine's 512 dispatches per
// command buffer, so the host part submits nothing: on a software adapter the GPU's work runs
// on the same CPU cores, and from the submit on it competes with the host thread for them.
// Samples are short (a millisecond or two) and many, so that on a machine shared with other
// work most of them run on a core undisturbed: the median is then the host cost, not the wait
// for a core. (Process CPU time is no better a clock here: Linux adds the other threads' time,
// the software GPU's among them, in scheduler-tick chunks larger than a sample.) tfjs submits
// every few ops by itself; that is part of its host cost.
import { readFileSync } from 'node:fs';
import type { Gpu } from '../src/gpu/context.ts';
import { Tensor, tensor, tidy } from '../src/tensor/tensor.ts';
import { add } from '../src/ops/elementwise.ts';
import { matmul } from '../src/ops/matmul.ts';
import { layerNorm } from '../src/ops/layernorm.ts';
import { gatherRows } from '../src/ops/gather.ts';
import { attention } from '../src/ops/attention.ts';
import { GPT2_EOS_ID } from '../src/gpt2/tokenizer.ts';
import { encode, disposePast } from '../src/prompt/train.ts';
import { seededRandom } from '../src/util/random.ts';
import { promptTrainer, type BenchModel } from './pipeline.ts';
import { recordReplay, encodeReplay } from './timing.ts';

export interface OverheadOptions {
  /** Ops per sample for cheap kernels (below 512, the engine's dispatches per command buffer); ops with long kernels get a quarter. */
  reps: number;
  /** Timed samples after one warm-up sample. */
  samples: number;
  /** Timed training steps after two warm-up steps. */
  steps: number;
}

export interface HostCost {
  name: string;
  /** Per op: median and fastest sample of the host time to encode it, and median time to completion (submit and wait included). */
  hostUs: number;
  hostMinUs: number;
  totalUs: number;
}

export interface StepCost {
  name: string;
  dispatches: number;
  /** Bind groups made in the last step (the rest were found cached); null where the engine does not count them. */
  bindGroupsMade: number | null;
  /** Median and fastest host ms of one step until all of its work is encoded, and median ms until its loss is back. */
  hostMs: number;
  /**
   * Median process CPU ms of the same part: a step's encoding outlasts the slices a shared
   * machine gives a thread, so its wall time mostly counts waiting for a core, while the GPU is
   * idle until the step submits, so the process's CPU time is the host thread's.
   */
  hostCpuMs: number;
  /**
   * Median on-CPU ms of the main thread alone over the same part (Linux schedstat; null
   * elsewhere): the process's CPU time also counts V8's own threads (concurrent marking, the
   * optimising compiler), which run beside the step on a 2-core machine.
   */
  hostThreadMs: number | null;
  hostMinMs: number;
  totalMs: number;
  /** Median ms for Dawn alone to encode the same dispatches (replayed, not submitted); null for a captured step, whose dispatches are the fast path's. */
  dawnMs: number | null;
  /** A captured step: the steps it replayed (the timed ones, once it replays from its third). */
  replayed: number | null;
}

/** The main thread's on-CPU nanoseconds so far, where Linux tells them. */
function mainThreadNs(): number | null {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A pause after the queue reports its work done: a software adapter's worker threads are still
 * winding down on the same cores then, and a sample started at once is partly theirs.
 */
const settle = () => pause(5);

/**
 * Untimed ops before a sample's timed ones. How long the host thread stays cold depends on
 * what the software GPU did during the wait: after 32 matmuls [40,768]×[768,768] (4 ms each on
 * lavapipe, a 2.4 MB weight streamed through both cores' caches) the next 32 matmuls were
 * still 30-60% slower to encode after 8 untimed ones (3.6-4.4 µs per op against 2.7-2.8 in
 * 128-op samples), 2.8-3.3 µs after 32 and 2.7-2.8 after 96, measured. A GPU leaves the
 * host's caches alone; 64 puts every case past that.
 */
const WARM_OPS = 64;

/**
 * Rounds of samples measured before the timed ones and dropped: the first compiles pipelines
 * and fills caches, and a fresh process's first few thousand ops run slower while V8 settles on
 * optimised code (measured: matmul's median 2-3× in a process's first round what it was a
 * round later). A training loop runs its ops for thousands of steps, past that.
 */
const WARM_ROUNDS = 10;

/** One op whose host cost is measured: encode it once, submit what was encoded, wait for the queue. */
export interface CostCase {
  name: string;
  encodeOne: () => void;
  submit: () => void;
  wait: () => Promise<void>;
  /** Ops per sample. */
  reps: number;
}

/** Cases to measure together, and what frees what they use once measured. */
export interface CostSet {
  cases: CostCase[];
  dispose: () => void | Promise<void>;
}

/**
 * Host (encoding) and total µs per op of every case, over `samples` samples of each, taken in
 * turn: sample 1 of every case, then sample 2 of every case, and so on. A shared machine's
 * slow minutes then fall on every case alike, so their ratios (the engine's op against Dawn's
 * floor) hold within one run, where one case's samples after another's drifted by 30% between
 * runs. Cases that leave the process much garbage or the device much cleanup (tfjs's ops) are
 * measured in a call of their own, not in turn with the cases they would slow.
 */
export async function measureInTurn(cases: readonly CostCase[], samples: number): Promise<HostCost[]> {
  const host = cases.map((): number[] => []);
  const total = cases.map((): number[] => []);
  for (let round = 0; round < WARM_ROUNDS + samples; round++) {
    if (round === WARM_ROUNDS) {
      // The timed rounds start with no garbage left by earlier work (the setup's large host
      // arrays among it). Only here: the sample right after a collection runs up to 2× slower
      // (measured on Dawn's floor), and the garbage the ops make themselves is part of their
      // cost. Needs node --expose-gc (npm run bench has it).
      (globalThis as { gc?: () => void }).gc?.();
      await pause(50);
    }
    // Rounds rotate which case comes first, so none always follows the same neighbour.
    for (let turn = 0; turn < cases.length; turn++) {
      const c = (round + turn) % cases.length;
      const { encodeOne, submit, wait, reps } = cases[c]!;
      await wait();
      await settle();
      // The first ops after the wait find the host thread cold (its caches refilled by the
      // software GPU's threads, its core clocked down): 200-400 µs for the first add, measured.
      // A training step's hundreds of back-to-back dispatches are past that, so a sample times
      // the ops after WARM_OPS untimed ones, the same for every case.
      const begin = performance.now();
      for (let i = 0; i < WARM_OPS; i++) encodeOne();
      const start = performance.now();
      for (let i = 0; i < reps; i++) encodeOne();
      const encoded = performance.now();
      submit();
      await wait();
      const done = performance.now();
      if (round < WARM_ROUNDS) continue;
      host[c]!.push(((encoded - start) * 1000) / reps);
      total[c]!.push(((done - begin) * 1000) / (reps + WARM_OPS));
    }
  }
  return cases.map(({ name }, c) => ({ name, hostUs: median(host[c]!), hostMinUs: Math.min(...host[c]!), totalUs: median(total[c]!) }));
}

const TRIVIAL_KERNEL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> counter: array<u32>;
@compute @workgroup_size(1) fn main() { counter[0] = counter[0] + 1u; }`;

/**
 * Encoding straight into Dawn on the engine's device: one compute pass open at a time, then
 * submitted, or finished and dropped without running. Replays of recorded work are dropped:
 * the tensors they bind may be freed and reused by then, and their encoding is what counts.
 */
function rawPass(device: GPUDevice) {
  let encoder: GPUCommandEncoder | null = null;
  let pass: GPUComputePassEncoder | null = null;
  const finish = () => {
    pass!.end();
    const commands = encoder!.finish();
    encoder = null;
    pass = null;
    return commands;
  };
  return {
    open: () => {
      encoder ??= device.createCommandEncoder();
      pass ??= encoder.beginComputePass();
      return pass;
    },
    submit: () => device.queue.submit([finish()]),
    drop: () => void finish(),
    wait: () => device.queue.onSubmittedWorkDone(),
  };
}

export const DAWN_REUSED = 'Dawn alone, bind group reused';
export const DAWN_FRESH = 'Dawn alone, new bind group per dispatch';

/** Dawn alone on the engine's device: setPipeline + setBindGroup + dispatch of a trivial kernel, with one bind group reused and with a new one per dispatch. */
export function dawnFloor(gpu: Gpu, reps: number): CostSet {
  gpu.flush();
  const device = gpu.device;
  const module = device.createShaderModule({ code: TRIVIAL_KERNEL });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const layout = pipeline.getBindGroupLayout(0);
  const buffer = device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
  const entries = [{ binding: 0, resource: { buffer, offset: 0, size: 256 } }];
  const group = device.createBindGroup({ layout, entries });
  const raw = rawPass(device);
  const dispatchWith = (makeGroup: () => GPUBindGroup) => () => {
    const p = raw.open();
    p.setPipeline(pipeline);
    p.setBindGroup(0, makeGroup());
    p.dispatchWorkgroups(1);
  };
  return {
    cases: [
      { name: DAWN_REUSED, encodeOne: dispatchWith(() => group), submit: raw.submit, wait: raw.wait, reps },
      { name: DAWN_FRESH, encodeOne: dispatchWith(() => device.createBindGroup({ layout, entries })), submit: raw.submit, wait: raw.wait, reps },
    ],
    dispose: () => buffer.destroy(),
  };
}

/**
 * Dawn alone doing what one call of `op` dispatches: its pipelines and bind groups (made once),
 * setPipeline + setBindGroup + dispatch each, encoded and not submitted. Dawn's cost grows with
 * the bindings it tracks per dispatch, so this is the floor of that op, where the trivial
 * kernel's is the floor of any. Its total is its host time (nothing runs).
 */
function dawnReplayCase(gpu: Gpu, name: string, op: () => Tensor, reps: number): { case: CostCase; uniforms: GPUBuffer } {
  const { steps, uniforms } = tidy(() => recordReplay(gpu, op));
  const raw = rawPass(gpu.device);
  return { case: { name, encodeOne: () => encodeReplay(raw.open(), steps), submit: raw.drop, wait: () => gpu.sync(), reps }, uniforms };
}

function randomTensor(gpu: Gpu, shape: number[], seed: number, label?: string): Tensor {
  const random = seededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(gpu, Float32Array.from({ length: n }, () => 2 * random() - 1), shape, { label });
}

/** The name of Dawn's case for an engine op's own dispatches. */
export const dawnOf = (op: string): string => `Dawn alone, ${op}'s dispatches`;

/**
 * The engine's ops of the table (inputs made once; each output disposed once the next call has
 * made its own), and Dawn alone doing each op's dispatches. Ops with long kernels take a
 * quarter of `reps` per sample.
 */
export function engineOps(gpu: Gpu, reps: number): CostSet & { names: string[] } {
  const long = Math.max(1, reps >> 2);
  const submit = () => gpu.flush();
  const wait = () => gpu.sync();
  const made: Tensor[] = [];
  const make = (shape: number[], seed: number) => {
    const t = randomTensor(gpu, shape, seed);
    made.push(t);
    return t;
  };
  const a64 = make([64], 1);
  const b64 = make([64], 2);
  const x = make([40, 768], 3);
  const w = make([768, 768], 4);
  const bias = make([768], 5);
  const gamma = make([768], 6);
  const beta = make([768], 7);
  const table = make([1024, 768], 8);
  const ids = Uint32Array.from({ length: 40 }, (_, i) => (i * 37) % 1024);
  // One attention call of the prompt step: batch 8, 5 new positions over a 128-position past, 12 heads of 64.
  const qkv = make([8, 5, 3 * 768], 9);
  const past = { k: make([8, 12, 128, 64], 10), v: make([8, 12, 128, 64], 11), lengths: new Uint32Array(8).fill(128) };
  const ops: { name: string; op: () => Tensor; long?: boolean }[] = [
    { name: 'add [64] + [64]', op: () => add(a64, b64) },
    { name: 'matmul [40,768]×[768,768] + bias', op: () => matmul(x, w, { bias }), long: true },
    { name: 'layerNorm [40,768]', op: () => layerNorm(x, gamma, beta) },
    { name: 'gather 40 rows of [1024,768]', op: () => gatherRows(table, ids) },
    { name: 'attention B8 P5 over past 128', op: () => attention(qkv, 12, { past }), long: true },
  ];
  const cases: CostCase[] = [];
  const uniforms: GPUBuffer[] = [];
  // The output a call made, alive until the next call has made its own. Disposed at once, the
  // next call's output got the same buffer, so every call bound what the one before it bound
  // and Dawn's setBindGroup was skipped: cheaper than any training step's dispatches, each of
  // which binds other buffers than the one before it.
  let held: Tensor | null = null;
  for (const { name, op, long: isLong } of ops) {
    const n = isLong ? long : reps;
    const encodeOne = () => {
      const out = op();
      held?.dispose();
      held = out;
    };
    cases.push({ name, encodeOne, submit, wait, reps: n });
    const dawn = dawnReplayCase(gpu, dawnOf(name), op, n);
    cases.push(dawn.case);
    uniforms.push(dawn.uniforms);
  }
  return {
    names: ops.map((o) => o.name),
    cases,
    dispose: () => {
      held?.dispose();
      for (const t of made) t.dispose();
      for (const u of uniforms) u.destroy();
    },
  };
}

/**
 * One prompt + head training step (forward over a cached past, backward, Adam), as train()
 * takes it: its dispatches, the host time until all of its work is encoded (the command
 * buffers that filled up on the way submitted, the last one not), and the time until its loss
 * is back. Steps start with the GPU idle.
 */
export async function promptStep(gpu: Gpu, bench: BenchModel, opts: { batch: number; past: number; steps: number; capture?: boolean }, name: string): Promise<StepCost> {
  const { model } = bench;
  const random = seededRandom(1);
  const width = opts.past;
  const tokens = new Uint32Array(opts.batch * width).map(() => Math.floor(random() * GPT2_EOS_ID));
  const past = encode(model, { ids: tokens, lengths: new Uint32Array(opts.batch).fill(width), width });
  const trainer = promptTrainer(bench, past, { capture: opts.capture ?? false });
  const times = await timeSteps(gpu, trainer.encodeStep, opts.steps, name);
  const replayed = trainer.capture ? trainer.capture.replayed : null;
  const dawn = trainer.capture ? null : await dawnStepCost(gpu, trainer.encodeStep, opts.steps);
  trainer.dispose();
  disposePast(past);
  return {
    name, dispatches: times.dispatches, bindGroupsMade: times.bindGroupsMade, hostMs: median(times.host), hostCpuMs: median(times.hostCpu),
    hostThreadMs: times.hostThread.length ? median(times.hostThread) : null, hostMinMs: Math.min(...times.host), totalMs: median(times.total), dawnMs: dawn, replayed,
  };
}

/** Per timed step: ms until encoded (wall, process CPU, main thread) and until its loss is back. */
export interface StepTimes {
  host: number[];
  hostCpu: number[];
  /** Empty where Linux does not tell the main thread's own time. */
  hostThread: number[];
  total: number[];
  /** Of the last step. */
  dispatches: number;
  bindGroupsMade: number | null;
}

const WARM_STEPS = 2;

/**
 * Runs `encodeStep` WARM_STEPS untimed times and then `steps` timed ones, each started with
 * the GPU idle, reading its loss back (which must be finite). Only the device's counters are
 * used, so bench/step-ab.ts times other checkouts' engines with it.
 */
export async function timeSteps(gpu: Gpu, encodeStep: () => Tensor, steps: number, name: string): Promise<StepTimes> {
  const times: StepTimes = { host: [], hostCpu: [], hostThread: [], total: [], dispatches: 0, bindGroupsMade: null };
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const groupsMade = () => (gpu as { bindGroupsMade?: number }).bindGroupsMade ?? null;
  for (let s = 0; s < steps + WARM_STEPS; s++) {
    await gpu.sync();
    const before = gpu.dispatches;
    const madeBefore = groupsMade();
    const start = performance.now();
    const cpuStart = cpuMs();
    const threadStart = mainThreadNs();
    const loss = encodeStep();
    const encoded = performance.now();
    const cpu = cpuMs() - cpuStart;
    const threadEnd = mainThreadNs();
    const value = (await loss.readF32())[0]!;
    const done = performance.now();
    loss.dispose();
    if (!Number.isFinite(value)) throw new Error(`${name}: loss is ${value}`);
    times.dispatches = gpu.dispatches - before;
    times.bindGroupsMade = madeBefore === null ? null : groupsMade()! - madeBefore;
    if (process.env.OVERHEAD_TRACE) console.log(`step ${s}: ${times.dispatches} dispatches, ${times.bindGroupsMade} bind groups made, host ${(encoded - start).toFixed(1)} ms, ${cpu.toFixed(1)} ms CPU`);
    if (s < WARM_STEPS) continue;
    times.host.push(encoded - start);
    times.hostCpu.push(cpu);
    if (threadStart !== null && threadEnd !== null) times.hostThread.push((threadEnd - threadStart) / 1e6);
    times.total.push(done - start);
  }
  return times;
}

/**
 * Dawn alone encoding one step's dispatches (recorded from a further step), not submitted,
 * each time just after a real step has run, as the engine's own step starts. Median ms.
 */
async function dawnStepCost(gpu: Gpu, encodeStep: () => Tensor, steps: number): Promise<number> {
  const { steps: replay, uniforms } = tidy(() => recordReplay(gpu, () => encodeStep()));
  const raw = rawPass(gpu.device);
  const dawn: number[] = [];
  for (let s = 0; s < steps + WARM_STEPS; s++) {
    const loss = encodeStep();
    await loss.readF32();
    loss.dispose();
    const start = performance.now();
    encodeReplay(raw.open(), replay);
    const encoded = performance.now();
    raw.drop();
    if (s >= WARM_STEPS) dawn.push(encoded - start);
  }
  uniforms.destroy();
  return median(dawn);
}
