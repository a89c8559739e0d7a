import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { testGpu } from '../helpers.ts';
import { openGpu } from '../../src/node/device.ts';
import { GpuError, type Gpu } from '../../src/gpu/context.ts';
import { tensor, Tensor } from '../../src/tensor/tensor.ts';
import { add } from '../../src/ops/elementwise.ts';
import { packParams } from '../../src/gpu/params.ts';
import { kernelClassOf } from '../../src/gpu/kernel-class.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('device', () => {
  it('opens an adapter with its own limits, not the defaults', () => {
    expect(gpu.adapterName.length).toBeGreaterThan(0);
    // The WebGPU default is 128 MiB / 8 per stage; compat defaults are lower still.
    expect(gpu.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(8);
    expect(gpu.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(gpu.limits.maxBufferSize).toBeGreaterThan(256 * 1024 * 1024);
  });

  it('rejects an unknown backend with a clear message', async () => {
    await expect(openGpu({ backend: 'nonsense' as never })).rejects.toThrow(/unknown backend 'nonsense'/);
  });

  it('prefers the software GL ES adapter to a CPU Vulkan adapter (measured 2.5-3× faster), unless Vulkan is asked for', async (ctx) => {
    const vulkan = await openGpu({ backend: 'vulkan', quiet: true }).catch(() => null);
    if (!vulkan || !/\(vulkan, /.test(vulkan.adapterName) || !/llvmpipe|lavapipe|swiftshader/i.test(vulkan.adapterName)) {
      vulkan?.destroy();
      return ctx.skip('no CPU Vulkan adapter here');
    }
    vulkan.destroy();
    expect(gpu.adapterName).toMatch(/\(opengles, compatibility\)/);
  });

  it('takes the kernel features to use from GPT2_PROMPT_FEATURES, and rejects unknown ones', async () => {
    const saved = process.env.GPT2_PROMPT_FEATURES;
    try {
      process.env.GPT2_PROMPT_FEATURES = 'none';
      const plain = await openGpu({ quiet: true });
      expect([...plain.kernelFeatures]).toEqual([]);
      plain.destroy();
      process.env.GPT2_PROMPT_FEATURES = 'subgroups,fp64';
      await expect(openGpu({ quiet: true })).rejects.toThrow(/unknown kernel feature 'fp64' in GPT2_PROMPT_FEATURES/);
    } finally {
      if (saved === undefined) delete process.env.GPT2_PROMPT_FEATURES;
      else process.env.GPT2_PROMPT_FEATURES = saved;
    }
  });

  it('picks the CPU kernel family for software adapters and the GPU family for GPUs, by adapter description', () => {
    // Descriptions as describeAdapter writes them for adapters the engine has run on, and the
    // family each must get, written down by hand (not derived from kernel-class.ts).
    const adapters: [string, 'cpu' | 'gpu'][] = [
      ['llvmpipe-llvm-15-0-6-256-bits- OpenGL version OpenGL ES 3.2 Mesa 22.3.6 (opengles, compatibility)', 'cpu'],
      ['mesa software llvmpipe-llvm-15-0-6-256-bits- llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1 (vulkan, core)', 'cpu'],
      ['mesa cpu lavapipe Mesa 25.0.7 (vulkan, core)', 'cpu'],
      ['google swiftshader SwiftShader Device (Subzero) (vulkan, core)', 'cpu'],
      ['Google Inc. (Google) ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver) (deno, core)', 'cpu'],
      ['mesa softpipe (opengles, compatibility)', 'cpu'],
      ['nvidia nvidia-h200 NVIDIA: 580.159.04 580.159.4.0 (default, core)', 'gpu'],
      ['apple metal-3 Apple M2 (metal, core)', 'gpu'],
      ['amd rdna-3 AMD Radeon RX 7900 XTX (vulkan, core)', 'gpu'],
      ['intel gen-12lp Intel(R) UHD Graphics 770 (d3d12, core)', 'gpu'],
    ];
    expect(adapters.map(([name]) => kernelClassOf(name))).toEqual(adapters.map(([, family]) => family));
  });

  it('runs the kernel class GPT2_PROMPT_KERNELS names (default: by adapter), and rejects others', async () => {
    expect(gpu.kernelClass).toBe(process.env.GPT2_PROMPT_KERNELS || kernelClassOf(gpu.adapterName));
    const saved = process.env.GPT2_PROMPT_KERNELS;
    try {
      process.env.GPT2_PROMPT_KERNELS = gpu.kernelClass === 'cpu' ? 'gpu' : 'cpu';
      const other = await openGpu({ quiet: true });
      expect(other.kernelClass).toBe(process.env.GPT2_PROMPT_KERNELS);
      other.destroy();
      process.env.GPT2_PROMPT_KERNELS = 'tpu';
      await expect(openGpu({ quiet: true })).rejects.toThrow(/unknown kernel class 'tpu' in GPT2_PROMPT_KERNELS: expected cpu or gpu/);
    } finally {
      if (saved === undefined) delete process.env.GPT2_PROMPT_KERNELS;
      else process.env.GPT2_PROMPT_KERNELS = saved;
    }
  });

  it('lets explicit arguments win over the environment', async () => {
    const saved = process.env.GPT2_PROMPT_KERNELS;
    try {
      process.env.GPT2_PROMPT_KERNELS = 'tpu';
      const explicit = await openGpu({ quiet: true, kernelClass: 'cpu' });
      expect(explicit.kernelClass).toBe('cpu');
      explicit.destroy();
    } finally {
      if (saved === undefined) delete process.env.GPT2_PROMPT_KERNELS;
      else process.env.GPT2_PROMPT_KERNELS = saved;
    }
  });

  it('checks storage binding sizes before dispatch, naming the tensor and the limit', () => {
    const limit = gpu.limits.maxStorageBufferBindingSize;
    const big = Tensor.empty(gpu, [limit / 4 + 16], 'f32', 'wte');
    try {
      expect(() => add(big, big)).toThrow(GpuError);
      expect(() => add(big, big)).toThrow(new RegExp(`wte \\[${limit / 4 + 16}\\] needs a ${limit + 64}-byte storage binding.*${limit}`));
    } finally {
      big.dispose();
    }
  });

  it('surfaces a WebGPU validation error as an exception at the next read, never a silent result', async () => {
    const gpu2 = await openGpu({ quiet: true });
    const x = tensor(gpu2, [1, 2, 3, 4], [4]);
    // A bind group that claims more bytes than the buffer has: invalid.
    gpu2.dispatch({
      kernel: 'elementwise',
      entry: 'scale',
      params: packParams(4, 0, 0),
      bindings: [x.binding(), { buffer: x.binding().buffer, size: 1 << 20 }],
      workgroups: [1],
    });
    await expect(x.read()).rejects.toThrow(GpuError);
    gpu2.destroy();
  });

  it('lets the process exit by itself when work is done', () => {
    const script = `
      import { openGpu } from './src/node/device.ts';
      import { tensor } from './src/tensor/tensor.ts';
      import { add } from './src/ops/elementwise.ts';
      const gpu = await openGpu({ quiet: true });
      const x = tensor(gpu, [1, 2], [2]);
      console.log(Array.from(await add(x, x).read()).join(','));
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(run.error).toBeUndefined();
    expect(run.stdout.trim()).toBe('2,4');
    expect(run.status).toBe(0);
  });
});

describe('running out of GPU memory', () => {
  it('fails the next read with a message naming the allocation and what to lower', async () => {
    const gpu2 = await openGpu({ quiet: true });
    // Simulate the adapter refusing the next allocation (a real one cannot be forced safely here).
    const device = gpu2.device as GPUDevice & { popErrorScope: () => Promise<GPUError | null> };
    const original = device.popErrorScope.bind(device);
    device.popErrorScope = () => {
      device.popErrorScope = original;
      void original();
      return Promise.resolve({ message: 'Out of memory' } as GPUError);
    };
    const x = tensor(gpu2, new Float32Array(1000), [1000], { label: 'past of layer 7' });
    await expect(x.read()).rejects.toThrow(/allocating 4096 bytes for past of layer 7 .*does not fit in GPU memory: lower the batch size or the max length/);
    gpu2.destroy();
  });
});
