// The [h, w] arguments of the 2-D spatial ops (convolution, pooling), given as one number for both
// dims or a pair, checked once for all of them.

/** `value` as [h, w] (`fallback` for both when absent), or an error naming the op and argument. */
export function spatialPair(op: string, name: string, value: number | readonly [number, number] | undefined, fallback: number, min: number): [number, number] {
  const v: readonly number[] = value === undefined ? [fallback, fallback] : typeof value === 'number' ? [value, value] : value;
  if (v.length !== 2 || !v.every((d) => Number.isInteger(d) && d >= min)) {
    throw new RangeError(`${op}: ${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer or a pair of them, got ${JSON.stringify(value)}`);
  }
  return [v[0]!, v[1]!];
}
