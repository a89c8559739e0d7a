// The convolutional network's modules: PyTorch's initial distributions, state-dict keys and
// buffers, batch norm's training/evaluation behaviour against float64, the pools against
// float64, Dropout's seeding. Their composition against PyTorch itself is test/nn/cnn.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { nn, tensor, type Tensor } from '../../src/engine.ts';
import { testGpu, randn, asF32, expectClose } from '../helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

/** Inside ±bound, reaching near both ends, std bound/√3 within 5 standard errors: U(±bound). */
function expectUniform(name: string, v: Float64Array, bound: number) {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  expect(Math.max(...v.map(Math.abs)), name).toBeLessThanOrEqual(bound);
  expect(Math.max(...v), name).toBeGreaterThan(bound * (1 - 20 / v.length));
  expect(Math.min(...v), name).toBeLessThan(-bound * (1 - 20 / v.length));
  expect(Math.abs(std - bound / Math.sqrt(3)), name).toBeLessThan((5 * 0.45 * bound) / Math.sqrt(3 * v.length));
}

describe('Conv1d and Conv2d', () => {
  it('weight [out, in/groups, ...kernel] and bias [out] from U(±1/√fan_in), fan_in = in/groups·kh·kw', async () => {
    const conv = new nn.Conv2d(gpu, 12, 40, [3, 5], { groups: 4, seed: 1 });
    expect(conv.weight.shape).toEqual([40, 3, 3, 5]);
    expect([...conv.stateDict().keys()]).toEqual(['weight', 'bias']);
    expectUniform('Conv2d weight', await values(conv.weight), 1 / Math.sqrt(3 * 3 * 5));
    const wide = new nn.Conv2d(gpu, 1, 2000, 1, { seed: 2 });
    expectUniform('Conv2d bias', await values(wide.bias!), 1);
    const c1 = new nn.Conv1d(gpu, 6, 300, 4, { bias: false, seed: 3 });
    expect(c1.weight.shape).toEqual([300, 6, 4]);
    expect(c1.bias).toBeNull();
    expect([...c1.stateDict().keys()]).toEqual(['weight']);
    expectUniform('Conv1d weight', await values(c1.weight), 1 / Math.sqrt(24));
    expect(() => new nn.Conv2d(gpu, 6, 4, 3, { groups: 4 })).toThrow(/Conv2d: inChannels 6 and outChannels 4 must be divisible by groups=4/);
    expect(() => new nn.Conv1d(gpu, 2, 4, 0)).toThrow(/Conv1d: kernelSize must be a positive integer, got 0/);
    for (const m of [conv, wide, c1]) m.dispose();
  });

  it('Conv1d forward with stride, padding and dilation against float64', async () => {
    const [n, c, l, o, k] = [2, 3, 11, 4, 3];
    const conv = new nn.Conv1d(gpu, c, o, k, { stride: 2, padding: 2, dilation: 2, seed: 4 });
    const x = asF32(randn(n * c * l, 5));
    const w = await values(conv.weight);
    const b = await values(conv.bias!);
    const out = conv.forward(tensor(gpu, x, [n, c, l]));
    const lo = Math.floor((l + 4 - 2 * (k - 1) - 1) / 2) + 1;
    expect(out.shape).toEqual([n, o, lo]);
    const want: number[] = [];
    for (let s = 0; s < n; s++)
      for (let oc = 0; oc < o; oc++)
        for (let p = 0; p < lo; p++) {
          let acc = b[oc]!;
          for (let ic = 0; ic < c; ic++)
            for (let t = 0; t < k; t++) {
              const i = p * 2 - 2 + t * 2;
              if (i >= 0 && i < l) acc += x[(s * c + ic) * l + i]! * w[(oc * c + ic) * k + t]!;
            }
          want.push(acc);
        }
    expectClose('Conv1d', await out.read(), want, { atol: 1e-5, rtol: 1e-5 });
    conv.dispose();
  });

  it('Conv2d passes stride, padding and dilation as pairs', () => {
    const conv = new nn.Conv2d(gpu, 2, 3, [3, 1], { stride: [2, 1], padding: [1, 0], dilation: [1, 2], seed: 6 });
    expect(conv.forward(tensor(gpu, new Float32Array(2 * 2 * 9 * 7), [2, 2, 9, 7])).shape).toEqual([2, 3, 5, 7]);
    conv.dispose();
  });
});

describe('BatchNorm1d and BatchNorm2d', () => {
  const [n, c, hw] = [3, 4, 5];
  const x = asF32(randn(n * c * hw, 7).map((v, i) => 2 * v + (i % 3)));
  /** Per-channel mean and biased variance of x [n, c, hw], in float64. */
  const batchStats = () =>
    Array.from({ length: c }, (_, ch) => {
      const vs: number[] = [];
      for (let s = 0; s < n; s++) for (let p = 0; p < hw; p++) vs.push(x[(s * c + ch) * hw + p]!);
      const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
      return { mean, variance: vs.reduce((a, b) => a + (b - mean) ** 2, 0) / vs.length, count: vs.length };
    });
  const normalised = (stat: (ch: number) => { mean: number; variance: number }, eps: number) =>
    Array.from(x, (v, i) => {
      const { mean, variance } = stat(Math.floor(i / hw) % c);
      return (v - mean) / Math.sqrt(variance + eps);
    });

  it("torch's state: weight ones, bias zeros, running_mean zeros, running_var ones, num_batches_tracked 0 (u32)", async () => {
    const bn = new nn.BatchNorm2d(gpu, 3);
    expect([...bn.stateDict().keys()]).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expect(bn.parameters()).toEqual([bn.weight, bn.bias]);
    const state = bn.stateDict();
    expect(await Promise.all([...state.values()].map(async (t) => [...(await t.read())]))).toEqual([[1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1], [0]]);
    expect(state.get('num_batches_tracked')!.dtype).toBe('u32');
    expect(state.get('num_batches_tracked')!.shape).toEqual([]);
    const bare = new nn.BatchNorm1d(gpu, 3, { affine: false, trackRunningStats: false });
    expect([...bare.stateDict().keys()]).toEqual([]);
    bn.dispose();
    bare.dispose();
  });

  it('training: the batch normalises, running statistics move by momentum (variance unbiased), the counter counts', async () => {
    const bn = new nn.BatchNorm1d(gpu, c, { momentum: 0.3, eps: 1e-3 });
    const stats = batchStats();
    for (let step = 1; step <= 2; step++) {
      const out = bn.forward(tensor(gpu, x, [n, c, hw]));
      expectClose(`output ${step}`, await out.read(), normalised((ch) => stats[ch]!, 1e-3), { atol: 1e-5, rtol: 1e-5 });
      expect([...(await bn.numBatchesTracked!.read())]).toEqual([step]);
    }
    const keep = 0.7 ** 2;
    expectClose('running_mean', await bn.runningMean!.read(), stats.map((s) => (1 - keep) * s.mean), { atol: 1e-6, rtol: 1e-5 });
    expectClose('running_var', await bn.runningVar!.read(), stats.map((s) => keep + ((1 - keep) * s.variance * s.count) / (s.count - 1)), { atol: 1e-6, rtol: 1e-5 });
    // Evaluation: the running statistics normalise; nothing moves.
    bn.eval();
    const mean = await values(bn.runningMean!);
    const variance = await values(bn.runningVar!);
    const out = bn.forward(tensor(gpu, x, [n, c, hw]));
    expectClose('eval output', await out.read(), normalised((ch) => ({ mean: mean[ch]!, variance: variance[ch]! }), 1e-3), { atol: 1e-5, rtol: 1e-5 });
    expect([...(await bn.numBatchesTracked!.read())]).toEqual([2]);
    expect(await values(bn.runningMean!)).toEqual(mean);
    bn.dispose();
  });

  it('without running statistics the batch normalises in evaluation too', async () => {
    const bn = new nn.BatchNorm2d(gpu, c, { trackRunningStats: false }).eval();
    const out = bn.forward(tensor(gpu, x, [n, c, 1, hw]));
    const stats = batchStats();
    expectClose('output', await out.read(), normalised((ch) => stats[ch]!, 1e-5), { atol: 1e-5, rtol: 1e-5 });
    bn.dispose();
  });

  it('refuses momentum=null, bad shapes and channel counts with the layer named', async () => {
    expect(() => new nn.BatchNorm2d(gpu, 2, { momentum: null })).toThrow(/BatchNorm2d: momentum=null \(torch's cumulative moving average\) is not supported/);
    const bn1 = new nn.BatchNorm1d(gpu, 4);
    const bn2 = new nn.BatchNorm2d(gpu, 4);
    expect(() => bn2.forward(tensor(gpu, new Float32Array(8), [2, 4]))).toThrow(/BatchNorm2d\(4\): input \[2, 4\] must be \[N, C, H, W\] with C = 4/);
    expect(() => bn1.forward(tensor(gpu, new Float32Array(12), [2, 6]))).toThrow(/BatchNorm1d\(4\): input \[2, 6\] must be \[N, C\] or \[N, C, L\] with C = 4/);
    // A batch batchNorm refuses is not counted.
    expect(() => bn1.forward(tensor(gpu, new Float32Array(4), [1, 4]))).toThrow(/batchNorm: training needs more than 1 value per channel/);
    expect([...(await bn1.numBatchesTracked!.read())]).toEqual([0]);
    bn1.dispose();
    bn2.dispose();
  });
});

describe('MaxPool2d and AvgPool2d', () => {
  it('have no state and pool with stride and padding as float64 windows do', async () => {
    const [h, w] = [5, 6];
    const x = asF32(randn(2 * h * w, 8));
    const max = new nn.MaxPool2d([3, 2], { stride: [2, 2], padding: [1, 0] });
    const avg = new nn.AvgPool2d(2, { stride: 1, padding: 1 });
    expect([...max.stateDict().keys(), ...avg.stateDict().keys()]).toEqual([]);
    const window = (pool: 'max' | 'avg', k: number[], s: number[], p: number[]) => {
      const oh = Math.floor((h + 2 * p[0]! - k[0]!) / s[0]!) + 1;
      const ow = Math.floor((w + 2 * p[1]! - k[1]!) / s[1]!) + 1;
      const out: number[] = [];
      for (let ch = 0; ch < 2; ch++)
        for (let i = 0; i < oh; i++)
          for (let j = 0; j < ow; j++) {
            let acc = pool === 'max' ? -Infinity : 0;
            for (let a = 0; a < k[0]!; a++)
              for (let b = 0; b < k[1]!; b++) {
                const [y, xx] = [i * s[0]! - p[0]! + a, j * s[1]! - p[1]! + b];
                const v = y >= 0 && y < h && xx >= 0 && xx < w ? x[(ch * h + y) * w + xx]! : pool === 'max' ? -Infinity : 0;
                acc = pool === 'max' ? Math.max(acc, v) : acc + v;
              }
            out.push(pool === 'max' ? acc : acc / (k[0]! * k[1]!));
          }
      return out;
    };
    const input = tensor(gpu, x, [1, 2, h, w]);
    expectClose('MaxPool2d', await max.forward(input).read(), window('max', [3, 2], [2, 2], [1, 0]), { atol: 0, rtol: 0 });
    expectClose('AvgPool2d', await avg.forward(input).read(), window('avg', [2, 2], [1, 1], [1, 1]), { atol: 1e-6, rtol: 1e-6 });
  });
});

describe('Dropout', () => {
  const size = 4000;
  const input = () => tensor(gpu, new Float32Array(size).fill(1), [size]);

  it('is the identity in evaluation and drops about p, scaling the rest by 1/(1 − p), in training', async () => {
    const drop = new nn.Dropout(0.25, { seed: 9 });
    expect(drop.p).toBe(0.25);
    const out = await values(drop.forward(input()));
    const kept = out.filter((v) => v !== 0);
    expect(new Set(kept)).toEqual(new Set([Math.fround(1 / 0.75)]));
    // 1000 dropped expected; the binomial's std is 27.
    expect(Math.abs(size - kept.length - 1000)).toBeLessThan(5 * 27);
    drop.eval();
    expect([...(await values(drop.forward(input())))]).toEqual(new Array(size).fill(1));
    expect(new nn.Dropout().p).toBe(0.5);
    expect(() => new nn.Dropout(1.5)).toThrow(/Dropout: probability p must be in \[0, 1\], got 1.5/);
  });

  it('draws a fresh mask each training call, the same sequence from the same seed', async () => {
    const masks = async (seed: number) => {
      const drop = new nn.Dropout(0.5, { seed });
      const first = await values(drop.forward(input()));
      drop.eval();
      drop.forward(input());
      drop.train();
      return [first, await values(drop.forward(input()))];
    };
    const [a1, a2] = await masks(11);
    const [b1, b2] = await masks(11);
    const [c1] = await masks(12);
    expect(a1).toEqual(b1);
    expect(a2).toEqual(b2);
    expect(a1).not.toEqual(a2);
    expect(a1).not.toEqual(c1);
    // Unrelated masks agree on about half the elements (std 32).
    const agree = a1!.filter((v, i) => v === a2![i]).length;
    expect(Math.abs(agree - size / 2)).toBeLessThan(5 * 32);
  });
});
