// Summation in numpy's order, so that means and averages reproduce numpy/sklearn bit for bit
// (and carry pairwise summation's O(log n) error growth rather than a plain loop's O(n)).

const BLOCK = 128;

/** Sum of a[start, start + n) in the exact order numpy's `np.sum` uses for contiguous float64. */
function pairwise(a: ArrayLike<number>, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= BLOCK) {
    const r = [a[start], a[start + 1], a[start + 2], a[start + 3], a[start + 4], a[start + 5], a[start + 6], a[start + 7]];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    // prettier-ignore
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwise(a, start, n2) + pairwise(a, start + n2, n - n2);
}

export function numpySum(a: ArrayLike<number>): number {
  return pairwise(a, 0, a.length);
}

export function numpyMean(a: ArrayLike<number>): number {
  return numpySum(a) / a.length;
}
