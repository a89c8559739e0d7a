// docs/ops.md is the catalog's rendering, and the catalog describes exactly the functions the op
// modules export: adding an op without documenting it, or documenting one that is gone, fails here.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { opCatalog, opsMarkdown } from '../../src/ops/catalog.ts';

const root = join(import.meta.dirname, '..', '..');
/** Exported functions of src/ops that are building blocks of ops, not ops users call. */
const NOT_OPS = new Set(['broadcastShape', 'broadcastDims', 'filled', 'normalizeDims', 'splitPast', 'shardRows', 'shardRowCounts', 'boolMaskBias', 'opCatalog', 'opsMarkdown']);
/** Catalogued ops that are Tensor methods rather than functions. */
const METHODS = new Set(['reshape']);

async function exportedOps(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const file of readdirSync(join(root, 'src', 'ops')).filter((f) => f.endsWith('.ts'))) {
    const module = (await import(join(root, 'src', 'ops', file))) as Record<string, unknown>;
    for (const [name, value] of Object.entries(module)) if (typeof value === 'function' && !NOT_OPS.has(name)) names.add(name);
  }
  return names;
}

describe('op catalog', () => {
  it('describes every exported op once, and nothing else', async () => {
    const catalog = opCatalog().map((op) => op.name);
    expect(new Set(catalog).size).toBe(catalog.length);
    const exported = await exportedOps();
    expect([...exported].filter((name) => !catalog.includes(name)).sort()).toEqual([]);
    expect(catalog.filter((name) => !exported.has(name) && !METHODS.has(name)).sort()).toEqual([]);
  });

  it('exports every op from the package root and the engine entry', async () => {
    const entries = [await import('../../src/index.ts'), await import('../../src/engine.ts')] as Record<string, unknown>[];
    for (const entry of entries) {
      const missing = opCatalog().map((op) => op.name).filter((name) => !METHODS.has(name) && typeof entry[name] !== 'function');
      expect(missing).toEqual([]);
    }
  });

  it('docs/ops.md is up to date (npm run ops-doc writes it)', () => {
    expect(readFileSync(join(root, 'docs', 'ops.md'), 'utf8')).toBe(opsMarkdown());
  });

  it('lists each elementwise op with the WGSL its kernel is generated from', () => {
    const exp = opCatalog().find((op) => op.name === 'exp')!;
    expect(exp.forward).toContain('exp(x)');
    expect(exp.backward).toContain('g * y');
  });
});
