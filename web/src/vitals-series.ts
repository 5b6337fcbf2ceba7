/** Pure helpers behind the detail charts: the normal band, the markers, live samples and gaps. */
import { sigma, words } from './format';
import type { AgentSummary, BaselineMetric, ImmuneEvent, LatestVitals, Vitals } from './types';

export interface Band {
  low: number;
  high: number;
  mean: number;
}

export interface Marker {
  ts: number;
  label: string;
  kind: 'infection' | 'healing' | 'healed';
}

/** The sentinel's per-sample threshold (EngineConfig.thresholdSigma): the band drawn when the server sends no low/high. */
const BAND_SIGMA = 2.5;

/** The normal band in the metric's units: the server's low/high when given, else mean ± 2.5 σ. */
export function bandOf(b: BaselineMetric | undefined): Band | null {
  if (!b) return null;
  const low = b.low ?? Math.max(0, b.mean - BAND_SIGMA * b.stddev);
  const high = b.high ?? Math.max(b.p95, b.mean + BAND_SIGMA * b.stddev);
  return { low, high, mean: b.mean };
}

/** The dashboard's summary of the latest task, back in the engine's vitals spelling, to extend the charts live. */
export function vitalsOfLatest(id: string, l: LatestVitals): Vitals {
  return {
    agent_id: id,
    timestamp: l.timestamp,
    latency_ms: l.latency,
    token_count: l.tokens,
    input_tokens: l.input_tokens,
    output_tokens: l.output_tokens,
    cost: l.cost,
    tool_calls: l.tools,
    retries: l.retries,
    success: l.success,
    error_type: l.error_type,
  };
}

/** Moments worth a vertical line: detection, each applied action, and the verdict that the agent healed. */
export function markersOf(history: readonly ImmuneEvent[], agent: AgentSummary | null): Marker[] {
  const out: Marker[] = [];
  for (const e of history) {
    if (e.type === 'infection_detected' || e.type === 'probation_failed') {
      const dev = e.infection?.max_deviation;
      out.push({ ts: e.ts, kind: 'infection', label: dev === undefined ? 'infection' : `infection ${sigma(dev)}` });
    } else if (e.type === 'action_applied') out.push({ ts: e.ts, kind: 'healing', label: words(String(e.action ?? 'healing')) });
    else if (e.type === 'probation_passed') out.push({ ts: e.ts, kind: 'healed', label: 'healed' });
  }
  const inf = agent?.infection;
  if (inf && !out.some((m) => m.kind === 'infection' && Math.abs(m.ts - inf.timestamp) < 0.001)) {
    out.push({ ts: inf.timestamp, kind: 'infection', label: `infection ${sigma(inf.max_deviation)}` });
  }
  return out.sort((a, b) => a.ts - b.ts);
}

/**
 * Times for the x axis, with a null row inserted wherever the agent did not
 * report for much longer than usual (quarantined, held for approval): the
 * chart then shows a break instead of a line drawn through time without tasks.
 */
export function withGaps(samples: readonly Vitals[]): { xs: number[]; rows: (Vitals | null)[] } {
  const dts = samples.slice(1).map((v, i) => v.timestamp - samples[i].timestamp).sort((a, b) => a - b);
  const typical = dts.length > 0 ? dts[Math.floor(dts.length / 2)] : 0;
  const xs: number[] = [];
  const rows: (Vitals | null)[] = [];
  samples.forEach((v, i) => {
    if (i > 0 && typical > 0 && v.timestamp - samples[i - 1].timestamp > 4 * typical) {
      xs.push((v.timestamp + samples[i - 1].timestamp) / 2);
      rows.push(null);
    }
    xs.push(v.timestamp);
    rows.push(v);
  });
  return { xs, rows };
}

