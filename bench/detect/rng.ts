/** A seeded random source for the benchmark: the same seed always gives the same fleet. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  uniform(lo: number, hi: number): number;
  /** Log-uniform in [lo, hi]: as many small values as large ones per decade. */
  logUniform(lo: number, hi: number): number;
  normal(): number;
  poisson(lambda: number): number;
  exponential(mean: number): number;
  chance(p: number): boolean;
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  /** An independent stream (for one agent), so adding an agent does not change the others. */
  fork(label: number): Rng;
}

/** sfc32 (Small Fast Counting generator): 128-bit state, passes PractRand; a few lines, no dependency. */
export function rng(seed: number): Rng {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 + seed * 0x85ebca6b;
  let c = 0xb7e15162 ^ (seed >>> 3);
  let d = 1;
  const raw = (): number => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 20; i++) raw(); // mix the seed in
  let spare: number | null = null;
  const self: Rng = {
    next: raw,
    uniform: (lo, hi) => lo + (hi - lo) * raw(),
    logUniform: (lo, hi) => Math.exp(Math.log(lo) + (Math.log(hi) - Math.log(lo)) * raw()),
    normal: () => {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = 0;
      while (u === 0) u = raw();
      const r = Math.sqrt(-2 * Math.log(u));
      const th = 2 * Math.PI * raw();
      spare = r * Math.sin(th);
      return r * Math.cos(th);
    },
    poisson: (lambda) => {
      if (lambda <= 0) return 0;
      if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * self.normal()));
      const L = Math.exp(-lambda);
      let k = 0;
      let p = raw();
      while (p > L) {
        k++;
        p *= raw();
      }
      return k;
    },
    exponential: (mean) => -mean * Math.log(1 - raw()),
    chance: (p) => raw() < p,
    int: (lo, hi) => lo + Math.floor(raw() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(raw() * xs.length)],
    fork: (label) => rng((Math.imul(seed ^ 0x5bd1e995, 31) + Math.imul(label + 1, 0x27d4eb2d)) | 0),
  };
  return self;
}
