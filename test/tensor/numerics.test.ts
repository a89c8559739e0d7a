// checkNumerics names the op that first made NaN or ±Inf, with its caller's line, forward and backward.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { testGpu } from '../helpers.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { tensor, tidy } from '../../src/tensor/tensor.ts';
import { checkNumerics, NumericsError } from '../../src/tensor/numerics.ts';
import { add, log, mul, sqrt, exp } from '../../src/ops/elementwise.ts';
import { sum } from '../../src/ops/reduce.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterEach(() => checkNumerics(gpu, false));

/** The line of this file that called the function running now's caller (so a test knows the line of its own op call). */
function lineHere(): number {
  return Number(/numerics\.test\.ts:(\d+)/.exec(new Error().stack!.split('\n')[2]!)![1]);
}

describe('checkNumerics', () => {
  it('names a log of a negative number inside a larger expression, with the line that called it', async () => {
    checkNumerics(gpu, true);
    const x = tensor(gpu, [1, -2, 3], [3]);
    const y = tensor(gpu, [2, 2, 2], [3]);
    let line = 0;
    const out = tidy(() => add(mul(y, exp(x)), (line = lineHere() + 0, log(x))));
    const error = await out.read().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(NumericsError);
    const e = error as NumericsError;
    expect(e.site.op).toBe('log');
    expect(e.site.caller).toMatch(new RegExp(`numerics\\.test\\.ts:${line}:`));
    expect(e.message).toMatch(/checkNumerics: log produced NaN or ±Inf in its output \[3\] \(inputs \[3\]\); called at .*numerics\.test\.ts/);
    out.dispose();
    x.dispose();
    y.dispose();
  });

  it('names the op whose gradient went bad when the NaN is made only in backward', async () => {
    checkNumerics(gpu, true);
    // sqrt(0) = 0 is finite; its gradient 0.5 / sqrt(0) is +Inf.
    const x = tensor(gpu, [0, 4], [2], { requiresGrad: true });
    const line = lineHere() + 1;
    const loss = sum(sqrt(x));
    await expect(loss.read()).resolves.toBeDefined();
    loss.backward();
    const error = (await x.grad!.read().then(() => null, (e: unknown) => e)) as NumericsError;
    expect(error).toBeInstanceOf(NumericsError);
    expect(error.site.backward).toBe(true);
    expect(error.site.op).toBe('sqrt (backward)');
    expect(error.message).toMatch(/the gradient of sqrt \(computed in backward\)/);
    expect(error.site.caller).toMatch(new RegExp(`numerics\\.test\\.ts:${line}:`));
    loss.dispose();
    x.dispose();
  });

  it('passes finite work, and is off by default', async () => {
    checkNumerics(gpu, true);
    const x = tensor(gpu, [1, 2], [2]);
    const y = log(x);
    expect(Array.from(await y.read())).toEqual([0, Math.fround(Math.log(2))]);
    checkNumerics(gpu, false);
    const bad = log(tensor(gpu, [-1], [1]));
    expect(Number.isNaN((await bad.read())[0])).toBe(true);
    expect(gpu.monitor).toBeNull();
  });
});
