// Neural-network layers against TensorFlow.js's WebGPU backend on the same adapter, in the
// same process: each entry is a forward and backward pass (every gradient) on data that lives
// on the GPU. Both sides are first checked against a float64 reference at sampled elements,
// then timed in turn, so their ratio shares the machine's load.
// Each side uses its own native layout (ours NCHW as PyTorch, tfjs NHWC); the data are the
// same numbers. The timing is bench/paired.ts's. An entry is one NnEntry in ENTRIES: a name and a prepare() that builds, checks
// and hands back both sides' runs.
import type { Gpu } from '../src/gpu/context.ts';
import { tensor, tidy, type Tensor } from '../src/tensor/tensor.ts';
import { conv2d } from '../src/ops/conv.ts';
import { seededRandom } from '../src/util/random.ts';
import { pairedSamples, pairedSummary, type PairedOptions, type PairedSummary } from './paired.ts';
import { tfjsSession, type TfjsSession } from './peers/tfjs.ts';
import { tfjsProgramsOf, type ResidentBackend } from './ops.ts';

type TfTensor = import('@tensorflow/tfjs-core').Tensor;

export type NnOptions = PairedOptions;

/** Times are per forward + backward pass. */
export interface NnResult extends PairedSummary {
  name: string;
  oursDispatches: number;
  tfjsDispatches: number;
  /** How many of tfjs's programs one pass runs, by class name. */
  tfjsPrograms: Record<string, number>;
  /** How both sides were checked before timing, in words (errors against float64, or losses side by side). */
  check: string;
}

/** One side ready to time: `run` encodes one pass. */
interface Prepared {
  ours: () => void;
  tfjs: () => void;
  oursDispatches: number;
  tfjsPrograms: string[];
  check: string;
  dispose: () => void;
}

interface NnEntry {
  name: string;
  prepare: (gpu: Gpu, peer: TfjsSession) => Promise<Prepared>;
}

const TOLERANCE = 1e-5;

function hostValues(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => 2 * random() - 1);
}

/** A float64 value and the sum of the magnitudes of its terms (what f32 rounding scales with). */
interface Reference {
  value: number;
  scale: number;
}

/**
 * Checks `got` against `reference` at sampled elements (the first, the last, random ones);
 * returns the largest error relative to the terms' scale, throwing past TOLERANCE.
 */
function check(what: string, got: ArrayLike<number>, reference: (i: number) => Reference): number {
  const random = seededRandom(5);
  let worst = 0;
  for (const i of [0, got.length - 1, ...Array.from({ length: 254 }, () => Math.floor(random() * got.length))]) {
    const want = reference(i);
    const err = Math.abs(got[i]! - want.value) / Math.max(want.scale, 1e-30);
    if (!(err <= TOLERANCE)) throw new Error(`${what}: element ${i} is ${got[i]}, float64 reference ${want.value}`);
    worst = Math.max(worst, err);
  }
  return worst;
}

/** NCHW ↔ NHWC of host data: tfjs's layout of the same numbers. */
function toChannelsLast(x: Float32Array, [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n!; b++) for (let ch = 0; ch < c!; ch++) for (let p = 0; p < h! * w!; p++) out[(b * h! * w! + p) * c! + ch] = x[(b * c! + ch) * h! * w! + p]!;
  return out;
}

function toChannelsFirst(x: Float32Array, [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n!; b++) for (let ch = 0; ch < c!; ch++) for (let p = 0; p < h! * w!; p++) out[(b * c! + ch) * h! * w! + p] = x[(b * h! * w! + p) * c! + ch]!;
  return out;
}

/** [O, C, KH, KW] → tfjs's filter layout [KH, KW, C, O], and back. */
function toFilter(wt: Float32Array, [o, c, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(wt.length);
  for (let a = 0; a < o!; a++) for (let b = 0; b < c!; b++) for (let k = 0; k < kh! * kw!; k++) out[(k * c! + b) * o! + a] = wt[(a * c! + b) * kh! * kw! + k]!;
  return out;
}

function fromFilter(f: Float32Array, [o, c, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(f.length);
  for (let a = 0; a < o!; a++) for (let b = 0; b < c!; b++) for (let k = 0; k < kh! * kw!; k++) out[(a * c! + b) * kh! * kw! + k] = f[(k * c! + b) * o! + a]!;
  return out;
}

interface ConvShape {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: number;
  /** Zero padding on every side; stride and dilation 1, so the output is (H + 2p − k + 1)². */
  padding: number;
}

/** Float64 forward and gradients of a stride-1 conv2d with bias, element by NCHW flat index. */
function convReferences(s: ConvShape, x: Float32Array, wt: Float32Array, bias: Float32Array, dy: Float32Array) {
  const ho = s.h + 2 * s.padding - s.k + 1;
  const wo = s.w + 2 * s.padding - s.k + 1;
  const xAt = (n: number, c: number, y: number, xx: number) => (y < 0 || y >= s.h || xx < 0 || xx >= s.w ? 0 : x[((n * s.c + c) * s.h + y) * s.w + xx]!);
  const wAt = (o: number, c: number, ky: number, kx: number) => wt[((o * s.c + c) * s.k + ky) * s.k + kx]!;
  const dyAt = (n: number, o: number, y: number, xx: number) => (y < 0 || y >= ho || xx < 0 || xx >= wo ? 0 : dy[((n * s.o + o) * ho + y) * wo + xx]!);
  const sum = (terms: (add: (t: number) => void) => void, start = 0): Reference => {
    let value = start;
    let scale = Math.abs(start);
    terms((t) => {
      value += t;
      scale += Math.abs(t);
    });
    return { value, scale };
  };
  const coords = (i: number, d1: number, d2: number, d3: number) => [Math.floor(i / (d1 * d2 * d3)), Math.floor(i / (d2 * d3)) % d1, Math.floor(i / d3) % d2, i % d3] as const;
  return {
    ho,
    wo,
    y: (i: number) => {
      const [n, o, oy, ox] = coords(i, s.o, ho, wo);
      return sum((add) => {
        for (let c = 0; c < s.c; c++) for (let ky = 0; ky < s.k; ky++) for (let kx = 0; kx < s.k; kx++) add(xAt(n, c, oy + ky - s.padding, ox + kx - s.padding) * wAt(o, c, ky, kx));
      }, bias[o]!);
    },
    dx: (i: number) => {
      const [n, c, yy, xx] = coords(i, s.c, s.h, s.w);
      return sum((add) => {
        for (let o = 0; o < s.o; o++) for (let ky = 0; ky < s.k; ky++) for (let kx = 0; kx < s.k; kx++) add(dyAt(n, o, yy - ky + s.padding, xx - kx + s.padding) * wAt(o, c, ky, kx));
      });
    },
    dw: (i: number) => {
      const [o, c, ky, kx] = coords(i, s.c, s.k, s.k);
      return sum((add) => {
        for (let n = 0; n < s.n; n++) for (let oy = 0; oy < ho; oy++) for (let ox = 0; ox < wo; ox++) add(dyAt(n, o, oy, ox) * xAt(n, c, oy + ky - s.padding, ox + kx - s.padding));
      });
    },
    db: (o: number) =>
      sum((add) => {
        for (let n = 0; n < s.n; n++) for (let p = 0; p < ho * wo; p++) add(dy[(n * s.o + o) * ho * wo + p]!);
      }),
  };
}

/** conv2d with bias, forward and the gradients of input, weight and bias (the output's gradient given). */
function conv2dEntry(s: ConvShape): NnEntry {
  return {
    name: `conv2d fwd+bwd x [${s.n}, ${s.c}, ${s.h}, ${s.w}], w [${s.o}, ${s.c}, ${s.k}, ${s.k}], padding ${s.padding}, bias`,
    prepare: async (gpu, { tf, sync }) => {
      // tfjs-core registers its gradients only when asked (its union package does it on load).
      await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
      const xShape = [s.n, s.c, s.h, s.w];
      const wShape = [s.o, s.c, s.k, s.k];
      const x = hostValues(s.n * s.c * s.h * s.w, 1);
      const wt = hostValues(s.o * s.c * s.k * s.k, 2);
      const bias = hostValues(s.o, 3);
      const ref0 = convReferences(s, x, wt, bias, new Float32Array(0));
      const yShape = [s.n, s.o, ref0.ho, ref0.wo];
      const dy = hostValues(s.n * s.o * ref0.ho * ref0.wo, 4);
      const ref = convReferences(s, x, wt, bias, dy);
      const checkAll = (side: string, got: Float32Array[]) =>
        Math.max(check(`${side} y`, got[0]!, ref.y), check(`${side} dx`, got[1]!, ref.dx), check(`${side} dw`, got[2]!, ref.dw), check(`${side} db`, got[3]!, ref.db));

      const leaves = [tensor(gpu, x, xShape, { requiresGrad: true }), tensor(gpu, wt, wShape, { requiresGrad: true }), tensor(gpu, bias, [s.o], { requiresGrad: true })] as const;
      const dyT = tensor(gpu, dy, yShape);
      const pass = (): Tensor => {
        const out = conv2d(leaves[0], leaves[1], leaves[2], { padding: s.padding });
        out.backward(dyT);
        return out;
      };
      const clearGrads = () => {
        for (const leaf of leaves) {
          leaf.grad?.dispose();
          leaf.grad = null;
        }
      };
      const before = gpu.dispatches;
      const y = tidy(pass);
      const oursDispatches = gpu.dispatches - before;
      const oursGot = await Promise.all([y, ...leaves.map((l) => l.grad!)].map(async (t) => (await t.read()) as Float32Array));
      y.dispose();
      clearGrads();
      const oursMaxError = checkAll('ours', oursGot);

      const backend = tf.backend() as unknown as ResidentBackend;
      const theirs = [tf.tensor(toChannelsLast(x, xShape), [s.n, s.h, s.w, s.c]), tf.tensor(toFilter(wt, wShape), [s.k, s.k, s.c, s.o]), tf.tensor(bias, [s.o])];
      const theirDy = tf.tensor(toChannelsLast(dy, yShape), [s.n, ref.ho, ref.wo, s.o]);
      for (const t of [...theirs, theirDy]) backend.uploadToGPU(t.dataId);
      await sync();
      const forward = tf.valueAndGrads((xt: TfTensor, ft: TfTensor, bt: TfTensor) => tf.add(tf.conv2d(xt as never, ft as never, 1, s.padding), bt));
      const tfjsPass = () => {
        const { value, grads } = forward(theirs, theirDy);
        return [value, ...grads];
      };
      let outs: TfTensor[] = [];
      const tfjsPrograms = tfjsProgramsOf(backend, () => (outs = tfjsPass()));
      const data = (await Promise.all(outs.map((t) => t.data()))) as Float32Array[];
      for (const t of outs) t.dispose();
      const tfjsMaxError = checkAll('tfjs', [toChannelsFirst(data[0]!, yShape), toChannelsFirst(data[1]!, xShape), fromFilter(data[2]!, wShape), data[3]!]);

      return {
        ours: () => {
          tidy(() => void pass());
          clearGrads();
        },
        tfjs: () => {
          for (const t of tfjsPass()) t.dispose();
        },
        oursDispatches,
        tfjsPrograms,
        check: `max rel err vs float64 ours ${oursMaxError.toExponential(1)} / tfjs ${tfjsMaxError.toExponential(1)}`,
        dispose: () => {
          for (const t of [...leaves, dyT]) t.dispose();
          for (const t of [...theirs, theirDy]) t.dispose();
        },
      };
    },
  };
}

const ENTRIES: NnEntry[] = [conv2dEntry({ n: 32, c: 16, h: 16, w: 16, o: 32, k: 3, padding: 1 }), digitsCnnEpochEntry()];

function countByName(names: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

export async function nnBench(gpu: Gpu, options: NnOptions): Promise<{ adapter: string; version: string; results: NnResult[] }> {
  const peer = await tfjsSession(gpu.adapterName);
  const results: NnResult[] = [];
  for (const entry of ENTRIES) {
    const prepared = await entry.prepare(gpu, peer);
    try {
      const timed = await pairedSamples(
        [
          { run: prepared.ours, wait: () => gpu.sync() },
          { run: prepared.tfjs, wait: peer.sync },
        ],
        options,
      );
      results.push({
        name: entry.name,
        ...pairedSummary(timed),
        oursDispatches: prepared.oursDispatches,
        tfjsDispatches: prepared.tfjsPrograms.length,
        tfjsPrograms: countByName(prepared.tfjsPrograms),
        check: prepared.check,
      });
    } finally {
      prepared.dispose();
    }
  }
  await peer.sync();
  return { adapter: peer.adapter, version: peer.tf.version_core, results };
}

/**
 * One training epoch of examples/cnn-digits.ts's CNN (1,347 digits, batch 32, Adam) against the
 * same network in tfjs ops, NHWC: tf.conv2d, batch norm from tf.moments (running statistics
 * updated as ours are), tf.relu, tf.maxPool, tf.dropout, a dense layer, softmax cross entropy,
 * tf.train.adam. Both start from the same weights (ours, re-laid out) and see the same batches;
 * their first epochs' mean losses must agree within 25% (dropout's masks differ).
 */
function digitsCnnEpochEntry(): NnEntry {
  const batch = 32;
  const [c1, c2] = [16, 32];
  return {
    name: `digits CNN training epoch (conv ${c1}, conv ${c2}, batch norm, max pool, dropout 0.25; 1,347 rows, batch ${batch}, Adam)`,
    prepare: async (gpu, { tf, sync }) => {
      await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
      const { readDigits } = await import('../examples/mlp-digits.ts');
      const { digitsCnn, digitsBatch, encodeEpoch, epochOrder } = await import('../examples/cnn-digits.ts');
      const { Adam } = await import('../src/optim/adam.ts');
      const { train } = readDigits();
      const order = epochOrder(train.rows, 1, 1);
      const model = digitsCnn(gpu, { channels: [c1, c2], seed: 1 });
      const initial = new Map(await Promise.all([...model.stateDict()].map(async ([k, t]) => [k, (await t.read()) as Float32Array] as const)));
      const optimizer = new Adam(model.parameters(), { lr: 3e-3 });

      // The same weights in tfjs's layouts: filters [KH, KW, C, O]; the dense weight [H·W·C, 10]
      // in NHWC's flattening order, ours flattening NCHW as [10, C·H·W].
      const v = (values: Float32Array, shape: number[]) => tf.variable(tf.tensor(values, shape));
      const dense = new Float32Array(c2 * 4 * 10);
      for (let o = 0; o < 10; o++) for (let c = 0; c < c2; c++) for (let p = 0; p < 4; p++) dense[(p * c2 + c) * 10 + o] = initial.get('10.weight')![o * c2 * 4 + c * 4 + p]!;
      const params = [
        v(toFilter(initial.get('0.weight')!, [c1, 1, 3, 3]), [3, 3, 1, c1]), v(initial.get('0.bias')!, [c1]),
        v(initial.get('1.weight')!, [c1]), v(initial.get('1.bias')!, [c1]),
        v(toFilter(initial.get('4.weight')!, [c2, c1, 3, 3]), [3, 3, c1, c2]), v(initial.get('4.bias')!, [c2]),
        v(initial.get('5.weight')!, [c2]), v(initial.get('5.bias')!, [c2]),
        v(dense, [c2 * 4, 10]), v(initial.get('10.bias')!, [10]),
      ] as const;
      const running = [c1, c2].map((c) => ({ mean: tf.variable(tf.zeros([c]), false), variance: tf.variable(tf.ones([c]), false) }));
      const tfOptimizer = tf.train.adam(3e-3);
      type Variable = (typeof params)[number];
      const batches = Array.from({ length: Math.ceil(order.length / batch) }, (_, i) => digitsBatch(train, order.slice(i * batch, (i + 1) * batch)));

      const tfjsEpoch = (): TfTensor => {
        // A running sum: tf.addN of every batch's cost binds more buffers than a compatibility adapter allows.
        let total: TfTensor = tf.zeros([]);
        for (const { x, labels } of batches) {
          const rows = labels.length;
          const stats: { mean: TfTensor; variance: TfTensor; count: number }[] = [];
          const norm = (h: TfTensor, gamma: Variable, beta: Variable) => {
            const { mean, variance } = tf.moments(h, [0, 1, 2]);
            stats.push({ mean: tf.keep(mean), variance: tf.keep(variance), count: h.size / h.shape[3]! });
            return tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma), beta);
          };
          const block = (h: TfTensor, filter: Variable, bias: Variable, gamma: Variable, beta: Variable) =>
            tf.maxPool(tf.relu(norm(tf.add(tf.conv2d(h as never, filter as never, 1, 1), bias), gamma, beta)) as never, 2, 2, 'valid');
          const cost = tfOptimizer.minimize(() => {
            const input = tf.tensor(x, [rows, 8, 8, 1]);
            const h = block(block(input, params[0], params[1], params[2], params[3]), params[4], params[5], params[6], params[7]);
            const logits = tf.add(tf.matMul(tf.dropout(tf.reshape(h, [rows, c2 * 4]), 0.25), params[8]), params[9]);
            return tf.mul(tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(Int32Array.from(labels), "int32"), 10), logits), rows) as never;
          }, true, [...params]);
          const sum = tf.add(total, cost!);
          tf.dispose([total, cost!]);
          total = sum;
          tf.tidy(() => {
            stats.forEach(({ mean, variance, count }, i) => {
              running[i]!.mean.assign(tf.add(tf.mul(running[i]!.mean, 0.9), tf.mul(mean, 0.1)));
              running[i]!.variance.assign(tf.add(tf.mul(running[i]!.variance, 0.9), tf.mul(variance, (0.1 * count) / (count - 1))));
            });
          });
          for (const s of stats) tf.dispose([s.mean, s.variance]);
        }
        return total;
      };

      const before = gpu.dispatches;
      const ours = encodeEpoch(gpu, model, optimizer, train, order, batch);
      const oursDispatches = gpu.dispatches - before;
      const oursLoss = (await ours.readF32())[0]! / train.rows;
      ours.dispose();
      const backend = tf.backend() as unknown as ResidentBackend;
      let theirs: TfTensor | null = null;
      const tfjsPrograms = tfjsProgramsOf(backend, () => (theirs = tfjsEpoch()));
      const tfjsLoss = ((await theirs!.data()) as Float32Array)[0]! / train.rows;
      theirs!.dispose();
      await sync();
      if (!(Math.abs(oursLoss - tfjsLoss) <= 0.25 * Math.max(oursLoss, tfjsLoss))) {
        throw new Error(`digits CNN epoch: first-epoch mean losses differ: ours ${oursLoss}, tfjs ${tfjsLoss}`);
      }
      return {
        ours: () => encodeEpoch(gpu, model, optimizer, train, order, batch).dispose(),
        tfjs: () => tfjsEpoch().dispose(),
        oursDispatches,
        tfjsPrograms,
        check: `first-epoch mean loss ours ${oursLoss.toFixed(3)} / tfjs ${tfjsLoss.toFixed(3)}`,
        dispose: () => {
          model.dispose();
          optimizer.dispose();
          tfOptimizer.dispose();
          tf.dispose([...params, ...running.flatMap((r) => [r.mean, r.variance])]);
        },
      };
    },
  };
}
