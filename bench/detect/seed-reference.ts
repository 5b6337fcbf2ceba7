import type { DiagnosisType } from '../../src/domain/types.js';
import type { Vitals } from '../../src/domain/vitals.js';
import type { Detection } from '../../src/control/replay.js';

/**
 * The seed prototype's detection, re-expressed in TypeScript as the benchmark's
 * reference (behaviour of immune_system/detection.py, baseline.py and
 * diagnosis.py as the issue describes it): per agent and metric an EWMA mean and
 * variance in linear units (span 50) updated by every sample, ready after 15
 * samples; the mean of the last 5 samples is compared with the EWMA mean, and a
 * metric is anomalous beyond 2.5σ, with σ floored at 5 % of the mean; retries
 * and errors are anomalous when more than 30 % of the last 5 samples have them;
 * the prompt changed when most of the last 5 carry a hash other than the one
 * seen while learning. It runs with the same replay semantics as the engine:
 * an agent is flagged once per episode and judged again after 5 clean samples.
 */

const METRICS = ['latency', 'tokens', 'input_tokens', 'output_tokens', 'cost', 'tools'] as const;
const ANOMALY: Record<(typeof METRICS)[number], string> = {
  latency: 'latency_spike',
  tokens: 'token_spike',
  input_tokens: 'input_token_spike',
  output_tokens: 'output_token_spike',
  cost: 'cost_spike',
  tools: 'tool_explosion',
};
const read = (v: Vitals): number[] => [v.latency_ms, v.token_count, v.input_tokens, v.output_tokens, v.cost, v.tool_calls];

const SPAN = 50;
const MIN_SAMPLES = 15;
const WINDOW = 5;
const THRESHOLD = 2.5;
const SIGMA_FLOOR = 0.05;
const RATE_LIMIT = 0.3;
const PROBATION = 5;

interface AgentState {
  n: number;
  mean: number[];
  variance: number[];
  recent: Vitals[];
  learningHashes: Map<string, number>;
  promptHash: string;
  /** Flagged and not yet back to normal for PROBATION samples. */
  contained: boolean;
  clean: number;
}

export class SeedReference {
  private readonly agents = new Map<string, AgentState>();

  observe(v: Vitals): Detection | null {
    let a = this.agents.get(v.agent_id);
    if (!a) this.agents.set(v.agent_id, (a = { n: 0, mean: [], variance: [], recent: [], learningHashes: new Map(), promptHash: '', contained: false, clean: 0 }));
    a.recent.push(v);
    if (a.recent.length > WINDOW) a.recent.shift();
    let found: Detection | null = null;
    if (a.n >= MIN_SAMPLES) {
      const d = this.detect(v.agent_id, a, v.timestamp);
      if (a.contained) {
        a.clean = d ? 0 : a.clean + 1;
        if (a.clean >= PROBATION) a.contained = false;
      } else if (d) {
        a.contained = true;
        a.clean = 0;
        found = d;
      }
    }
    this.learn(a, v);
    return found;
  }

  private learn(a: AgentState, v: Vitals): void {
    a.n += 1;
    const alpha = Math.max(2 / (SPAN + 1), 1 / a.n);
    const xs = read(v);
    for (let i = 0; i < xs.length; i++) {
      if (a.n === 1) {
        a.mean[i] = xs[i];
        a.variance[i] = 0;
        continue;
      }
      const diff = xs[i] - a.mean[i];
      a.mean[i] += alpha * diff;
      a.variance[i] = (1 - alpha) * (a.variance[i] + alpha * diff * diff);
    }
    if (a.n <= MIN_SAMPLES && v.prompt_hash) {
      a.learningHashes.set(v.prompt_hash, (a.learningHashes.get(v.prompt_hash) ?? 0) + 1);
      let best = '';
      let count = 0;
      for (const [h, c] of a.learningHashes) if (c > count) [best, count] = [h, c];
      a.promptHash = best;
    }
  }

  private detect(agentId: string, a: AgentState, ts: number): Detection | null {
    const k = a.recent.length;
    const avg = new Array<number>(METRICS.length).fill(0);
    for (const v of a.recent) read(v).forEach((x, i) => (avg[i] += x / k));
    const deviations: Record<string, number> = {};
    const anomalies: string[] = [];
    for (let i = 0; i < METRICS.length; i++) {
      const sd = Math.max(Math.sqrt(a.variance[i]), SIGMA_FLOOR * Math.abs(a.mean[i]));
      if (sd <= 0) continue;
      const dev = Math.abs(avg[i] - a.mean[i]) / sd;
      deviations[METRICS[i]] = dev;
      if (dev > THRESHOLD) anomalies.push(ANOMALY[METRICS[i]]);
    }
    const retryRate = a.recent.filter((v) => v.retries > 0).length / k;
    if (retryRate > RATE_LIMIT) {
      anomalies.push('high_retry_rate');
      deviations.retry_rate = retryRate * 10;
    }
    const errorRate = a.recent.filter((v) => v.error_type !== '').length / k;
    if (errorRate > RATE_LIMIT) {
      anomalies.push('error_rate_spike');
      deviations.error_rate = errorRate * 10;
    }
    if (a.promptHash) {
      const changed = a.recent.filter((v) => v.prompt_hash && v.prompt_hash !== a.promptHash).length;
      if (changed >= Math.floor(k / 2) + 1) {
        anomalies.push('prompt_change');
        deviations.prompt_change = 10;
      }
    }
    if (anomalies.length === 0) return null;
    const max = Math.max(...Object.values(deviations));
    const [diagnosis, confidence] = seedDiagnosis(anomalies, deviations);
    const rounded: Record<string, number> = {};
    for (const [key, d] of Object.entries(deviations)) rounded[key] = Math.round(d * 100) / 100;
    return { agent_id: agentId, timestamp: ts, max_deviation: Math.round(max * 100) / 100, anomalies, deviations: rounded, diagnosis, confidence, severity: max >= 5 ? 'severe' : 'mild' };
  }
}

/** The seed's first-match diagnosis rules (it has no cost_overrun and no external_cause). */
function seedDiagnosis(an: string[], dev: Record<string, number>): [DiagnosisType, number] {
  const has = (x: string) => an.includes(x);
  if (has('prompt_change')) return ['prompt_injection', has('input_token_spike') ? 0.95 : 0.8];
  if (has('input_token_spike') && (dev.input_tokens ?? 0) > 3) return ['prompt_injection', 0.85];
  if (has('output_token_spike') && (dev.output_tokens ?? 0) > 3) return ['prompt_drift', 0.85];
  if (has('token_spike') && (dev.tokens ?? 0) > 3) return ['prompt_drift', 0.85];
  if (has('tool_explosion') && (dev.tools ?? 0) > 3) return ['infinite_loop', 0.9];
  if (has('latency_spike') && (has('high_retry_rate') || has('error_rate_spike'))) return ['tool_instability', 0.75];
  if (has('error_rate_spike')) return ['tool_instability', 0.7];
  if (has('latency_spike')) return ['tool_instability', 0.6];
  if (has('high_retry_rate')) return ['memory_corruption', 0.65];
  return ['unknown', 0.3];
}
