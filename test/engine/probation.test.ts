import { describe, expect, it } from 'vitest';
import type { Infection } from '../../src/domain/types.js';
import { learn, newBaseline } from '../../src/engine/baseline.js';
import { engineConfig } from '../../src/engine/config.js';
import { addSample, newTally, probationDecision } from '../../src/engine/probation.js';
import { makeVitals } from '../support/vitals.js';

const cfg = engineConfig();

function trained() {
  const next = makeVitals('p-1', 11);
  const b = newBaseline();
  for (let i = 0; i < 60; i++) learn(b, next(), cfg);
  return { b, next };
}

const toolInfection: Infection = { agent_id: 'p-1', timestamp: 0, max_deviation: 3, anomalies: ['tool_explosion'], deviations: { tools: 3 }, severity: 'mild' };

describe('probation', () => {
  it('waits for PROBATION_SAMPLES samples, then passes when the sick metric is back to normal', () => {
    const { b, next } = trained();
    const t = newTally();
    for (let i = 0; i < cfg.probationSamples - 1; i++) {
      addSample(t, b, next(), cfg);
      expect(probationDecision(t, b, toolInfection, cfg).kind).toBe('wait');
    }
    addSample(t, b, next(), cfg);
    expect(probationDecision(t, b, toolInfection, cfg).kind).toBe('pass');
  });

  it('fails when a subtle fault is still there, even if no sample alone looks alarming', () => {
    const { b, next } = trained();
    const t = newTally();
    let d = probationDecision(t, b, toolInfection, cfg);
    for (let i = 0; i < 3 * cfg.probationSamples && d.kind === 'wait'; i++) {
      addSample(t, b, next({ tools: 2.3 }), cfg);
      d = probationDecision(t, b, toolInfection, cfg);
    }
    expect(d.kind).toBe('fail');
    if (d.kind === 'fail') expect(d.deviations.tools).toBeGreaterThan(1.5);
  });

  it('a single heavy-tail outlier on a watched metric does not fail it', () => {
    const { b, next } = trained();
    const t = newTally();
    const latencyInfection: Infection = { ...toolInfection, anomalies: ['latency_spike'], deviations: { latency: 4 } };
    addSample(t, b, next({ latency: 8 }), cfg);
    for (let i = 0; i < 3 * cfg.probationSamples; i++) addSample(t, b, next(), cfg);
    expect(probationDecision(t, b, latencyInfection, cfg).kind).toBe('pass');
  });

  it('only the metrics that were sick are watched (a manual quarantine watches all)', () => {
    const { b, next } = trained();
    const t = newTally();
    for (let i = 0; i < cfg.probationSamples; i++) addSample(t, b, next({ input: 3 }), cfg);
    expect(probationDecision(t, b, toolInfection, cfg).kind).toBe('pass');
    expect(probationDecision(t, b, null, cfg).kind).toBe('fail');
  });

  describe('rate faults (retries)', () => {
    const retryInfection: Infection = { ...toolInfection, anomalies: ['high_retry_rate'], deviations: { retry_rate: 4 } };
    const withRetries = (next: () => ReturnType<ReturnType<typeof makeVitals>>, retries: number) => ({ ...next(), retries });

    it('does not pass five quiet samples: a still-sick agent retrying 0.8 times per task shows none that often', () => {
      const { b, next } = trained();
      const t = newTally();
      for (let i = 0; i < cfg.probationSamples; i++) addSample(t, b, withRetries(next, 0), cfg);
      expect(probationDecision(t, b, retryInfection, cfg).kind).toBe('wait');
      // a tool fault's probation with the same samples passes at once: only rate faults need the longer look
      expect(probationDecision(t, b, toolInfection, cfg).kind).toBe('pass');
    });

    it('passes once a sick rate would have shown itself, and fails when the retries are still there', () => {
      const { b, next } = trained();
      const quiet = newTally();
      let d = probationDecision(quiet, b, retryInfection, cfg);
      for (let i = 0; i < 3 * cfg.probationSamples && d.kind === 'wait'; i++) {
        addSample(quiet, b, withRetries(next, i === 7 ? 1 : 0), cfg);
        d = probationDecision(quiet, b, retryInfection, cfg);
      }
      expect(d.kind).toBe('pass');
      expect(quiet.n).toBeGreaterThan(cfg.probationSamples);

      const sick = newTally();
      d = probationDecision(sick, b, retryInfection, cfg);
      for (let i = 0; i < 3 * cfg.probationSamples && d.kind === 'wait'; i++) {
        addSample(sick, b, withRetries(next, i % 2), cfg);
        d = probationDecision(sick, b, retryInfection, cfg);
      }
      expect(d.kind).toBe('fail');
    });
  });
});

