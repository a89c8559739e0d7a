import { describe, it, expect } from 'vitest';
import { specialize, kernelFlags } from '../../src/gpu/features.ts';

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
