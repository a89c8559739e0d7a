// The one kernel registry: built-in families and registered WGSL side by side, a name taken once,
// snippets included, and a registered kernel launched exactly as a built-in one.
import { beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers.ts';
import { hasKernel, kernelNames, kernelSource, registerKernel } from '../../src/gpu/registry.ts';
import { packParams, grid } from '../../src/gpu/params.ts';
import { tensor, Tensor } from '../../src/tensor/tensor.ts';
import type { Gpu } from '../../src/gpu/context.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const TRIPLE = `
override WG: u32 = 64u;
//#include <index>
struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < p.n) { dst[i] = 3.0 * src[i]; }
}
`;

describe('kernel registry', () => {
  it('holds the built-in families, and a registered kernel after them', () => {
    registerKernel('test.triple', TRIPLE);
    const names = kernelNames();
    for (const builtIn of ['elementwise', 'matmul', 'attention', 'movement', 'reduce']) expect(names).toContain(builtIn);
    expect(names.indexOf('test.triple')).toBeGreaterThan(names.indexOf('matmul'));
    expect(hasKernel('test.triple')).toBe(true);
    expect(hasKernel('test.nothing')).toBe(false);
  });

  it('appends the snippets a kernel includes, once', () => {
    registerKernel('test.triple', TRIPLE);
    const source = kernelSource('test.triple');
    expect(source.match(/fn flat_index/g)).toHaveLength(1);
    expect(source).not.toMatch(/^\/\/#include/m);
  });

  it('takes a name once: the same source again is a no-op, another one an error', () => {
    registerKernel('test.triple', TRIPLE);
    expect(() => registerKernel('test.triple', TRIPLE)).not.toThrow();
    expect(() => registerKernel('test.triple', TRIPLE.replace('3.0', '4.0'))).toThrow(/a different kernel named 'test.triple' is already registered/);
    expect(() => registerKernel('', TRIPLE)).toThrow(/non-empty name/);
    expect(() => kernelSource('test.nothing')).toThrow(/no kernel named 'test.nothing' is registered/);
  });

  it('launches a registered kernel as it launches a built-in one', async () => {
    registerKernel('test.triple', TRIPLE);
    const n = 131;
    const x = tensor(gpu, Float32Array.from({ length: n }, (_, i) => i - 60.5), [n]);
    const y = Tensor.empty(gpu, [n]);
    gpu.dispatch({ kernel: 'test.triple', entry: 'main', params: packParams(n), bindings: [x.binding(), y.binding()], workgroups: grid(n, 64) });
    expect(Array.from(await y.readF32())).toEqual(Array.from({ length: n }, (_, i) => 3 * (i - 60.5)));
  });
});
