/** Small numeric helpers; no allocation on the hot path. */

/** Standard normal upper-tail quantile: the σ that has tail probability p (Acklam's approximation, |error| < 1.2e-9). */
export function sigmaForTail(p: number): number {
  if (p <= 0) return 10;
  if (p >= 0.5) return 0;
  const q = Math.sqrt(-2 * Math.log(p));
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  return Math.min(10, -x);
}

/** P(X >= k) for X ~ Binomial(n, p). */
export function binomialTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  // Sum the upper tail directly: 1 - cdf loses every digit once the tail is below 1e-16.
  let term = Math.pow(1 - p, n); // P(X = 0)
  for (let i = 0; i < k; i++) term = (term * (n - i) * p) / ((i + 1) * (1 - p));
  let tail = 0;
  for (let i = k; i <= n; i++) {
    tail += term;
    term = (term * (n - i) * p) / ((i + 1) * (1 - p));
  }
  return Math.min(1, tail);
}

/** P(X >= k) for X ~ Poisson(lambda). */
export function poissonTail(k: number, lambda: number): number {
  if (k <= 0) return 1;
  let term = Math.exp(-lambda);
  for (let i = 0; i < k; i++) term = (term * lambda) / (i + 1);
  let tail = 0;
  for (let i = k; i < k + 200 && term > tail * 1e-17; i++) {
    tail += term;
    term = (term * lambda) / (i + 1);
  }
  return Math.min(1, tail);
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
