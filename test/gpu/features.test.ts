import { describe, it, expect } from 'vitest';
import { specialize, kernelFlags, expandIncludes } from '../../src/gpu/features.ts';
import { kernelSource } from '../../src/gpu/registry.ts';

const source = ['a', '//#if subgroups', 'b', '//#if past_f16', 'c', '//#else', 'd', '//#endif', '//#else', 'e', '//#endif', 'f'].join('\n');

describe('kernel variants', () => {
  it('finds the flags a kernel tests', () => {
    expect([...kernelFlags(source)].sort()).toEqual(['past_f16', 'subgroups']);
  });

  it('keeps the lines of the taken branches, blanks the rest, and keeps line numbers', () => {
    const kept = (flags: string[]) => specialize(source, new Set(flags)).split('\n');
    expect(kept([]).filter(Boolean)).toEqual(['a', 'e', 'f']);
    expect(kept(['past_f16']).filter(Boolean)).toEqual(['a', 'e', 'f']);
    expect(kept(['subgroups']).filter(Boolean)).toEqual(['enable subgroups;', 'a', 'b', 'd', 'f']);
    expect(kept(['subgroups', 'past_f16']).filter(Boolean)).toEqual(['enable subgroups;', 'a', 'b', 'c', 'f']);
    // One enable line, then the source's lines at their own positions.
    expect(kept(['subgroups']).length).toBe(source.split('\n').length + 1);
  });

  it('enables f16 for the f16 flag', () => {
    expect(specialize('//#if f16\nx\n//#endif', new Set(['f16'])).split('\n')[0]).toBe('enable f16;');
  });

  it('rejects unbalanced blocks', () => {
    expect(() => specialize('//#if f16\nx', new Set())).toThrow(/not closed/);
    expect(() => specialize('x\n//#endif', new Set())).toThrow(/without/);
    expect(() => specialize('//#if\nx\n//#endif', new Set())).toThrow(/needs a flag/);
  });
});

describe('kernel snippets (//#include)', () => {
  const snippets: Record<string, string> = { outer: 'o1\n//#include <inner>\no2', inner: 'i1' };
  const lookup = (name: string) => snippets[name];

  it('blanks the include lines, keeping the kernel\'s own lines at their numbers, and appends each snippet once', () => {
    const lines = expandIncludes('k1\n//#include <outer>\nk3\n//#include <inner>\nk5', lookup).split('\n');
    expect(lines.slice(0, 5)).toEqual(['k1', '', 'k3', '', 'k5']);
    expect(lines.slice(5)).toEqual(['// ---- kernels/lib/outer.wgsl ----', 'o1', '', 'o2', '// ---- kernels/lib/inner.wgsl ----', 'i1']);
  });

  it('names an unknown snippet', () => {
    expect(() => expandIncludes('//#include <nowhere>', lookup)).toThrow(/\/\/#include <nowhere> names no snippet \(kernels\/lib\/nowhere\.wgsl\)/);
  });

  it('gives the built-in kernels their snippets, whose //#if blocks the variants then resolve', () => {
    const layernorm = kernelSource('layernorm');
    expect(layernorm).toContain('// ---- kernels/lib/row-reduce.wgsl ----');
    expect(kernelFlags(layernorm).has('subgroups')).toBe(true);
    expect(kernelSource('gather')).toMatch(/fn flat_index\(/);
  });
});
