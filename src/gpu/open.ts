// Opening a device through any web-standard WebGPU entry point: navigator.gpu in a web page
// or in Deno, or the GPU object a Node binding creates (src/node/device.ts).
import { Gpu, GpuError } from './context.ts';
import type { KernelFeature } from './features.ts';
import type { KernelClass } from './kernel-class.ts';

/** Optional device features requested where the adapter offers them. */
const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[];

export function describeAdapter(adapter: GPUAdapter, featureLevel: string, backend: string): string {
  const info = adapter.info;
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ').trim();
  return `${name || 'unknown adapter'} (${backend}, ${featureLevel})`;
}

/**
 * The limits the engine's kernels and buffers can use, at what the adapter supports, so we are
 * not held to the (low) defaults. Only these: asking for every limit makes Dawn warn about
 * the ones it cannot grant in full (the dynamic-offset buffers per pipeline layout).
 */
const USED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

function adapterLimits(adapter: GPUAdapter): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const key of USED_LIMITS) limits[key] = adapter.limits[key];
  return limits;
}

/** A Gpu on a device of its own (destroy() destroys it) on the adapter, with its limits and the optional features it offers. */
export async function gpuOnAdapter(
  entry: GPU,
  adapter: GPUAdapter,
  name: string,
  choices: { kernelFeatures?: readonly KernelFeature[]; kernelClass?: KernelClass | undefined } = {},
): Promise<Gpu> {
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits: adapterLimits(adapter) });
  return new Gpu(device, name, { wgslLanguageFeatures: (entry.wgslLanguageFeatures ?? new Set()) as ReadonlySet<string>, ...choices, ownsDevice: true });
}

export interface WebGpuOptions {
  /** The WebGPU entry point (default: navigator.gpu). */
  gpu?: GPU;
  /** Kernel features to use where offered (default all); [] runs every fallback. */
  kernelFeatures?: readonly KernelFeature[];
  /** The kernel family (default: by adapter, see kernelClassOf). */
  kernelClass?: KernelClass;
  /** Names the host in the adapter description (default 'webgpu'). */
  host?: string;
}

/** Opens the host's WebGPU adapter: `await openWebGpu()` in a page or in Deno (--unstable-webgpu). */
export async function openWebGpu(options: WebGpuOptions = {}): Promise<Gpu> {
  const entry = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!entry) throw new GpuError('this host offers no WebGPU (navigator.gpu is undefined): in Deno run with --unstable-webgpu; in a browser use one with WebGPU enabled, on a page served over https or from localhost');
  const adapter = await entry.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new GpuError('navigator.gpu.requestAdapter() found no adapter');
  const { kernelFeatures, kernelClass } = options;
  return gpuOnAdapter(entry, adapter, describeAdapter(adapter, 'core', options.host ?? 'webgpu'), { ...(kernelFeatures ? { kernelFeatures } : {}), kernelClass });
}
