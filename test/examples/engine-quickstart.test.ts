// The README's engine example is a file that runs: it must learn XOR and save a state dict with
// torch.nn.Sequential's keys, and the README's code block must be that file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSafetensors } from '../../src/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FILE = join(ROOT, 'examples', 'engine-quickstart.ts');

describe('examples/engine-quickstart.ts', () => {
  it('runs and learns XOR: the loss falls from chance, the probabilities match the truth table, the state dict is saved', () => {
    // Run in an empty folder: the example writes xor.safetensors where it runs.
    const dir = mkdtempSync(join(tmpdir(), 'quickstart-'));
    try {
      const tsx = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
      const run = spawnSync(process.execPath, ['--import', tsx, FILE], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
      expect(run.status, run.stderr).toBe(0);
      const losses = [...run.stdout.matchAll(/step (\d+): loss ([\d.]+)/g)].map((m) => Number(m[2]));
      expect(losses).toHaveLength(3);
      expect(losses[0]).toBeGreaterThan(0.5); // about ln 2 before training
      expect(losses.at(-1)).toBeLessThan(0.05);
      const p = run.stdout.match(/p\(xor = 1\): (.*)/)![1]!.split(' ').map(Number);
      expect(p.map((v) => Math.round(v))).toEqual([0, 1, 1, 0]);
      const saved = parseSafetensors(readFileSync(join(dir, 'xor.safetensors')));
      expect([...saved.entries].map(([key, e]) => [key, e.dtype, e.shape])).toEqual([
        ['0.weight', 'F32', [16, 2]],
        ['0.bias', 'F32', [16]],
        ['2.weight', 'F32', [2, 16]],
        ['2.bias', 'F32', [2]],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it("is the README's engine example, line for line, with the package's import names", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = readme.match(/## The engine\n[\s\S]*?```ts\n([\s\S]*?)```/)![1]!;
    const code = readFileSync(FILE, 'utf8')
      .replace(/^(\/\/.*\n)+/, '') // the header comment
      .replace("'../src/index.ts'", "'gpt2-prompt'")
      .replace("'../src/node/index.ts'", "'gpt2-prompt/node'");
    expect(block).toBe(code);
  });
});
