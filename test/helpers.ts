// Shared test utilities: one device per test file, seeded random data, float64 comparison.
import { appendFileSync, mkdirSync } from 'node:fs';
import { f16round } from '@petamoriken/float16';
import { expect, type TestContext } from 'vitest';
import { openGpu } from '../src/node/device.ts';
import type { Gpu } from '../src/gpu/context.ts';
import { KERNEL_FEATURES, type KernelFeature } from '../src/gpu/features.ts';
import type { KernelClass } from '../src/gpu/kernel-class.ts';

let shared: Promise<Gpu> | null = null;

/** The test device, with new buffers poisoned with NaN so unwritten outputs fail. */
export function testGpu(): Promise<Gpu> {
  shared ??= openGpu({ quiet: true }).then((gpu) => {
    gpu.poison = true;
    return gpu;
  });
  return shared;
}

let featured: Promise<Gpu | null> | null = null;

/**
 * A device that offers every kernel feature (shader-f16, subgroups), poisoned like testGpu():
 * the test device when it does, else a Vulkan adapter that does (lavapipe from Mesa 25 is one:
 * see scripts/software-vulkan.sh), else null — tests of the feature variants then skip.
 * Tests that switch features off with useKernelFeatures() must switch them back on.
 */
export function featureTestGpu(): Promise<Gpu | null> {
  featured ??= (async () => {
    const main = await testGpu();
    const full = (g: Gpu) => KERNEL_FEATURES.every((f) => g.offeredKernelFeatures.has(f));
    if (full(main)) return main;
    const vulkan = await openGpu({ backend: 'vulkan', quiet: true }).catch(() => null);
    if (!vulkan || !full(vulkan)) return null;
    vulkan.poison = true;
    return vulkan;
  })();
  return featured;
}

/**
 * Runs `body` on featureTestGpu() with exactly `features` in use (so [] runs the fallbacks on
 * the same device), restoring them after; skips the test where no device offers the features.
 */
export async function withKernelFeatures<T>(ctx: TestContext, features: KernelFeature[], body: (gpu: Gpu) => Promise<T>): Promise<T | undefined> {
  const gpu = await featureTestGpu();
  if (!gpu) {
    ctx.skip('no adapter here offers shader-f16 and subgroups (scripts/software-vulkan.sh installs one)');
    return undefined;
  }
  const before = [...gpu.kernelFeatures];
  expect([...gpu.useKernelFeatures(features)].sort()).toEqual([...features].sort());
  try {
    return await body(gpu);
  } finally {
    gpu.useKernelFeatures(before);
  }
}

/**
 * Runs body with the device's kernel class set (left as it is for undefined), restoring it
 * after: the GPU family's kernels tested on a CPU adapter, and the other way round.
 */
export async function withKernelClass<T>(device: Gpu, kernelClass: KernelClass | undefined, body: () => Promise<T>): Promise<T> {
  const before = device.kernelClass;
  device.kernelClass = kernelClass ?? before;
  try {
    return await body();
  } finally {
    device.kernelClass = before;
  }
}

export { seededRandom as rng } from '../src/util/random.ts';

export { randn, asF32 } from './numeric.ts';

/** Values rounded to the nearest f16 (ties to even), as an f16 tensor holds them. */
export function asF16(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values, f16round);
}

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

/**
 * Asserts |actual - expected| <= atol + rtol·|expected| everywhere, printing the first
 * mismatches and the max error on failure. Returns the max abs error, which is also
 * appended to test-results/kernel-errors.jsonl for the record.
 */
export function expectClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}): number {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-4;
  expect(actual.length, `${name}: length`).toBe(expected.length);
  let maxErr = 0;
  let maxRef = 0;
  const bad: string[] = [];
  let badCount = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const err = Math.abs(a - e);
    maxRef = Math.max(maxRef, Math.abs(e));
    if (!(err <= atol + rtol * Math.abs(e))) {
      badCount++;
      if (bad.length < 8) bad.push(`  [${i}] got ${a}, expected ${e} (err ${err.toExponential(2)})`);
    }
    if (Number.isNaN(err)) maxErr = NaN;
    else if (err > maxErr) maxErr = err;
  }
  mkdirSync('test-results', { recursive: true });
  appendFileSync('test-results/kernel-errors.jsonl', JSON.stringify({ name, maxAbsError: maxErr, maxAbsRef: maxRef, n: expected.length }) + '\n');
  if (badCount > 0) {
    throw new Error(`${name}: ${badCount} of ${expected.length} values outside atol ${atol} + rtol ${rtol}; max abs error ${maxErr}\n${bad.join('\n')}`);
  }
  return maxErr;
}

/**
 * Central finite differences of a float64 scalar function f at x, for every element.
 */
export function finiteDifferences(f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const grad = new Float64Array(x.length);
  const probe = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const saved = probe[i]!;
    probe[i] = saved + h;
    const up = f(probe);
    probe[i] = saved - h;
    const down = f(probe);
    probe[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}
