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
//
// Code shared by several kernels lives once, as a snippet in kernels/lib/<name>.wgsl, which a
// kernel takes in with a line `//#include <name>` (see expandIncludes).

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

const INCLUDE = /^\s*\/\/#include\s+<([\w-]+)>\s*$/;

/**
 * The source with each `//#include <name>` line blanked and the named snippet appended after
 * the source, once however often it is included (snippets may include others). WGSL's
 * module-scope declarations may come in any order, so appending keeps every line of the
 * kernel's own file at its number; a compiler message past the file's end points into the
 * snippet whose `// ---- kernels/lib/<name>.wgsl ----` line comes above it.
 */
export function expandIncludes(source: string, snippet: (name: string) => string | undefined): string {
  const included = new Set<string>();
  const parts: string[] = [];
  const pending = [source];
  while (pending.length > 0) {
    const text = pending.shift()!;
    const lines = text.split('\n').map((line) => {
      const m = INCLUDE.exec(line);
      if (!m) return line;
      const name = m[1]!;
      if (!included.has(name)) {
        const body = snippet(name);
        if (body === undefined) throw new Error(`kernel: //#include <${name}> names no snippet (kernels/lib/${name}.wgsl)`);
        included.add(name);
        pending.push(`// ---- kernels/lib/${name}.wgsl ----\n${body}`);
      }
      return '';
    });
    parts.push(lines.join('\n'));
  }
  return parts.join('\n');
}

/** The kernel flags of the given device features. */
export function featureFlags(features: Iterable<KernelFeature>): string[] {
  return Array.from(features, (f) => FEATURE_FLAG[f]);
}
