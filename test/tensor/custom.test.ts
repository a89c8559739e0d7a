// Custom ops: the example of docs/custom-kernels.md (x·y + z, whose backward is another custom
// kernel) checked like a built-in op: forward against float64, gradients against finite
// differences, trained with Adam against a float64 Adam, and replayed by CapturedStep bit for
// bit as the plain step runs.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, randn, asF32, expectClose, finiteDifferences } from '../helpers.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { grid } from '../../src/gpu/params.ts';
import { customOp } from '../../src/tensor/custom.ts';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.ts';
import { Adam } from '../../src/optim/adam.ts';
import { CapturedStep } from '../../src/tensor/capture.ts';
import { mul, sumToShape } from '../../src/ops/elementwise.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

// ---- The example of docs/custom-kernels.md ----

const WG = 64;

/** Inputs of one shape; the output has it too. */
function sameShapes(name: string) {
  return (inputs: readonly Tensor[]) => {
    for (const t of inputs) {
      if (t.shape.join() !== inputs[0]!.shape.join()) throw new RangeError(`${name}: inputs of shapes ${inputs.map((x) => `[${x.shape}]`).join(', ')} differ`);
    }
    return { shape: inputs[0]!.shape };
  };
}

/** a·b elementwise: the kernel multiplyAdd's backward is made of. */
const multiply: (a: Tensor, b: Tensor) => Tensor = customOp({
  name: 'example_multiply',
  wgsl: /* wgsl */ `
    struct Params { n: u32 }
    @group(0) @binding(0) var<uniform> p: Params;
    @group(0) @binding(1) var<storage, read> a: array<f32>;
    @group(0) @binding(2) var<storage, read> b: array<f32>;
    @group(0) @binding(3) var<storage, read_write> out: array<f32>;

    @compute @workgroup_size(${WG})
    fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
      let i = id.x + id.y * groups.x * ${WG}u;
      if (i < p.n) { out[i] = a[i] * b[i]; }
    }`,
  output: sameShapes('multiply'),
  params: (_, out) => [out.size],
  workgroups: (out) => grid(out.size, WG),
  backward: (g, [a, b], _out, needs) => [needs[0] ? multiply(g, b!) : null, needs[1] ? multiply(g, a!) : null],
});

/** x·y + z elementwise, in one kernel. */
const multiplyAdd: (x: Tensor, y: Tensor, z: Tensor) => Tensor = customOp({
  name: 'example_multiply_add',
  wgsl: /* wgsl */ `
    struct Params { n: u32 }
    @group(0) @binding(0) var<uniform> p: Params;
    @group(0) @binding(1) var<storage, read> x: array<f32>;
    @group(0) @binding(2) var<storage, read> y: array<f32>;
    @group(0) @binding(3) var<storage, read> z: array<f32>;
    @group(0) @binding(4) var<storage, read_write> out: array<f32>;

    @compute @workgroup_size(${WG})
    fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
      let i = id.x + id.y * groups.x * ${WG}u;
      if (i < p.n) { out[i] = x[i] * y[i] + z[i]; }
    }`,
  output: sameShapes('multiplyAdd'),
  params: (_, out) => [out.size],
  workgroups: (out) => grid(out.size, WG),
  // d/dx = g·y, d/dy = g·x, d/dz = g.
  backward: (g, [x, y], _out, needs) => [needs[0] ? multiply(g, y!) : null, needs[1] ? multiply(g, x!) : null, needs[2] ? g : null],
});

// ---- Checks ----

const SHAPE = [7, 149]; // 1043 elements: off the 64-wide workgroup grid.
const N = SHAPE[0]! * SHAPE[1]!;

/** sum((x·y + z)²) in float64. */
function lossOf(x: ArrayLike<number>, y: ArrayLike<number>, z: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const o = x[i]! * y[i]! + z[i]!;
    s += o * o;
  }
  return s;
}

describe('customOp', () => {
  it('runs a user WGSL kernel forward: x·y + z against float64', async () => {
    const [x, y, z] = [1, 2, 3].map((seed) => asF32(randn(N, seed)));
    const out = tidy(() => multiplyAdd(tensor(gpu, x, SHAPE), tensor(gpu, y, SHAPE), tensor(gpu, z, SHAPE)));
    expect(out.shape).toEqual(SHAPE);
    expectClose('multiplyAdd', await out.read(), Float64Array.from(x, (v, i) => v * y[i]! + z[i]!), { atol: 1e-6, rtol: 1e-6 });
    out.dispose();
  });

  it('differentiates through the user backward (another custom kernel), against finite differences', async () => {
    const values = [4, 5, 6].map((seed) => asF32(randn(N, seed)));
    const leaves = values.map((v) => tensor(gpu, v, SHAPE, { requiresGrad: true }));
    tidy(() => {
      const o = multiplyAdd(leaves[0]!, leaves[1]!, leaves[2]!);
      sumToShape(mul(o, o), [1]).backward();
    });
    for (let k = 0; k < 3; k++) {
      const numeric = finiteDifferences((v) => lossOf(...(values.map((u, j) => (j === k ? v : u)) as [Float64Array, Float64Array, Float64Array])), values[k]!, 1e-4);
      expectClose(`d loss / d input ${k}`, await leaves[k]!.grad!.read(), numeric, { atol: 1e-4, rtol: 1e-4 });
    }
    leaves.forEach((t) => t.dispose());
  });

  it('accumulates the gradient of an input used twice', async () => {
    const xv = asF32(randn(N, 7));
    const zv = asF32(randn(N, 8));
    const x = tensor(gpu, xv, SHAPE, { requiresGrad: true });
    const z = tensor(gpu, zv, SHAPE);
    // x·x + z: d/dx = 2x·g, reached through both of the kernel's first two inputs.
    tidy(() => multiplyAdd(x, x, z).backward(tensor(gpu, new Float32Array(N).fill(1), SHAPE)));
    expectClose('d/dx of x·x + z', await x.grad!.read(), Float64Array.from(xv, (v) => 2 * v), { atol: 0, rtol: 0 });
    x.dispose();
    z.dispose();
  });

  it('trains with Adam as a float64 Adam on the same gradients does', async () => {
    const [wv, yv, zv] = [9, 10, 11].map((seed) => asF32(randn(N, seed)));
    const w = tensor(gpu, wv, SHAPE, { requiresGrad: true });
    const y = tensor(gpu, yv, SHAPE);
    const z = tensor(gpu, zv, SHAPE);
    const lr = 0.01;
    const optimizer = new Adam([w], { lr });
    const reference = Float64Array.from(wv);
    const m = new Float64Array(N);
    const v = new Float64Array(N);
    for (let t = 1; t <= 4; t++) {
      tidy(() => {
        const o = multiplyAdd(w, y, z);
        sumToShape(mul(o, o), [1]).backward();
      });
      optimizer.step();
      optimizer.zeroGrad();
      for (let i = 0; i < N; i++) {
        const g = 2 * (reference[i]! * yv[i]! + zv[i]!) * yv[i]!;
        m[i] = 0.9 * m[i]! + 0.1 * g;
        v[i] = 0.999 * v[i]! + 0.001 * g * g;
        reference[i] = reference[i]! - (lr * (m[i]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]! / (1 - 0.999 ** t)) + 1e-8);
      }
    }
    expectClose('w after 4 Adam steps', await w.read(), reference, { atol: 1e-5, rtol: 1e-4 });
    expect(lossOf(await w.read(), yv, zv)).toBeLessThan(lossOf(wv, yv, zv));
    optimizer.dispose();
    [w, y, z].forEach((t) => t.dispose());
  });

  it('is replayed by CapturedStep bit for bit as the plain step runs', async () => {
    const steps = 5;
    const train = async (captured: boolean) => {
      const w = tensor(gpu, asF32(randn(N, 12)), SHAPE, { requiresGrad: true });
      const y = tensor(gpu, asF32(randn(N, 13)), SHAPE);
      const z = tensor(gpu, asF32(randn(N, 14)), SHAPE);
      const optimizer = new Adam([w], { lr: 0.01 });
      const step = () => {
        const o = multiplyAdd(w, y, z);
        const loss = sumToShape(mul(o, o), [1]);
        loss.backward();
        optimizer.update();
        optimizer.zeroGrad();
        return loss;
      };
      const capture = captured ? new CapturedStep(gpu, step) : null;
      const losses: number[] = [];
      for (let s = 0; s < steps; s++) {
        optimizer.prepare();
        const loss = capture ? capture.run() : tidy(step);
        losses.push((await loss.read())[0]!);
        loss.dispose();
      }
      const result = { losses, w: Array.from(await w.read()), replayed: capture?.replayed ?? 0 };
      capture?.dispose();
      optimizer.dispose();
      [w, y, z].forEach((t) => t.dispose());
      return result;
    };
    const plain = await train(false);
    const replayed = await train(true);
    expect(replayed.replayed).toBe(steps - 2);
    expect(replayed.losses).toEqual(plain.losses);
    expect(replayed.w).toEqual(plain.w);
  });

  it('rejects a second kernel under a taken name, bad shapes, and backward through an op without one', async () => {
    expect(() => customOp({ name: 'example_multiply', wgsl: '// other source', output: (i) => ({ shape: i[0]!.shape }), workgroups: () => [1] })).toThrow(
      /a different kernel named 'example_multiply' is already registered/,
    );
    const a = tensor(gpu, [1, 2, 3], [3], { requiresGrad: true });
    const b = tensor(gpu, [1, 2], [2]);
    expect(() => multiply(a, b)).toThrow(/multiply: inputs of shapes \[3\], \[2\] differ/);
    const square = customOp({
      name: 'example_square_no_backward',
      wgsl: /* wgsl */ `
        @group(0) @binding(1) var<storage, read> a: array<f32>;
        @group(0) @binding(2) var<storage, read_write> out: array<f32>;
        @compute @workgroup_size(1) fn main(@builtin(global_invocation_id) id: vec3<u32>) { out[id.x] = a[id.x] * a[id.x]; }`,
      output: (i) => ({ shape: i[0]!.shape }),
      workgroups: (out) => [out.size],
    });
    const s = square(a);
    expect(Array.from(await s.read())).toEqual([1, 4, 9]);
    expect(() => s.backward(tensor(gpu, [1, 1, 1], [3]))).toThrow(/example_square_no_backward: backward\(\) reached a custom op defined without a backward/);
    [a, b, s].forEach((t) => t.dispose());
  });
});
