// Node edge: opens a GPUDevice through Dawn (npm `webgpu`). Everything Node-specific about
// getting a device lives here; the engine core only ever sees the GPUDevice.
import type { Gpu } from '../gpu/context.ts';
import { KERNEL_FEATURES, type KernelFeature } from '../gpu/features.ts';
import { KERNEL_CLASSES, kernelClassOf, type KernelClass } from '../gpu/kernel-class.ts';
import { describeAdapter as describe, gpuOnAdapter } from '../gpu/open.ts';
import { relaxDawnPolling } from './polling.ts';
import { checkNumerics } from '../tensor/numerics.ts';

export type Backend = 'auto' | 'vulkan' | 'opengles' | 'metal' | 'd3d12';

export interface OpenOptions {
  /** Which Dawn backend; `auto` (default) tries the hardware default, then the software adapter. Env: GPT2_PROMPT_BACKEND. */
  backend?: Backend;
  /** Suppress the one-line note about falling back to the software adapter. */
  quiet?: boolean;
  /**
   * Kernel features to use where offered (default all: shader-f16, subgroups); [] runs every
   * fallback. Env: GPT2_PROMPT_FEATURES, a comma list or `none`.
   */
  kernelFeatures?: readonly KernelFeature[];
  /**
   * The kernel family: 'cpu' (register-blocked, for software adapters) or 'gpu' (workgroup-shared
   * tiles); default by adapter. Env: GPT2_PROMPT_KERNELS.
   */
  kernelClass?: KernelClass;
  /**
   * How a wait polls Dawn: 'spin' (the binding's own: a core busy until the GPU is done) or
   * 'relaxed' (spin 2 ms, then poll once a millisecond; see polling.ts). Default: relaxed on a
   * software adapter, whose kernels need that core, spin on a GPU. Env: GPT2_PROMPT_POLL.
   */
  polling?: Polling;
  /**
   * Check every op's output for NaN and ±Inf, throwing at the next read for the first op that
   * made one (checkNumerics; slow, for finding where a NaN starts). Env: GPT2_PROMPT_CHECK_NUMERICS=1.
   */
  checkNumerics?: boolean;
}

export type Polling = 'spin' | 'relaxed';
const POLLINGS: readonly Polling[] = ['spin', 'relaxed'];

// Mesa's EGL must not look for a display server; it reads this when Dawn first opens EGL.
process.env.EGL_PLATFORM ??= 'surfaceless';

const BACKENDS: readonly Backend[] = ['auto', 'vulkan', 'opengles', 'metal', 'd3d12'];
let fallbackNoted = false;
const liveInstances: GPU[] = [];

interface Candidate {
  gpu: GPU;
  adapter: GPUAdapter;
  featureLevel: 'core' | 'compatibility';
}

async function tryAdapter(create: (flags: string[]) => GPU, flags: string[], featureLevel: 'core' | 'compatibility'): Promise<Candidate | null> {
  const gpu = create(flags);
  const adapter = await gpu.requestAdapter({ featureLevel, powerPreference: 'high-performance' } as GPURequestAdapterOptions);
  return adapter ? { gpu, adapter, featureLevel } : null;
}

/** Opens the best available device: a hardware GPU through Dawn's default backend, else the software adapter. */
export async function openGpu(options: OpenOptions = {}): Promise<Gpu> {
  // An explicit argument wins; the environment fills in what the caller left open.
  const requested = options.backend ?? (process.env.GPT2_PROMPT_BACKEND as Backend | undefined) ?? 'auto';
  if (!BACKENDS.includes(requested)) {
    throw new Error(`unknown backend '${requested}' (--backend, or GPT2_PROMPT_BACKEND): expected one of ${BACKENDS.join(', ')}`);
  }
  const kernelFeatures = featuresWanted(options.kernelFeatures);
  const kernelClass = (options.kernelClass ?? (process.env.GPT2_PROMPT_KERNELS || undefined)) as KernelClass | undefined;
  if (kernelClass !== undefined && !KERNEL_CLASSES.includes(kernelClass)) {
    throw new Error(`unknown kernel class '${kernelClass}' in ${options.kernelClass !== undefined ? 'kernelClass' : 'GPT2_PROMPT_KERNELS'}: expected ${KERNEL_CLASSES.join(' or ')}`);
  }
  const polling = (options.polling ?? (process.env.GPT2_PROMPT_POLL || undefined)) as Polling | undefined;
  if (polling !== undefined && !POLLINGS.includes(polling)) {
    throw new Error(`unknown polling '${polling}' in ${options.polling !== undefined ? 'polling' : 'GPT2_PROMPT_POLL'}: expected ${POLLINGS.join(' or ')}`);
  }
  const { create, globals } = (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU; globals: object };
  // The engine core uses the standard globals (GPUBufferUsage, GPUMapMode, ...), as in a browser.
  for (const [name, value] of Object.entries(globals)) (globalThis as Record<string, unknown>)[name] ??= value;

  let found: Candidate | null = null;
  let backendName: string = requested;
  if (requested === 'auto') {
    found = await tryAdapter(create, [], 'core');
    backendName = 'default';
    // A CPU Vulkan adapter (lavapipe, where Dawn admits it) ran our kernels 2.5-3× slower than
    // llvmpipe through GL ES on the same Mesa 25 and machine, so the software GL ES adapter
    // is preferred to it; an explicit --backend vulkan still gets it.
    if (!found || found.adapter.info.isFallbackAdapter) {
      const gles = await tryAdapter(create, ['backend=opengles'], 'compatibility');
      if (gles || !found) {
        found = gles;
        backendName = 'opengles';
        if (found && !options.quiet && !fallbackNoted) {
          fallbackNoted = true;
          process.stderr.write(`gpt2-prompt: no hardware GPU adapter found; using the software adapter: ${describe(found.adapter, 'compatibility', 'opengles')}\n`);
        }
      }
    }
  } else {
    const flags = [`backend=${requested}`];
    found = (await tryAdapter(create, flags, 'core')) ?? (await tryAdapter(create, flags, 'compatibility'));
  }
  if (!found) {
    throw new Error(
      requested === 'auto'
        ? 'no WebGPU adapter found. On Linux without a GPU install the software adapter: ' +
            'apt-get install libegl1 libegl-mesa0 libegl-dev libgles2 libgl1-mesa-dri'
        : `no WebGPU adapter for backend '${requested}'`,
    );
  }

  const adapterName = describe(found.adapter, found.featureLevel, backendName);
  if ((polling ?? (kernelClassOf(adapterName) === 'cpu' ? 'relaxed' : 'spin')) === 'relaxed') relaxDawnPolling();
  const gpu = await gpuOnAdapter(found.gpu, found.adapter, adapterName, { kernelFeatures, kernelClass });
  if (options.checkNumerics ?? process.env.GPT2_PROMPT_CHECK_NUMERICS === '1') checkNumerics(gpu, true);
  // Dropping the last reference to a Dawn instance while its device is in use is not safe.
  liveInstances.push(found.gpu);
  return gpu;
}

function featuresWanted(fromOptions: readonly KernelFeature[] | undefined): readonly KernelFeature[] {
  if (fromOptions !== undefined) return fromOptions;
  const env = process.env.GPT2_PROMPT_FEATURES;
  if (env === undefined) return KERNEL_FEATURES;
  const names = env === 'none' || env === '' ? [] : env.split(',').map((f) => f.trim());
  for (const name of names) {
    if (!KERNEL_FEATURES.includes(name as KernelFeature)) {
      throw new Error(`unknown kernel feature '${name}' in GPT2_PROMPT_FEATURES: expected 'none' or a comma list of ${KERNEL_FEATURES.join(', ')}`);
    }
  }
  return names as KernelFeature[];
}
