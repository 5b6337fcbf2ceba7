import { describe, expect, it } from 'vitest';
import type { AgentSummary, ImmuneEvent, Vitals } from '../../web/src/types.js';
import { bandOf, markersOf, vitalsOfLatest, withGaps } from '../../web/src/vitals-series.js';

const sample = (timestamp: number): Vitals => ({
  agent_id: 'a',
  timestamp,
  latency_ms: 100,
  input_tokens: 10,
  output_tokens: 5,
  token_count: 15,
  cost: 0.001,
  tool_calls: 1,
  retries: 0,
  success: true,
  error_type: '',
});

describe('bandOf', () => {
  it("uses the server's band when it sends one", () => {
    expect(bandOf({ mean: 100, stddev: 10, p95: 120, low: 60, high: 170 })).toEqual({ low: 60, high: 170, mean: 100 });
  });

  it('falls back to mean ± 2.5 σ, never below 0 and never below the p95 on top', () => {
    expect(bandOf({ mean: 100, stddev: 10, p95: 118 })).toEqual({ low: 75, high: 125, mean: 100 });
    expect(bandOf({ mean: 2, stddev: 4, p95: 20 })).toEqual({ low: 0, high: 20, mean: 2 });
  });

  it('has no band without a baseline', () => {
    expect(bandOf(undefined)).toBeNull();
  });
});

describe('withGaps', () => {
  it('breaks the line where the agent did not report for much longer than usual', () => {
    const samples = [0, 1, 2, 3, 20, 21].map(sample);
    const { xs, rows } = withGaps(samples);
    expect(xs).toEqual([0, 1, 2, 3, 11.5, 20, 21]);
    expect(rows.map((r) => (r === null ? null : r.timestamp))).toEqual([0, 1, 2, 3, null, 20, 21]);
  });

  it('leaves a regular series alone', () => {
    const { xs, rows } = withGaps([0, 1, 2.5, 3.5].map(sample));
    expect(xs).toEqual([0, 1, 2.5, 3.5]);
    expect(rows.every((r) => r !== null)).toBe(true);
  });
});

describe('markersOf', () => {
  const ev = (seq: number, type: string, extra: Partial<ImmuneEvent> = {}): ImmuneEvent => ({ seq, ts: seq * 10, agent_id: 'a', type, actor: 'system', reason: '', ...extra });

  it('marks detection, applied actions and the healed verdict, in time order', () => {
    const history = [
      ev(4, 'probation_passed', { action: 'reset_memory' }),
      ev(3, 'action_applied', { action: 'reset_memory' }),
      ev(2, 'approved'),
      ev(1, 'infection_detected', { infection: { timestamp: 10, max_deviation: 7.4, severity: 'severe', anomalies: [], deviations: {} } }),
    ];
    expect(markersOf(history, null)).toEqual([
      { ts: 10, kind: 'infection', label: 'infection 7.4σ' },
      { ts: 30, kind: 'healing', label: 'reset memory' },
      { ts: 40, kind: 'healed', label: 'healed' },
    ]);
  });

  it("adds the agent's current infection when the history does not reach back to it", () => {
    const agent = { infection: { timestamp: 5, max_deviation: 6, severity: 'severe', anomalies: [], deviations: {} } } as unknown as AgentSummary;
    expect(markersOf([], agent)).toEqual([{ ts: 5, kind: 'infection', label: 'infection 6.0σ' }]);
  });
});

describe('vitalsOfLatest', () => {
  it("maps the summary's latest task back to the engine's field names", () => {
    const v = vitalsOfLatest('a', { latency: 312, tokens: 1260, input_tokens: 820, output_tokens: 440, cost: 0.0038, tools: 3, retries: 1, success: false, error_type: 'timeout', timestamp: 99 });
    expect(v).toEqual({ agent_id: 'a', timestamp: 99, latency_ms: 312, token_count: 1260, input_tokens: 820, output_tokens: 440, cost: 0.0038, tool_calls: 3, retries: 1, success: false, error_type: 'timeout' });
  });
});
