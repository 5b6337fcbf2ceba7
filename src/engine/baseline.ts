import { ImmuneError } from '../domain/errors.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineConfig } from './config.js';
import { CONTINUOUS, NC, NR, RATES, readContinuous, readRates, TOOLS } from './metrics.js';

/**
 * What "normal" is for one agent. Continuous metrics keep an EWMA mean and
 * variance of log1p(x) (plus a linear mean and a p95 tracker for display);
 * rates keep an EWMA of retries per task and of the error probability.
 * Updated in place: this is per-sample hot-path state (≈ 400 bytes).
 */
export interface Baseline {
  n: number;
  /** log1p-space EWMA mean, variance and p95 per continuous metric. */
  mean: Float64Array;
  variance: Float64Array;
  p95: Float64Array;
  /** Linear-space EWMA mean per continuous metric (in the metric's read unit), for display and ratios. */
  linear: Float64Array;
  /** EWMA of retries per task and of P(error). */
  rate: Float64Array;
  /** EWMA of tool calls per task and of their squared deviation (counts, learned over the slow span like the rates). */
  toolRate: number;
  toolVar: number;
  prompt_hash: string;
  model: string;
  provider: string;
}

export function newBaseline(): Baseline {
  return {
    n: 0,
    mean: new Float64Array(NC),
    variance: new Float64Array(NC),
    p95: new Float64Array(NC),
    linear: new Float64Array(NC),
    rate: new Float64Array(NR),
    toolRate: 0,
    toolVar: 0,
    prompt_hash: '',
    model: '',
    provider: '',
  };
}

/**
 * The spread and the retry/error rates are learned over 4× the span of the
 * level. A variance from ~50 heavy-tailed samples swings by ±30 % and every
 * low swing is a burst of false alarms; a rate of 0.03 per task sees 1–2
 * events in 50 samples. Neither needs to follow the workload as fast as the
 * level does.
 */
const SLOW_SPAN_FACTOR = 4;
/** σ × (1 + 4/n): 1.27 right after learning (n = 15), 1.02 once the spread has seen 200 samples. */
const SMALL_SAMPLE_WIDENING = 4;

export function isReady(b: Baseline, cfg: EngineConfig): boolean {
  return b.n >= cfg.minSamples;
}

/** CONTINUOUS[i].resolution, read per metric and sample without going through the metric's object. */
export const RESOLUTION = Float64Array.from(CONTINUOUS, (m) => m.resolution);

/** How much a spread learned from `b.n` samples is widened (the same for every metric of the baseline; see effectiveSigma). */
export function smallSampleWidening(b: Baseline, cfg: EngineConfig): number {
  // A spread learned from few samples is often too small (15 samples: ±19 %); widen it like a t-quantile would.
  return 1 + SMALL_SAMPLE_WIDENING / Math.max(1, Math.min(b.n, SLOW_SPAN_FACTOR * cfg.ewmaSpan));
}

/** σ in log space with the floors applied: the relative floor, and the metric's resolution at its current level. */
export function effectiveSigma(b: Baseline, i: number, cfg: EngineConfig): number {
  return flooredSigma(b.variance[i], b.linear[i], RESOLUTION[i], cfg.sigmaFloor, smallSampleWidening(b, cfg));
}

/**
 * effectiveSigma from the numbers it needs: the sentinel's per-sample loop has them at hand and works
 * out `widening` (smallSampleWidening) once for all metrics.
 */
export function flooredSigma(variance: number, linear: number, resolution: number, floor: number, widening: number): number {
  const sigma = Math.max(Math.sqrt(variance) * widening, floor);
  // The resolution floor is log1p(m + r) − log1p(m) = log1p(q) with q = r/(1 + m) ≥ log1p(q): when q
  // is already below σ the floor cannot bind and the logarithm is skipped (the usual case for tokens
  // and latency, on the per-sample path). Tested as r ≤ σ·(1 + m), without the division.
  const level = 1 + linear;
  return resolution <= sigma * level ? sigma : Math.max(sigma, Math.log1p(resolution / level));
}

/**
 * Folds one normal sample into the baseline. While learning, α = max(α, 1/n)
 * (a running average, so 15 samples already give a fair estimate). Once ready,
 * values are winsorised at mean ± clip·σ so a tail sample teaches the spread
 * without dragging the mean. `weight` (0–1] slows learning down for samples
 * that are only mildly suspect. `logs`, when given, holds log1p of the sample's continuous metrics
 * (the sentinel's SAMPLE_LOGS after judging this very sample), so they are not worked out twice.
 */
export function learn(b: Baseline, v: Vitals, cfg: EngineConfig, clipSigma = Infinity, weight = 1, rateWeight = weight, toolWeight = weight, logs?: Float64Array): void {
  const n = (b.n += 1);
  const base = Math.max(2 / (cfg.ewmaSpan + 1), 1 / n);
  const baseV = Math.max(2 / (SLOW_SPAN_FACTOR * cfg.ewmaSpan + 1), 1 / n);
  const alphaR = rateWeight * Math.max(2 / (SLOW_SPAN_FACTOR * cfg.ewmaSpan + 1), 1 / n);
  const first = n === 1;
  const floor = cfg.sigmaFloor;
  const settling = n <= cfg.minSamples;
  // Each metric's state is read into locals once and written back once: the arrays could alias as far
  // as the compiler knows, so every read after a write to one of them would be a load again.
  const mean = b.mean;
  const variance = b.variance;
  const linear = b.linear;
  const p95 = b.p95;
  readContinuous(v, X);
  for (let i = 0; i < NC; i++) {
    const w = i === TOOLS ? toolWeight : weight;
    if (w === 0 && !first) continue;
    const alpha = w * base;
    const alphaV = w * baseV;
    const x = X[i];
    const unclipped = logs === undefined ? log1pOf(x) : logs[i];
    let y = unclipped;
    if (first) {
      mean[i] = y;
      variance[i] = 0;
      linear[i] = x;
      p95[i] = y;
      continue;
    }
    const m = mean[i];
    const vr = variance[i];
    const sd = Math.sqrt(vr);
    if (clipSigma !== Infinity) {
      const lim = clipSigma * Math.max(sd, floor);
      if (y > m + lim) y = m + lim;
      else if (y < m - lim) y = m - lim;
    }
    const diff = y - m;
    const m1 = m + alpha * diff;
    const vr1 = (1 - alphaV) * (vr + alphaV * diff * diff);
    mean[i] = m1;
    variance[i] = vr1;
    const l = linear[i];
    linear[i] = l + alpha * ((y === unclipped ? x : Math.expm1(y)) - l);
    if (settling) {
      p95[i] = m1 + 1.645 * Math.sqrt(vr1);
    } else {
      // Stochastic-approximation quantile: +0.95·step above, −0.05·step below settles where 5% of samples lie above.
      const step = 2 * alpha * Math.max(sd, floor);
      const q = p95[i];
      p95[i] = q + (y > q ? 0.95 * step : -0.05 * step);
    }
  }
  readRates(v, R);
  for (let j = 0; j < NR; j++) {
    const r = R[j];
    b.rate[j] = first ? r : b.rate[j] + alphaR * (r - b.rate[j]);
  }
  // One runaway task (thousands of calls) must not drag the rate: clip far above it.
  const tools = first ? v.tool_calls : Math.min(v.tool_calls, 4 * b.toolRate + 4);
  const alphaT = toolWeight * baseV;
  const dt = tools - b.toolRate;
  b.toolRate = first ? tools : b.toolRate + alphaT * dt;
  b.toolVar = first ? 0 : (1 - alphaT) * (b.toolVar + alphaT * dt * dt);
  if (v.prompt_hash !== '') b.prompt_hash = v.prompt_hash;
  if (v.model !== '') b.model = v.model;
  if (v.provider !== '') b.provider = v.provider;
}

/** Scratch for one sample's values (learn is not re-entrant). */
const X = new Float64Array(NC);
const R = new Float64Array(NR);

/** Integers below this have their log1p remembered (256 KB, touched only where used). */
const LOG1P_INTS = 1 << 15;
/** Math.log1p(k) for integer k, filled on first use (0 = not yet: log1p(k) > 0 for k ≥ 1). */
const LOG1P = new Float64Array(LOG1P_INTS);

/**
 * Math.log1p(x), the same double: latency, token and tool counts are usually whole numbers and
 * repeat, and a table read is several times cheaper than the library call on the per-sample path.
 */
export function log1pOf(x: number): number {
  if (x === 0) return x; // log1p(±0) is ±0
  if (x > 0 && x < LOG1P_INTS && (x | 0) === x) {
    const y = LOG1P[x];
    return y !== 0 ? y : (LOG1P[x] = Math.log1p(x));
  }
  return Math.log1p(x);
}

export interface MetricBaseline {
  mean: number;
  stddev: number;
  p95: number;
}

/** Human-facing view in wire units (ms, tokens, USD, calls, rates). */
export function describeBaseline(b: Baseline): Record<string, MetricBaseline> & { prompt_hash?: unknown } {
  const out: Record<string, MetricBaseline> = {};
  for (let i = 0; i < NC; i++) {
    const m = b.mean[i];
    const sd = Math.sqrt(b.variance[i]);
    // Spread in linear units from the log-space spread around the typical value.
    const stddev = (Math.expm1(m + sd) - Math.expm1(m - sd)) / 2;
    const u = CONTINUOUS[i].unit;
    out[CONTINUOUS[i].key] = { mean: b.linear[i] * u, stddev: stddev * u, p95: Math.max(0, Math.expm1(b.p95[i])) * u };
  }
  for (let j = 0; j < NR; j++) {
    const r = b.rate[j];
    const sd = RATES[j].kind === 'bernoulli' ? Math.sqrt(r * (1 - r)) : Math.sqrt(r);
    out[RATES[j].key] = { mean: r, stddev: sd, p95: r + 1.645 * sd };
  }
  return out;
}

export interface BaselineSnapshot {
  n: number;
  mean: number[];
  variance: number[];
  p95: number[];
  linear: number[];
  rate: number[];
  /** Absent in snapshots written before tool calls were judged as counts (restored from the linear mean). */
  tool_rate?: number;
  tool_var?: number;
  prompt_hash: string;
  model: string;
  provider: string;
}

/** JSON-safe and exact: doubles survive JSON round trips bit for bit. */
export function snapshotBaseline(b: Baseline): BaselineSnapshot {
  return {
    n: b.n,
    mean: Array.from(b.mean),
    variance: Array.from(b.variance),
    p95: Array.from(b.p95),
    linear: Array.from(b.linear),
    rate: Array.from(b.rate),
    tool_rate: b.toolRate,
    tool_var: b.toolVar,
    prompt_hash: b.prompt_hash,
    model: b.model,
    provider: b.provider,
  };
}

function finite(x: unknown, name: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new ImmuneError('IMM_ERR_VALIDATION', `baseline snapshot: '${name}' must be a finite number`, { field: name });
  return x;
}

export function restoreBaseline(s: BaselineSnapshot): Baseline {
  const arr = (xs: number[], len: number, name: string) => {
    if (!Array.isArray(xs) || xs.length !== len || xs.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      throw new ImmuneError('IMM_ERR_VALIDATION', `baseline snapshot: '${name}' must be ${len} finite numbers`, { field: name });
    }
    return Float64Array.from(xs);
  };
  return {
    n: s.n,
    mean: arr(s.mean, NC, 'mean'),
    variance: arr(s.variance, NC, 'variance'),
    p95: arr(s.p95, NC, 'p95'),
    linear: arr(s.linear, NC, 'linear'),
    rate: arr(s.rate, NR, 'rate'),
    toolRate: s.tool_rate === undefined ? (s.linear?.[TOOLS] ?? 0) : finite(s.tool_rate, 'tool_rate'),
    // Poisson (variance = mean) until the spread has been learned.
    toolVar: s.tool_var === undefined ? (s.linear?.[TOOLS] ?? 0) : finite(s.tool_var, 'tool_var'),
    prompt_hash: s.prompt_hash ?? '',
    model: s.model ?? '',
    provider: s.provider ?? '',
  };
}
