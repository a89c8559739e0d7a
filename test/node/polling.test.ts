// Relaxed polling: Dawn's binding polls with setImmediate while a promise of it is pending; on
// a software adapter the engine makes it back off after a short spin. These cases count Dawn's
// full-speed polls during one long wait on lavapipe, with the binding's own spin and relaxed,
// and check that nothing else's setImmediate changes.
import { describe, it, expect } from 'vitest';
import { openGpu } from '../../src/node/device.ts';
import { isDawnPoll } from '../../src/node/polling.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { matmul } from '../../src/ops/matmul.ts';

// Installed before the relaxed wrapper, so it sees only the polls that wrapper lets run at once.
let fullSpeedPolls = 0;
const immediate = globalThis.setImmediate;
globalThis.setImmediate = Object.assign(function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
  if (isDawnPoll(callback)) fullSpeedPolls++;
  return immediate(callback, ...args);
}, immediate) as typeof setImmediate;

/** Polls at full speed and wall ms during one wait for `count` matmuls of 1.2 GFLOP each. */
async function longWait(gpu: Gpu, count: number): Promise<{ polls: number; ms: number }> {
  const x = tensor(gpu, new Float32Array(256 * 768).fill(0.5), [256, 768]);
  const w = tensor(gpu, new Float32Array(768 * 3072).fill(0.25), [768, 3072]);
  const outputs = Array.from({ length: count }, () => matmul(x, w));
  gpu.flush();
  const polls = fullSpeedPolls;
  const start = performance.now();
  await gpu.sync();
  const result = { polls: fullSpeedPolls - polls, ms: performance.now() - start };
  expect((await outputs[count - 1]!.read())[3071]).toBe(768 * 0.125);
  for (const t of [x, w, ...outputs]) t.dispose();
  return result;
}

describe('relaxed polling of Dawn', () => {
  it('spins a core for a whole wait with the binding’s own polling, and only for its first milliseconds relaxed', async (ctx) => {
    const spinning = await openGpu({ backend: 'vulkan', quiet: true, polling: 'spin' }).catch(() => null);
    if (!spinning || spinning.kernelClass !== 'cpu') return ctx.skip('needs lavapipe (scripts/software-vulkan.sh installs it)');
    // Enough work for a wait far longer than the 2 ms spin, however fast this machine's cores are.
    let count = 6;
    let spin = await longWait(spinning, count);
    while (spin.ms < 200 && count < 192) spin = await longWait(spinning, (count *= 2));
    // The binding's poll is recognised: a spinning wait polls many times per millisecond.
    expect(spin.polls).toBeGreaterThan(10 * spin.ms);

    const relaxedGpu = await openGpu({ backend: 'vulkan', quiet: true, polling: 'relaxed' });
    const relaxed = await longWait(relaxedGpu, count);
    expect(relaxed.ms).toBeGreaterThan(50);
    // Full speed for about 2 ms, then once a millisecond through setTimeout (not counted here).
    expect(relaxed.polls).toBeLessThan(spin.polls / 5);
    expect(relaxed.polls / relaxed.ms).toBeLessThan(spin.polls / spin.ms / 5);
  });

  it('leaves JavaScript callbacks, built-ins and bound functions to run at once', async () => {
    await openGpu({ quiet: true, polling: 'relaxed' });
    expect(isDawnPoll(() => 0)).toBe(false);
    expect(isDawnPoll(function named() {})).toBe(false);
    expect(isDawnPoll(Math.random)).toBe(false);
    expect(isDawnPoll(function () {}.bind(null))).toBe(false);
    // A chain of 300 immediates of each kind, long past the 2 ms a Dawn wait spins: none waits for a timer.
    for (const make of [(next: () => void) => next, (next: () => void) => next.bind(null)]) {
      const gaps: number[] = [];
      await new Promise<void>((resolve) => {
        let last = performance.now();
        let left = 300;
        const step = () => {
          const now = performance.now();
          gaps.push(now - last);
          last = now;
          if (--left === 0) resolve();
          else setImmediate(make(step));
        };
        setImmediate(make(step));
      });
      gaps.sort((a, b) => a - b);
      expect(gaps[150]!).toBeLessThan(0.5);
    }
  });
});
