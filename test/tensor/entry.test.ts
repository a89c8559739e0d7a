// The `gpt2-prompt/engine` entry is the engine alone: its import graph reaches no GPT-2,
// method, data, Node or CLI module, and no Node built-in, so other WebGPU projects (and
// browsers) can take it without the rest.
import { describe, it, expect } from 'vitest';
import { build } from 'esbuild';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

describe('gpt2-prompt/engine', () => {
  it('imports nothing of src/gpt2, src/prompt, src/data, src/node, src/cli or Node', async () => {
    const result = await build({
      entryPoints: [join(root, 'src', 'engine.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      // A Node built-in anywhere in the graph fails the build on this platform.
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
      absWorkingDir: root,
    });
    const files = Object.keys(result.metafile.inputs);
    expect(files).toContain('src/tensor/tensor.ts');
    expect(files).toContain('src/ops/matmul.ts');
    expect(files.filter((f) => /^src\/(gpt2|prompt|data|node|cli|metrics)\//.test(f))).toEqual([]);
  });

  it('exports the engine: device, tensors, tape, custom ops, optimizer, capture, instruments, ops and nn', async () => {
    const engine = await import('../../src/engine.ts');
    for (const name of ['Gpu', 'registerKernel', 'Tensor', 'tensor', 'fromGpuBuffer', 'tidy', 'record', 'customOp', 'grid', 'Adam', 'CapturedStep', 'profile', 'checkNumerics', 'memory', 'leakCheck', 'add', 'matmul', 'softmax', 'layerNorm', 'nn', 'saveSafetensors', 'loadSafetensors']) {
      expect(engine, name).toHaveProperty(name);
    }
  });
});
