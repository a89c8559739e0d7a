// The README's engine example is a file that runs: it must learn XOR.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('examples/engine-quickstart.ts', () => {
  it('runs and learns XOR: the loss falls from chance, the probabilities match the truth table', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'examples/engine-quickstart.ts'], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    const losses = [...run.stdout.matchAll(/step (\d+): loss ([\d.]+)/g)].map((m) => Number(m[2]));
    expect(losses).toHaveLength(3);
    expect(losses[0]).toBeGreaterThan(0.5); // about ln 2 before training
    expect(losses.at(-1)).toBeLessThan(0.05);
    const p = run.stdout.match(/p\(xor = 1\): (.*)/)![1]!.split(' ').map(Number);
    expect(p.map((v) => Math.round(v))).toEqual([0, 1, 1, 0]);
  }, 150_000);
});
