// Seeded test data, host-neutral (no Node, no vitest): test/helpers.ts and the op suite, which
// also runs in Deno and in a page, draw their inputs from the same functions.
import { seededRandom } from '../src/util/random.ts';

/** n standard-normal values (Box–Muller), times `scale`. */
export function randn(n: number, seed: number, scale = 1): Float64Array {
  const u = seededRandom(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    out[i] = r * Math.cos(2 * Math.PI * u()) * scale;
  }
  return out;
}

/** Values rounded to f32, as the GPU sees them; references are computed from these in float64. */
export function asF32(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}
