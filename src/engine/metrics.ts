import type { AnomalyType } from '../domain/types.js';
import type { Vitals } from '../domain/vitals.js';

/**
 * Continuous metrics are judged in log space: latency, tokens and cost are
 * multiplicative and heavy-tailed, so log1p makes "3× normal" the same
 * distance for every agent and tames the tail.
 */
export interface ContinuousMetric {
  /** Name used in `deviations` and in baselines (seed spelling). */
  key: 'latency' | 'tokens' | 'input_tokens' | 'output_tokens' | 'cost' | 'tools';
  anomaly: AnomalyType;
  /** The value in this metric's unit (see `unit`). */
  read(v: Vitals): number;
  /**
   * Wire units per read unit. log1p(x) is only log-like when x ≫ 1: cost per task
   * is a few hundredths of a dollar, so it is read in hundredths of a cent
   * (otherwise a 10× cost spike is a fraction of one σ floor).
   */
  unit: number;
  /** Smallest change in read units that matters (1 tool call, 20 tokens…): floors σ for near-constant metrics. */
  resolution: number;
  label: string;
}

/** Cost is read in hundredths of a cent (USD 0.0001). */
const COST_UNIT = 1e-4;

export const CONTINUOUS: readonly ContinuousMetric[] = [
  { key: 'latency', anomaly: 'latency_spike', read: (v) => v.latency_ms, unit: 1, resolution: 20, label: 'latency' },
  { key: 'tokens', anomaly: 'token_spike', read: (v) => v.token_count, unit: 1, resolution: 20, label: 'total tokens' },
  { key: 'input_tokens', anomaly: 'input_token_spike', read: (v) => v.input_tokens, unit: 1, resolution: 20, label: 'input tokens' },
  { key: 'output_tokens', anomaly: 'output_token_spike', read: (v) => v.output_tokens, unit: 1, resolution: 20, label: 'output tokens' },
  { key: 'cost', anomaly: 'cost_spike', read: (v) => v.cost / COST_UNIT, unit: COST_UNIT, resolution: 2, label: 'cost' },
  { key: 'tools', anomaly: 'tool_explosion', read: (v) => v.tool_calls, unit: 1, resolution: 1, label: 'tool calls' },
];

/** Rate metrics are judged with count statistics (Bernoulli errors, Poisson retries), not σ of a 0/1 stream. */
export interface RateMetric {
  key: 'retry_rate' | 'error_rate';
  anomaly: AnomalyType;
  read(v: Vitals): number;
  kind: 'poisson' | 'bernoulli';
  label: string;
}

/** A task failed when it says so or names an error. */
const failed = (v: Vitals): number => (v.success && v.error_type === '' ? 0 : 1);

export const RATES: readonly RateMetric[] = [
  { key: 'retry_rate', anomaly: 'high_retry_rate', read: (v) => v.retries, kind: 'poisson', label: 'retries per task' },
  { key: 'error_rate', anomaly: 'error_rate_spike', read: (v) => failed(v), kind: 'bernoulli', label: 'error rate' },
];

export const NC = CONTINUOUS.length;

/**
 * Reads every continuous metric of `v` into `out` in CONTINUOUS order (read units).
 * The per-sample path uses this instead of six different `read` closures at one
 * call site, which V8 cannot inline.
 */
export function readContinuous(v: Vitals, out: Float64Array): void {
  out[0] = v.latency_ms;
  out[1] = v.token_count;
  out[2] = v.input_tokens;
  out[3] = v.output_tokens;
  out[4] = v.cost / COST_UNIT;
  out[5] = v.tool_calls;
}
/** Reads both rate metrics of `v` into `out` in RATES order, for the same reason as readContinuous. */
export function readRates(v: Vitals, out: Float64Array): void {
  out[0] = v.retries;
  out[1] = failed(v);
}
export const NR = RATES.length;
export const METRIC_KEYS = [...CONTINUOUS.map((m) => m.key), ...RATES.map((m) => m.key)] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];
export const LATENCY = 0;
export const TOKENS = 1;
export const INPUT = 2;
export const OUTPUT = 3;
export const COST = 4;
export const TOOLS = 5;
export const ERRORS = 1;
export const RETRIES = 0;
