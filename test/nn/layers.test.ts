// Layers: PyTorch's initial distributions (checked statistically), seeds, shapes, errors, and
// RMSNorm (torch 1.13 has no nn.RMSNorm for the PyTorch fixture) against float64 with
// finite-difference gradients. The other layers' forward and backward are checked against
// PyTorch in state-dict.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context.ts';
import { nn, tensor, sum, mul, type Tensor } from '../../src/engine.ts';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

function stats(v: Float64Array) {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { mean, std, min: Math.min(...v), max: Math.max(...v) };
}

/** U(−b, b): inside the bounds, reaching near both, mean 0 and std b/√3 within 5 standard errors. */
function expectUniform(name: string, v: Float64Array, bound: number) {
  const s = stats(v);
  const std = bound / Math.sqrt(3);
  expect(s.min, name).toBeGreaterThanOrEqual(-bound);
  expect(s.max, name).toBeLessThanOrEqual(bound);
  expect(s.min, name).toBeLessThan(-bound * (1 - 20 / v.length));
  expect(s.max, name).toBeGreaterThan(bound * (1 - 20 / v.length));
  expect(Math.abs(s.mean), name).toBeLessThan((5 * std) / Math.sqrt(v.length));
  // The std of a sample std of a uniform is about std·0.45/√n (kurtosis 1.8).
  expect(Math.abs(s.std - std), name).toBeLessThan((5 * 0.45 * std) / Math.sqrt(v.length));
}

describe('initialisation as PyTorch', () => {
  it('Linear: weight [out, in] and bias [out] from U(±1/√in)', async () => {
    const layer = new nn.Linear(gpu, 50, 400, { seed: 1 });
    expect(layer.weight.shape).toEqual([400, 50]);
    expect(layer.bias!.shape).toEqual([400]);
    expectUniform('weight', await values(layer.weight), 1 / Math.sqrt(50));
    expectUniform('bias', await values(layer.bias!), 1 / Math.sqrt(50));
    layer.dispose();
    const noBias = new nn.Linear(gpu, 3, 2, { bias: false, seed: 1 });
    expect(noBias.bias).toBeNull();
    expect([...noBias.stateDict().keys()]).toEqual(['weight']);
    noBias.dispose();
  });

  it('Embedding: N(0, 1)', async () => {
    const layer = new nn.Embedding(gpu, 500, 40, { seed: 2 });
    const s = stats(await values(layer.weight));
    const n = 500 * 40;
    expect(Math.abs(s.mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(s.std - 1)).toBeLessThan(5 * Math.sqrt(0.5 / n));
    expect(s.max).toBeGreaterThan(3);
    expect(s.min).toBeLessThan(-3);
    layer.dispose();
  });

  it('LayerNorm and RMSNorm: weight ones, bias zeros; eps 1e-5 and float32 epsilon', async () => {
    const ln = new nn.LayerNorm(gpu, [6]);
    expect([...(await ln.weight.read())]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...(await ln.bias.read())]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(ln.eps).toBe(1e-5);
    const rms = new nn.RMSNorm(gpu, 3);
    expect([...(await rms.weight.read())]).toEqual([1, 1, 1]);
    expect(rms.eps).toBe(1.1920928955078125e-7);
    const fixed = new nn.LayerNorm(gpu, 6, { elementwiseAffine: false });
    expect(fixed.parameters()).toEqual([]);
    expect([...fixed.stateDict().keys()]).toEqual([]);
    for (const m of [ln, rms, fixed]) m.dispose();
  });

  it('a seed gives the same values; another seed others', async () => {
    const [a, b, c] = [3, 3, 4].map((seed) => new nn.Linear(gpu, 4, 3, { seed }));
    expect(await values(a!.weight)).toEqual(await values(b!.weight));
    expect(await values(a!.bias!)).toEqual(await values(b!.bias!));
    expect(await values(a!.weight)).not.toEqual(await values(c!.weight));
    const [e, f] = [5, 5].map((seed) => new nn.Embedding(gpu, 4, 2, { seed }));
    expect(await values(e!.weight)).toEqual(await values(f!.weight));
    for (const m of [a, b, c, e, f]) m!.dispose();
  });
});

describe('layers', () => {
  it('Linear takes 1-D and batched inputs and checks the last dim', async () => {
    const layer = new nn.Linear(gpu, 3, 2, { seed: 6 });
    const w = await values(layer.weight);
    const b = await values(layer.bias!);
    const x = [0.5, -1, 2];
    const y = layer.forward(tensor(gpu, x, [3]));
    expect(y.shape).toEqual([2]);
    expectClose('linear 1-D', await y.read(), [0, 1].map((o) => b[o]! + x.reduce((s, xi, i) => s + xi * w[3 * o + i]!, 0)));
    expect(layer.forward(tensor(gpu, new Float32Array(2 * 4 * 3), [2, 4, 3])).shape).toEqual([2, 4, 2]);
    expect(() => layer.forward(tensor(gpu, [1, 2], [2]))).toThrow(/Linear\(3, 2\): input \[2\] must end in 3/);
    layer.dispose();
  });

  it('Embedding picks rows for ids of any shape', async () => {
    const layer = new nn.Embedding(gpu, 5, 2, { seed: 7 });
    const w = await values(layer.weight);
    const ids = [4, 0, 0, 2, 1, 3];
    const out = layer.forward(tensor(gpu, ids, [2, 3], { dtype: 'u32' }));
    expect(out.shape).toEqual([2, 3, 2]);
    expect([...(await out.read())]).toEqual(ids.flatMap((i) => [w[2 * i]!, w[2 * i + 1]!]).map(Math.fround));
    expect(layer.forward(Uint32Array.of(1, 1)).shape).toEqual([2, 2]);
    expect(() => layer.forward(Uint32Array.of(5))).toThrow(/index 5/);
    layer.dispose();
  });

  it('Flatten merges startDim..endDim', () => {
    const x = tensor(gpu, new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5]);
    expect(new nn.Flatten().forward(x).shape).toEqual([2, 60]);
    expect(new nn.Flatten(0, 1).forward(x).shape).toEqual([6, 4, 5]);
    expect(new nn.Flatten(1, -2).forward(x).shape).toEqual([2, 12, 5]);
    expect(() => new nn.Flatten(3, 1).forward(x)).toThrow(/Flatten\(3, 1\): dims out of range for \[2, 3, 4, 5\]/);
  });

  it("GELU is torch's: the erf form by default, the tanh form by name, anything else refused", async () => {
    // x·Φ(x) and 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) at -1, 1 and 2, from torch in float64; the
    // forms differ by 1.5e-4 to 1e-3 there, f32 holds 2 to 2.4e-7.
    const x = tensor(gpu, [-1, 1, 2], [3]);
    expectClose('GELU()', await new nn.GELU().forward(x).readF32(), [-0.15865525393145707, 0.8413447460685429, 1.9544997361036416], { atol: 5e-7, rtol: 0 });
    expectClose("GELU({ approximate: 'tanh' })", await new nn.GELU({ approximate: 'tanh' }).forward(x).readF32(), [-0.15880800939172324, 0.8411919906082768, 1.954597694087775], { atol: 5e-7, rtol: 0 });
    expect(new nn.GELU().approximate).toBe('none');
    expect(() => new nn.GELU({ approximate: 'erf' as 'none' })).toThrow(/GELU: approximate must be 'none' or 'tanh', got 'erf'/);
  });

  it('LayerNorm over several dims is refused with the shape', () => {
    expect(() => new nn.LayerNorm(gpu, [2, 3])).toThrow(/LayerNorm: normalizedShape \[2, 3\] is not supported/);
  });

  it('RMSNorm forward and gradients against float64 and finite differences', async () => {
    const [rows, n] = [5, 7];
    const layer = new nn.RMSNorm(gpu, n, { eps: 1e-3 });
    const weight = asF32(randn(n, 8, 0.5).map((v) => v + 1));
    layer.weight.write(Float32Array.from(weight));
    const x = asF32(randn(rows * n, 9));
    const w = asF32(randn(rows * n, 10));
    const forward = (xs: Float64Array, g: Float64Array) =>
      Float64Array.from(xs, (v, i) => {
        const r = Math.floor(i / n);
        const ms = xs.slice(r * n, r * n + n).reduce((a, b) => a + b * b, 0) / n;
        return (v / Math.sqrt(ms + 1e-3)) * g[i % n]!;
      });
    const objective = (xs: Float64Array, g: Float64Array) => forward(xs, g).reduce((a, y, i) => a + y * w[i]!, 0);
    const xt = tensor(gpu, x, [rows, n], { requiresGrad: true });
    const y = layer.forward(xt);
    expectClose('rmsNorm forward', await y.read(), forward(x, weight));
    sum(mul(y, tensor(gpu, w, [rows, n]))).backward();
    expectClose('rmsNorm dx', await xt.grad!.read(), finiteDifferences((v) => objective(v, weight), x), { atol: 1e-4 });
    expectClose('rmsNorm dweight', await layer.weight.grad!.read(), finiteDifferences((g) => objective(x, g), weight), { atol: 1e-4 });
    layer.dispose();
  });
});
