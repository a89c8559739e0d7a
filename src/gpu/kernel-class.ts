// Which family of kernels suits an adapter. Software adapters run each workgroup on one CPU
// thread, an invocation per SIMD lane, where workgroup memory and barriers cost more than
// they save; GPUs need workgroup-shared tiles and enough workgroups to fill them.

export type KernelClass = 'cpu' | 'gpu';

export const KERNEL_CLASSES: readonly KernelClass[] = ['cpu', 'gpu'];

const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe/i;

/** The kernel class of an adapter, from its description (GPUAdapterInfo's vendor, architecture, device, description). */
export function kernelClassOf(adapterName: string): KernelClass {
  return CPU_ADAPTER.test(adapterName) ? 'cpu' : 'gpu';
}
