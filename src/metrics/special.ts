// Log-gamma, log-beta and the regularized incomplete beta function, written for relative accuracy
// near 1e-14 so that p-values far in the tail (1e-100 and below) stay meaningful.

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

// Bernoulli coefficients B₂ₖ / (2k(2k−1)) of Stirling's series; at z ≥ 10 the truncation error is below 1e-17.
const STIRLING = [1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156, -3617 / 122400];

/** lnΓ(z) − [(z − ½)·ln z − z + ½·ln 2π], for z ≥ 10. */
function stirlingCorrection(z: number): number {
  const z2 = 1 / (z * z);
  let sum = 0;
  for (let k = STIRLING.length - 1; k >= 0; k--) sum = sum * z2 + STIRLING[k];
  return sum / z;
}

/** ln Γ(z) for z > 0. */
export function lnGamma(z: number): number {
  if (!(z > 0)) throw new RangeError(`lnGamma needs z > 0, got ${z}`);
  // Shift small arguments up with Γ(z) = Γ(z + m) / (z(z+1)…(z+m−1)), where the series is accurate.
  let shift = 0;
  let prod = 1;
  while (z < 10) {
    prod *= z;
    z += 1;
    shift++;
  }
  const base = (z - 0.5) * Math.log(z) - z + HALF_LOG_2PI + stirlingCorrection(z);
  return shift === 0 ? base : base - Math.log(prod);
}

/**
 * ln x^a·(1−x)^b / B(a, b), the prefactor of the incomplete beta. For large a and b the direct
 * lnΓ(a) + lnΓ(b) − lnΓ(a+b) cancels catastrophically, so Stirling's form is regrouped so that
 * its large terms appear as a·ln(x(a+b)/a), which are small near the distribution's centre.
 */
function lnPowerTerms(a: number, b: number, x: number, y: number): number {
  if (a < 10 || b < 10) {
    return a * Math.log(x) + b * Math.log(y) - (lnGamma(a) + lnGamma(b) - lnGamma(a + b));
  }
  const c = a + b;
  // x(a+b)/a − 1 = (x·b − y·a)/a since x + y = 1; log1p keeps it exact when that is tiny.
  const d = x * b - y * a;
  const main = a * Math.log1p(d / a) + b * Math.log1p(-d / b);
  const root = 0.5 * (Math.log(a) + Math.log(b) - Math.log(c)) - HALF_LOG_2PI;
  return main + root - (stirlingCorrection(a) + stirlingCorrection(b) - stirlingCorrection(c));
}

const TINY = 1e-300;
const MAX_TERMS = 100_000;

/** Continued fraction for I_x(a, b)·a / prefactor (modified Lentz); converges fast for x < (a+1)/(a+b+2). */
function betaFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_TERMS; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) <= Number.EPSILON) return h;
  }
  throw new Error(`incomplete beta continued fraction did not converge (a=${a}, b=${b}, x=${x})`);
}

/**
 * Regularized incomplete beta I_x(a, b), given both x and y = 1 − x so that callers holding an
 * exact small y (an upper tail) lose nothing to forming 1 − x.
 */
export function regIncBeta(a: number, b: number, x: number, y = 1 - x): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`regIncBeta needs a, b > 0, got a=${a}, b=${b}`);
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - regIncBeta(b, a, y, x);
  return (Math.exp(lnPowerTerms(a, b, x, y)) * betaFraction(a, b, x)) / a;
}
