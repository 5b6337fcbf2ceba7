/** Seeded PRNG (mulberry32) so a simulated run is repeatable from SIM_SEED. */
export interface Random {
  next(): number;
  uniform(lo: number, hi: number): number;
  int(lo: number, hi: number): number;
  normal(): number;
  /** Log-normal multiplier with median 1 and log-space spread sigma. */
  logNormal(sigma: number): number;
  poisson(mean: number): number;
  pick<T>(xs: readonly T[]): T;
}

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    normal,
    logNormal: (sigma) => Math.exp(sigma * normal()),
    poisson: (mean) => {
      if (mean <= 0) return 0;
      const l = Math.exp(-mean);
      let k = 0;
      let p = next();
      while (p > l && k < 1000) {
        k++;
        p *= next();
      }
      return k;
    },
    pick: (xs) => xs[Math.floor(next() * xs.length)],
  };
}
