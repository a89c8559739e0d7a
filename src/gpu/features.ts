// Optional WebGPU features the kernels use where the device offers them, each with a fallback
// in the same kernel file. A kernel marks the code of a variant with line directives:
//
//   //#if subgroups          (or f16, or a flag the op passes, such as past_f16)
//   ... code for devices (or ops) with it ...
//   //#else
//   ... the fallback ...
//   //#endif
//
// and the engine compiles each kernel with the flags that apply, adding the `enable`
// directives the used features need. Blocks nest.

/** A WebGPU feature the kernels can use, each with a fallback where the device lacks it. */
export type KernelFeature = 'shader-f16' | 'subgroups';

export const KERNEL_FEATURES: readonly KernelFeature[] = ['shader-f16', 'subgroups'];

/** The flag a kernel tests for a feature, and the WGSL extension it enables. */
const FEATURE_FLAG: Record<KernelFeature, string> = { 'shader-f16': 'f16', subgroups: 'subgroups' };

const DIRECTIVE = /^\s*\/\/#(if|else|endif)\b\s*(\w*)\s*$/;

/** Every flag a kernel source tests with `//#if`. */
export function kernelFlags(source: string): Set<string> {
  const flags = new Set<string>();
  for (const line of source.split('\n')) {
    const m = DIRECTIVE.exec(line);
    if (m && m[1] === 'if') flags.add(m[2]!);
  }
  return flags;
}

/**
 * The source with each `//#if` block resolved against `flags` and the `enable` directives of
 * the features among them prepended. Dropped lines become blank, so compiler messages keep
 * the file's line numbers (shifted by the enable lines).
 */
export function specialize(source: string, flags: ReadonlySet<string>): string {
  // Per open block: is its condition true, and is the enclosing code kept.
  const stack: { cond: boolean; outer: boolean }[] = [];
  let keep = true;
  const lines = source.split('\n').map((line, i) => {
    const m = DIRECTIVE.exec(line);
    if (!m) return keep ? line : '';
    const [, directive, flag] = m;
    if (directive === 'if') {
      if (!flag) throw new Error(`kernel line ${i + 1}: //#if needs a flag`);
      stack.push({ cond: flags.has(flag), outer: keep });
      keep = keep && flags.has(flag);
    } else {
      const top = stack.at(-1);
      if (!top) throw new Error(`kernel line ${i + 1}: //#${directive} without //#if`);
      if (directive === 'else') keep = top.outer && !top.cond;
      else keep = stack.pop()!.outer;
    }
    return '';
  });
  if (stack.length > 0) throw new Error(`kernel: ${stack.length} //#if block(s) not closed`);
  const enables = KERNEL_FEATURES.filter((f) => flags.has(FEATURE_FLAG[f])).map((f) => `enable ${FEATURE_FLAG[f]};`);
  return [...enables, ...lines].join('\n');
}

/** The kernel flags of the given device features. */
export function featureFlags(features: Iterable<KernelFeature>): string[] {
  return Array.from(features, (f) => FEATURE_FLAG[f]);
}
