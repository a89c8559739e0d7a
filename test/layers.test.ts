// The layering rules of the guide, read from the sources: the core runs in any WebGPU host (so
// it imports no Node module, nor the Node WebGPU binding), and layers point one way.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', 'src');

/** What each layer (a directory of src/, or the core entry src/index.ts) may import from src/. */
const MAY_IMPORT: Record<string, string[]> = {
  util: [],
  gpu: ['util'],
  data: ['util'],
  metrics: ['util'],
  tensor: ['gpu', 'util'],
  optim: ['tensor', 'gpu', 'util'],
  ops: ['tensor', 'gpu', 'util'],
  nn: ['ops', 'optim', 'tensor', 'gpu', 'util'],
  gpt2: ['nn', 'ops', 'optim', 'tensor', 'gpu', 'util'],
  hub: ['gpt2', 'nn', 'util'],
  prompt: ['gpt2', 'nn', 'ops', 'optim', 'tensor', 'gpu', 'data', 'metrics', 'util'],
  // The engine entry (gpt2-prompt/engine): the engine with its ops, nothing of the model or the method.
  'engine.ts': ['nn', 'ops', 'optim', 'tensor', 'gpu', 'util'],
  serve: ['prompt', 'gpt2', 'nn', 'ops', 'optim', 'tensor', 'gpu', 'data', 'metrics', 'util'],
  'index.ts': ['engine.ts', 'hub', 'serve', 'prompt', 'gpt2', 'nn', 'ops', 'optim', 'tensor', 'gpu', 'data', 'metrics', 'util'],
  node: ['index.ts', 'hub', 'serve', 'prompt', 'gpt2', 'nn', 'ops', 'optim', 'tensor', 'gpu', 'data', 'metrics', 'util'],
  cli: ['node', 'index.ts', 'hub', 'serve', 'prompt', 'gpt2', 'nn', 'ops', 'optim', 'tensor', 'gpu', 'data', 'metrics', 'util'],
};

/** Layers a web page or Deno loads: no Node API, no Dawn binding. */
const CORE = ['util', 'gpu', 'data', 'metrics', 'tensor', 'optim', 'ops', 'nn', 'gpt2', 'hub', 'prompt', 'serve', 'engine.ts', 'index.ts'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? sources(path) : e.name.endsWith('.ts') ? [path] : [];
  });
}

const layerOf = (file: string) => relative(SRC, file).split(sep)[0]!.replace(/\.js$/, '.ts');

/** Every module specifier a file imports or re-exports, statically or with import(). */
function specifiers(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?\sfrom\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of code.matchAll(/(?:^|[\s;])import\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

const withoutComments = (code: string) => code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

const files = sources(SRC).map((path) => {
  const code = withoutComments(readFileSync(path, 'utf8'));
  return { path, name: relative(SRC, path), layer: layerOf(path), code, imports: specifiers(code) };
});

const NODE_BUILTINS = new Set(builtinModules);
const isNodeModule = (spec: string) => spec.startsWith('node:') || NODE_BUILTINS.has(spec.split('/')[0]!);

describe('layers', () => {
  it('the scan sees the sources and their imports', () => {
    expect(files.length).toBeGreaterThan(40);
    expect(files.find((f) => f.name === join('cli', 'main.ts'))!.imports).toContain('cac');
    expect(files.find((f) => f.name === join('node', 'files.ts'))!.imports).toContain('node:fs/promises');
    expect(new Set(files.map((f) => f.layer))).toEqual(new Set(Object.keys(MAY_IMPORT)));
  });

  it('the core imports no Node module, not the webgpu package, and uses no Node global', () => {
    const offences = files
      .filter((f) => CORE.includes(f.layer))
      .flatMap((f) => [
        ...f.imports.filter((s) => isNodeModule(s) || s === 'webgpu' || s.startsWith('webgpu/')).map((s) => `${f.name} imports ${s}`),
        ...[...f.code.matchAll(/\b(process|Buffer|require|__dirname)\b\s*[.(]/g)].map((m) => `${f.name} uses ${m[1]}`),
      ]);
    expect(offences).toEqual([]);
  });

  it('no layer imports one above it', () => {
    const offences = files.flatMap((f) =>
      f.imports
        .filter((s) => s.startsWith('.'))
        .map((s) => layerOf(resolve(dirname(f.path), s)))
        .filter((target) => target !== f.layer && !MAY_IMPORT[f.layer]!.includes(target))
        .map((target) => `${f.name} (${f.layer}) imports ${target}`),
    );
    expect(offences).toEqual([]);
  });
});
