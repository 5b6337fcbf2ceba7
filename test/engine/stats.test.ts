import { describe, expect, it } from 'vitest';
import { binomialTail, poissonTail, round, sigmaForTail } from '../../src/engine/stats.js';

/** Reference tails summed term by term from the probability mass functions, in log space. */
function lnFactorial(n: number): number {
  let s = 0;
  for (let i = 2; i <= n; i++) s += Math.log(i);
  return s;
}
function binomialPmf(k: number, n: number, p: number): number {
  return Math.exp(lnFactorial(n) - lnFactorial(k) - lnFactorial(n - k) + k * Math.log(p) + (n - k) * Math.log(1 - p));
}
function poissonPmf(k: number, l: number): number {
  return Math.exp(-l + k * Math.log(l) - lnFactorial(k));
}

describe('sigmaForTail', () => {
  it.each([
    [0.5, 0],
    [0.158655, 1],
    [0.0227501, 2],
    [0.0062097, 2.5],
    [0.0013499, 3],
    [2.8665e-7, 5],
  ])('P = %s is %sσ', (p, sigma) => {
    expect(sigmaForTail(p)).toBeCloseTo(sigma, 3);
  });

  it('caps at 10σ and never goes negative', () => {
    expect(sigmaForTail(0)).toBe(10);
    expect(sigmaForTail(1e-300)).toBe(10);
    expect(sigmaForTail(0.9)).toBe(0);
  });
});

describe('binomialTail', () => {
  it.each([
    [3, 10, 0.1],
    [0, 10, 0.3],
    [10, 10, 0.5],
    [7, 20, 0.02],
  ])('P(X ≥ %i) for Binomial(%i, %s) matches the summed pmf', (k, n, p) => {
    let ref = 0;
    for (let i = k; i <= n; i++) ref += binomialPmf(i, n, p);
    expect(binomialTail(k, n, p)).toBeCloseTo(ref, 12);
  });

  it('keeps tiny tails (no 1 − cdf cancellation) and is 0 past n', () => {
    const t = binomialTail(10, 10, 0.01);
    expect(t).toBeGreaterThan(0);
    expect(t).toBeCloseTo(1e-20, 30);
    expect(binomialTail(11, 10, 0.5)).toBe(0);
  });
});

describe('poissonTail', () => {
  it.each([
    [1, 0.5],
    [5, 0.5],
    [12, 3.4],
    [0, 2],
  ])('P(X ≥ %i) for Poisson(%s) matches the summed pmf', (k, l) => {
    let ref = 0;
    for (let i = k; i < k + 200; i++) ref += poissonPmf(i, l);
    expect(poissonTail(k, l)).toBeCloseTo(Math.min(1, ref), 12);
  });
});

describe('round', () => {
  it('rounds to the given digits', () => {
    expect(round(1.23456)).toBe(1.23);
    expect(round(1.23456, 3)).toBe(1.235);
  });
});
