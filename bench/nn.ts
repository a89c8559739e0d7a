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
  /** tfjs's programs for one pass, by class name. */
  tfjsPrograms: string[];
  /** Largest |got − float64| / scale over the checked outputs and gradients. */
  oursMaxError: number;
  tfjsMaxError: number;
}

/** One side ready to time: `run` encodes one pass. */
interface Prepared {
  ours: () => void;
  tfjs: () => void;
  oursDispatches: number;
  tfjsPrograms: string[];
  oursMaxError: number;
  tfjsMaxError: number;
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
        oursMaxError,
        tfjsMaxError,
        dispose: () => {
          for (const t of [...leaves, dyT]) t.dispose();
          for (const t of [...theirs, theirDy]) t.dispose();
        },
      };
    },
  };
}

const ENTRIES: NnEntry[] = [conv2dEntry({ n: 32, c: 16, h: 16, w: 16, o: 32, k: 3, padding: 1 })];

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
        tfjsPrograms: prepared.tfjsPrograms,
        oursMaxError: prepared.oursMaxError,
        tfjsMaxError: prepared.tfjsMaxError,
      });
    } finally {
      prepared.dispose();
    }
  }
  await peer.sync();
  return { adapter: peer.adapter, version: peer.tf.version_core, results };
}
