// Every kernel the engine can launch, by name: the built-in families of kernels/*.wgsl and the
// WGSL that ops generate or users register. One registry, so a user's kernel is compiled,
// specialised (//#if feature blocks), cached and recorded exactly as a built-in one.
import { KERNELS, KERNEL_SNIPPETS } from './kernel-sources.generated.ts';
import { expandIncludes } from './features.ts';

/** A kernel family's name: a built-in one or any name given to registerKernel. */
export type KernelName = string;

/** The sources with their `//#include`d snippets (kernels/lib/*.wgsl) appended. */
const sources = new Map<KernelName, string>(Object.entries(KERNELS).map(([name, source]) => [name, withSnippets(source)]));

function withSnippets(source: string): string {
  return expandIncludes(source, (name) => (Object.hasOwn(KERNEL_SNIPPETS, name) ? KERNEL_SNIPPETS[name as keyof typeof KERNEL_SNIPPETS] : undefined));
}

/**
 * Makes `source` (WGSL, may use //#if blocks and //#include the snippets of kernels/lib: see
 * features.ts) launchable as `name`.
 * Registering the same source again is a no-op; another source under a taken name throws,
 * since pipelines already compiled from the old one would silently keep running.
 */
export function registerKernel(name: KernelName, source: string): void {
  if (!name) throw new TypeError('registerKernel: a kernel needs a non-empty name');
  const expanded = withSnippets(source);
  const existing = sources.get(name);
  if (existing === undefined) sources.set(name, expanded);
  else if (existing !== expanded) throw new Error(`registerKernel: a different kernel named '${name}' is already registered`);
}

/** Whether a kernel of this name is registered. */
export function hasKernel(name: KernelName): boolean {
  return sources.has(name);
}

/** The WGSL of a registered kernel, its included snippets appended, or a clear error naming the unknown one. */
export function kernelSource(name: KernelName): string {
  const source = sources.get(name);
  if (source === undefined) throw new Error(`no kernel named '${name}' is registered (registerKernel adds one)`);
  return source;
}

/** The registered kernels' names, built-in first. */
export function kernelNames(): KernelName[] {
  return [...sources.keys()];
}
