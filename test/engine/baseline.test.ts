import { describe, expect, it } from 'vitest';
import { rng } from '../../bench/detect/rng.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { describeBaseline, effectiveSigma, isReady, learn, log1pOf, newBaseline, restoreBaseline, snapshotBaseline, type Baseline } from '../../src/engine/baseline.js';
import { engineConfig } from '../../src/engine/config.js';
import { CONTINUOUS, NC } from '../../src/engine/metrics.js';

const cfg = engineConfig();

function sample(r: ReturnType<typeof rng>, i: number, scale = 1): Vitals {
  const input = Math.round(1000 * Math.exp(0.3 * r.normal()) * scale);
  const output = Math.round(400 * Math.exp(0.3 * r.normal()) * scale);
  return {
    agent_id: 'a1',
    agent_type: 'Research',
    timestamp: 1000 + i,
    latency_ms: Math.round(800 * Math.exp(0.4 * r.normal()) * scale),
    input_tokens: input,
    output_tokens: output,
    token_count: input + output,
    cost: (input * 3 + output * 15) / 1e6,
    tool_calls: r.poisson(3),
    retries: r.poisson(0.1),
    success: !r.chance(0.05),
    model: 'm1',
    provider: 'p1',
    error_type: '',
    prompt_hash: 'p-v1',
    mcp_servers: [],
    tool_names: [],
  };
}

function learned(n: number, seed = 7): Baseline {
  const r = rng(seed);
  const b = newBaseline();
  for (let i = 0; i < n; i++) learn(b, sample(r, i), cfg);
  return b;
}

describe('BaselineLearner', () => {
  it('is ready after minSamples (15) samples, not before', () => {
    expect(isReady(learned(14), cfg)).toBe(false);
    expect(isReady(learned(15), cfg)).toBe(true);
  });

  it('learns the typical level in log space and the linear mean per metric', () => {
    const b = learned(2000);
    const view = describeBaseline(b);
    // log-normal(800, 0.4): the geometric mean is 800, the linear mean 800·e^(0.08) ≈ 867
    expect(Math.expm1(b.mean[0])).toBeGreaterThan(700);
    expect(Math.expm1(b.mean[0])).toBeLessThan(920);
    expect(view.latency.mean).toBeGreaterThan(750);
    expect(view.latency.mean).toBeLessThan(1000);
    expect(Math.sqrt(b.variance[0])).toBeGreaterThan(0.3);
    expect(Math.sqrt(b.variance[0])).toBeLessThan(0.5);
    // cost is shown in USD although it is learned in hundredths of a cent
    expect(view.cost.mean).toBeGreaterThan(0.005);
    expect(view.cost.mean).toBeLessThan(0.012);
    expect(view.retry_rate.mean).toBeGreaterThan(0.05);
    expect(view.retry_rate.mean).toBeLessThan(0.2);
    expect(b.prompt_hash).toBe('p-v1');
  });

  it('tracks p95 above the mean: about 5% of samples lie above it', () => {
    const r = rng(3);
    const b = learned(3000, 3);
    let above = 0;
    for (let i = 0; i < 2000; i++) if (Math.log1p(sample(r, i).latency_ms) > b.p95[0]) above++;
    expect(above / 2000).toBeGreaterThan(0.02);
    expect(above / 2000).toBeLessThan(0.1);
  });

  it('follows a level change over about one span (EWMA span 50 by default; configurable)', () => {
    const r = rng(5);
    const b = learned(500, 5);
    const before = b.mean[0];
    for (let i = 0; i < 100; i++) learn(b, sample(r, i, 2), cfg);
    expect(b.mean[0] - before).toBeGreaterThan(Math.log(2) * 0.8);
    const slow = newBaseline();
    const slowCfg = engineConfig({ ewmaSpan: 500 });
    const r2 = rng(5);
    for (let i = 0; i < 500; i++) learn(slow, sample(r2, i), slowCfg);
    const slowBefore = slow.mean[0];
    for (let i = 0; i < 100; i++) learn(slow, sample(r2, i, 2), slowCfg);
    expect(slow.mean[0] - slowBefore).toBeLessThan(Math.log(2) * 0.5);
  });

  it('winsorises learning: one huge sample barely moves the level', () => {
    const b = learned(500);
    const before = b.mean[0];
    const v = sample(rng(9), 0);
    learn(b, { ...v, latency_ms: 800 * 1000 }, cfg, cfg.thresholdSigma);
    expect(b.mean[0] - before).toBeLessThan(0.1);
  });

  it('weight 0 leaves level, spread and rates untouched', () => {
    const b = learned(200);
    const snap = JSON.stringify(snapshotBaseline(b));
    learn(b, { ...sample(rng(1), 0), latency_ms: 1e6, retries: 9, success: false }, cfg, Infinity, 0, 0);
    const after = snapshotBaseline(b);
    expect(JSON.stringify({ ...after, n: 0 })).toBe(JSON.stringify({ ...JSON.parse(snap), n: 0 }));
  });

  it('floors σ for a metric that was constant while learning, so it can still deviate', () => {
    const b = newBaseline();
    const v = sample(rng(1), 0);
    for (let i = 0; i < 50; i++) learn(b, { ...v, tool_calls: 4 }, cfg);
    const tools = CONTINUOUS.findIndex((m) => m.key === 'tools');
    expect(b.variance[tools]).toBe(0);
    expect(effectiveSigma(b, tools, cfg)).toBeGreaterThanOrEqual(cfg.sigmaFloor);
    // one more tool call than ever seen is a finite, positive deviation
    const z = (Math.log1p(5) - b.mean[tools]) / effectiveSigma(b, tools, cfg);
    expect(z).toBeGreaterThan(0.5);
    expect(Number.isFinite(z)).toBe(true);
  });

  it('widens σ right after learning (few samples) and less once it has seen many', () => {
    const young = learned(15);
    const old = learned(1000);
    const ratio = (b: Baseline) => effectiveSigma(b, 0, cfg) / Math.sqrt(b.variance[0]);
    expect(ratio(young)).toBeGreaterThan(1.2);
    expect(ratio(old)).toBeLessThan(1.03);
  });
});

describe('baseline snapshots', () => {
  it('round-trip through JSON exactly, bit for bit, and keep learning identically', () => {
    const b = learned(777, 11);
    const restored = restoreBaseline(JSON.parse(JSON.stringify(snapshotBaseline(b))));
    for (const key of ['mean', 'variance', 'p95', 'linear', 'rate'] as const) {
      const a = b[key];
      const c = restored[key];
      expect(c.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) expect(Object.is(c[i], a[i])).toBe(true);
    }
    expect(restored.n).toBe(b.n);
    expect(restored.prompt_hash).toBe(b.prompt_hash);
    expect(restored.model).toBe('m1');
    expect(restored.provider).toBe('p1');
    // the same next samples give the same state
    const r1 = rng(99);
    const r2 = rng(99);
    for (let i = 0; i < 50; i++) {
      learn(b, sample(r1, i), cfg);
      learn(restored, sample(r2, i), cfg);
    }
    expect(JSON.stringify(snapshotBaseline(restored))).toBe(JSON.stringify(snapshotBaseline(b)));
  });

  it('is compact: a snapshot serialises to well under 2 KB', () => {
    expect(JSON.stringify(snapshotBaseline(learned(100))).length).toBeLessThan(2048);
  });

  it.each([
    ['a short array', (s: Record<string, unknown>) => ({ ...s, mean: [1, 2] }), "'mean' must be 6"],
    ['a NaN', (s: Record<string, unknown>) => ({ ...s, variance: [NaN, 0, 0, 0, 0, 0] }), "'variance'"],
    ['a string', (s: Record<string, unknown>) => ({ ...s, rate: ['x', 0] }), "'rate'"],
    ['a missing field', (s: Record<string, unknown>) => ({ ...s, p95: undefined }), "'p95'"],
  ])('rejects %s with an error naming the field', (_name, mutate, message) => {
    const good = snapshotBaseline(learned(20)) as unknown as Record<string, unknown>;
    expect(() => restoreBaseline(mutate(good) as never)).toThrow(message);
  });

  it('has one entry per continuous metric', () => {
    expect(snapshotBaseline(learned(20)).mean).toHaveLength(NC);
  });
});

describe('metric readers', () => {
  it('readContinuous agrees with every metric’s own reader', async () => {
    const { readContinuous } = await import('../../src/engine/metrics.js');
    const v = sample(rng(2), 0);
    const out = new Float64Array(NC);
    readContinuous(v, out);
    expect(Array.from(out)).toEqual(CONTINUOUS.map((m) => m.read(v)));
  });
});

describe('log1pOf (remembered log1p of whole numbers on the per-sample path)', () => {
  it('gives exactly the double Math.log1p gives, remembered or not, including ±0, the table edge, fractions and huge values', () => {
    const r = rng(7);
    const xs = [0, -0, 1, 2, 32767, 32768, 32769, 0.5, 1e-300, 1e12, 2 ** 31, Number.MIN_VALUE];
    for (let i = 0; i < 20_000; i++) xs.push(Math.floor(r.next() * 40_000), r.next() * 5000);
    for (const pass of [1, 2]) for (const x of xs) expect(Object.is(log1pOf(x), Math.log1p(x)), `${x} (pass ${pass})`).toBe(true);
  });
});
