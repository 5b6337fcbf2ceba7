import { readFileSync } from 'node:fs';
import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { parseVitals, type Vitals } from '../../src/domain/vitals.js';
import { ImmuneEngine } from '../../src/engine/engine.js';
import { ImmuneMetrics } from '../../src/integrations/prometheus.js';
import { SIGNALS, Signals, actorKind } from '../../src/integrations/signals.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (what a scraper sees) into samples. */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const pick = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) => {
  const found = pick(samples, name, labels);
  if (found.length !== 1) throw new Error(`expected one ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0].value;
};

async function scrape(m: ImmuneMetrics): Promise<Sample[]> {
  return parseExposition(await m.metricsText());
}

function vitals(agent_id: string, t: number, over: Record<string, unknown> = {}): Vitals {
  return parseVitals({ agent_id, agent_type: 'Research', model: 'gpt-4o', latency_ms: 1000 + (t % 5) * 20, input_tokens: 500 + (t % 7) * 10, output_tokens: 300 + (t % 3) * 10, cost: 0.01, tool_calls: 2, retries: 0, success: true, prompt_hash: 'p1', ...over }, t);
}

/**
 * One real episode through the engine: learn, a severe token spike, approval by
 * an operator, an applied action, probation passed. Returns the events and the
 * vitals fed, so assertions compare metrics to what the engine actually did.
 */
function episode(signals: Signals): { events: ImmuneEvent[]; fed: Vitals[] } {
  const engine = new ImmuneEngine({ healingStepDelaySeconds: 0 });
  const events: ImmuneEvent[] = [];
  const fed: Vitals[] = [];
  const feed = (v: Vitals) => {
    fed.push(v);
    signals.onVitals(v);
    const out = engine.observe(v);
    signals.onEvents(out.events);
    events.push(...out.events);
  };
  const apply = <T extends { events: ImmuneEvent[] }>(out: T): T => {
    signals.onEvents(out.events);
    events.push(...out.events);
    return out;
  };
  let t = 1000;
  for (let i = 0; i < 30; i++) feed(vitals('a1', ++t));
  while (engine.get('a1')?.wf.state !== 'pending_approval' && t < 1100) feed(vitals('a1', ++t, { input_tokens: 50_000, output_tokens: 30_000, success: false, error_type: 'overflow' }));
  const approved = apply(engine.approve('a1', 'operator:alice', t));
  const effect = approved.effects[0];
  apply(engine.actionResult('a1', effect.attempt_id, true, 'memory cleared', t + 2));
  while (engine.get('a1')?.wf.state === 'probation' && t < 1200) feed(vitals('a1', ++t + 10));
  return { events, fed };
}

describe('ImmuneMetrics (Prometheus)', () => {
  it('counts a real episode: infection, approval, healing and the two time histograms', async () => {
    const signals = new Signals({ maxAgentSeries: 10 });
    const metrics = new ImmuneMetrics(signals, { processMetrics: false });
    const { events, fed } = episode(signals);
    const infection = events.find((e) => e.type === 'infection_detected');
    const healed = events.find((e) => e.type === 'probation_passed');
    if (infection?.type !== 'infection_detected' || healed?.type !== 'probation_passed') throw new Error('the episode did not complete');
    const dx = infection.diagnosis.hypotheses[0].diagnosis;
    const s = await scrape(metrics);

    const ok = fed.filter((v) => v.success).length;
    expect(value(s, 'immune_agent_executions_total', { agent_type: 'Research', model: 'gpt-4o', outcome: 'success' })).toBe(ok);
    expect(value(s, 'immune_agent_executions_total', { agent_type: 'Research', model: 'gpt-4o', outcome: 'failure' })).toBe(fed.length - ok);
    expect(value(s, 'immune_agent_executions_by_agent_total', { agent_id: 'a1' })).toBe(fed.length);
    expect(value(s, 'immune_infections_total', { diagnosis: dx, severity: 'severe' })).toBe(1);
    for (const a of infection.infection.anomalies) expect(value(s, 'immune_infection_anomalies_total', { anomaly: a })).toBe(1);
    expect(value(s, 'immune_agent_infections_total', { agent_id: 'a1' })).toBe(1);
    expect(value(s, 'immune_approvals_requested_total', { diagnosis: dx })).toBe(1);
    expect(value(s, 'immune_approval_decisions_total', { decision: 'approved', actor_kind: 'operator' })).toBe(1);
    expect(value(s, 'immune_quarantine_events_total', { event: 'entered', cause: 'infection' })).toBe(1);
    expect(value(s, 'immune_quarantine_events_total', { event: 'released', cause: 'healed' })).toBe(1);
    expect(value(s, 'immune_healing_attempts_total', { diagnosis: healed.diagnosis, action: healed.action, trigger: 'after_approval' })).toBe(1);
    expect(value(s, 'immune_healing_outcomes_total', { action: healed.action, outcome: 'applied' })).toBe(1);
    expect(value(s, 'immune_healing_outcomes_total', { action: healed.action, outcome: 'healed' })).toBe(1);

    expect(value(s, 'immune_time_to_detect_samples_count', { severity: 'severe' })).toBe(1);
    expect(value(s, 'immune_time_to_detect_samples_sum', { severity: 'severe' })).toBe(infection.infection.evidence_samples);
    expect(value(s, 'immune_time_to_heal_seconds_count', { diagnosis: healed.diagnosis })).toBe(1);
    expect(value(s, 'immune_time_to_heal_seconds_sum', { diagnosis: healed.diagnosis })).toBe(healed.ts - infection.ts);
    // The observation lands in the first bucket whose bound covers it, and in every later one.
    const tth = healed.ts - infection.ts;
    for (const b of pick(s, 'immune_time_to_heal_seconds_bucket')) expect(b.value).toBe(b.labels.le === '+Inf' || Number(b.labels.le) >= tth ? 1 : 0);
  });

  it('keeps per-agent series bounded with 10,000 agents and loses no counts', async () => {
    const max = 50;
    const signals = new Signals({ maxAgentSeries: max, maxLabelValues: 20 });
    const metrics = new ImmuneMetrics(signals, { processMetrics: false });
    const n = 10_000;
    let seq = 0;
    for (let i = 0; i < n; i++) {
      const id = `agent-${i}`;
      // Free-text agent types and models too: a fleet (or a bad client) can send thousands of distinct values.
      signals.onVitals(vitals(id, 1000 + i, { agent_type: `type-${i}`, model: `model-${i}` }));
      signals.onEvent({ seq: ++seq, ts: 1000 + i, agent_id: id, actor: 'system', reason: '', type: 'infection_detected', infection: { agent_id: id, timestamp: 1000 + i, max_deviation: 3, anomalies: ['latency_spike'], deviations: {}, severity: 'mild', evidence_samples: 3 }, diagnosis: { agent_id: id, hypotheses: [{ diagnosis: 'tool_instability', confidence: 0.8, reasoning: '' }] } });
    }
    const s = await scrape(metrics);
    for (const name of ['immune_agent_executions_by_agent_total', 'immune_agent_infections_total']) {
      const series = pick(s, name);
      const ids = new Set(series.map((x) => x.labels.agent_id));
      expect(ids.size).toBe(max + 1);
      expect(ids.has('agent-0') && ids.has(`agent-${max - 1}`) && ids.has('other')).toBe(true);
      expect(ids.has(`agent-${max}`)).toBe(false);
      expect(value(s, name, { agent_id: 'other' })).toBe(n - max);
      expect(series.reduce((a, x) => a + x.value, 0)).toBe(n);
    }
    // 20 combinations of their own plus other/other, each with a success and a failure series.
    const exec = pick(s, 'immune_agent_executions_total');
    expect(exec).toHaveLength(2 * 21);
    expect(new Set(exec.map((x) => x.labels.model)).size).toBe(21);
    expect(exec.reduce((a, x) => a + x.value, 0)).toBe(n);
    expect(value(s, 'immune_agent_executions_total', { agent_type: 'other', model: 'other', outcome: 'success' })).toBe(n - 20);
    // The whole exposition stays small: no per-agent line beyond the bound.
    expect(s.length).toBeLessThan(600);
  });

  it('bounds (agent_type, model) combinations even when each value alone is within its bound', async () => {
    const signals = new Signals({ maxAgentSeries: 1, maxLabelValues: 3 });
    const metrics = new ImmuneMetrics(signals, { processMetrics: false });
    for (const type of ['a', 'b', 'c']) for (const model of ['x', 'y', 'z']) signals.onVitals(vitals('agent', 1, { agent_type: type, model }));
    const exec = pick(await scrape(metrics), 'immune_agent_executions_total', { outcome: 'success' });
    expect(exec.map((x) => `${x.labels.agent_type}/${x.labels.model}=${x.value}`).sort()).toEqual(['a/x=1', 'a/y=1', 'a/z=1', 'other/other=6']);
  });

  it('puts every agent under "other" when METRICS_MAX_AGENT_SERIES is 0, and refuses a negative bound', async () => {
    const signals = new Signals({ maxAgentSeries: 0 });
    const metrics = new ImmuneMetrics(signals, { processMetrics: false });
    signals.onVitals(vitals('a1', 1));
    signals.onVitals(vitals('a2', 2));
    expect(pick(await scrape(metrics), 'immune_agent_executions_by_agent_total')).toEqual([{ name: 'immune_agent_executions_by_agent_total', labels: { agent_id: 'other' }, value: 2 }]);
    expect(() => new Signals({ maxAgentSeries: -1 })).toThrow(/maxAgentSeries/);
  });

  it('labels operator decisions by actor kind and counts exhaustion, manual quarantine and fleet incidents', async () => {
    const signals = new Signals({ maxAgentSeries: 10 });
    const metrics = new ImmuneMetrics(signals, { processMetrics: false });
    const base = { ts: 5, agent_id: 'a1', reason: '' };
    let seq = 0;
    const ev = (e: Record<string, unknown>) => signals.onEvent({ ...base, seq: ++seq, actor: 'system', ...e } as ImmuneEvent);
    ev({ type: 'rejected', actor: 'operator:bob' });
    ev({ type: 'heal_now', actor: 'operator:bob' });
    ev({ type: 'heal_now', actor: 'robot-9000' });
    ev({ type: 'exhausted' });
    ev({ type: 'quarantined', actor: 'operator:carol' });
    ev({ type: 'released', actor: 'operator:carol' });
    ev({ type: 'action_failed', attempt_id: 'x', action: 'revoke_tools', diagnosis: 'tool_instability', detail: 'agent unreachable' });
    ev({ type: 'probation_failed', attempt_id: 'y', action: 'reset_memory', diagnosis: 'memory_corruption', infection: { agent_id: 'a1', timestamp: 5, max_deviation: 3, anomalies: [], deviations: {}, severity: 'mild' } });
    ev({ type: 'fleet_incident_started', agent_id: 'fleet:provider:openai', incident: { id: 'i1', group: 'provider:openai', started_at: 5, agents: ['a1', 'a2', 'a3'], anomalies: ['latency_spike'], max_deviation: 4 } });
    const s = await scrape(metrics);
    expect(value(s, 'immune_approval_decisions_total', { decision: 'rejected', actor_kind: 'operator' })).toBe(1);
    expect(value(s, 'immune_approval_decisions_total', { decision: 'heal_now', actor_kind: 'operator' })).toBe(1);
    expect(value(s, 'immune_approval_decisions_total', { decision: 'heal_now', actor_kind: 'other' })).toBe(1);
    expect(value(s, 'immune_agents_exhausted_total')).toBe(1);
    expect(value(s, 'immune_quarantine_events_total', { event: 'entered', cause: 'operator' })).toBe(1);
    expect(value(s, 'immune_quarantine_events_total', { event: 'released', cause: 'operator' })).toBe(1);
    expect(value(s, 'immune_healing_outcomes_total', { diagnosis: 'tool_instability', action: 'revoke_tools', outcome: 'failed' })).toBe(1);
    expect(value(s, 'immune_healing_outcomes_total', { diagnosis: 'memory_corruption', action: 'reset_memory', outcome: 'relapsed' })).toBe(1);
    expect(value(s, 'immune_fleet_incidents_total', { group_kind: 'provider' })).toBe(1);
    // A heal without a detected infection in view (e.g. across a restart) records no time to heal rather than a wrong one.
    ev({ type: 'probation_passed', attempt_id: 'z', action: 'reset_memory', diagnosis: 'memory_corruption' });
    expect(pick(await scrape(metrics), 'immune_time_to_heal_seconds_count')).toEqual([]);
    expect(actorKind('viewer:eve')).toBe('viewer');
  });

  it('reads gauges and webhook counters from callbacks at scrape time', async () => {
    let pending = 2;
    const signals = new Signals({
      maxAgentSeries: 10,
      agentStates: () => ({ healthy: 7, pending_approval: pending }),
      activeIncidents: () => 1,
      webhookStats: () => ({ sent: 4, failed: 1, dropped: 0 }),
    });
    const metrics = new ImmuneMetrics(signals, { processMetrics: false });
    let s = await scrape(metrics);
    expect(value(s, 'immune_agents', { state: 'healthy' })).toBe(7);
    expect(value(s, 'immune_agents', { state: 'pending_approval' })).toBe(2);
    expect(value(s, 'immune_agents', { state: 'exhausted' })).toBe(0);
    expect(value(s, 'immune_fleet_incidents_active')).toBe(1);
    expect(value(s, 'immune_webhook_deliveries_total', { result: 'sent' })).toBe(4);
    expect(value(s, 'immune_webhook_deliveries_total', { result: 'failed' })).toBe(1);
    pending = 0;
    s = await scrape(metrics);
    expect(value(s, 'immune_agents', { state: 'pending_approval' })).toBe(0);
  });

  it('uses its own registry (two instances coexist, the global registry stays empty) and serves text format', async () => {
    const a = new ImmuneMetrics(new Signals({ maxAgentSeries: 1 }));
    const b = new ImmuneMetrics(new Signals({ maxAgentSeries: 1 }));
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await globalRegistry.metrics()).not.toContain('immune_');
    const text = await b.metricsText();
    expect(text).toContain('# TYPE immune_infections_total counter');
    expect(text).toContain('# TYPE immune_time_to_heal_seconds histogram');
    // Process metrics are on by default (memory and event-loop lag are what an SRE checks first).
    expect(text).toContain('process_resident_memory_bytes');
    a.close();
    b.close();
  });

  it('is documented: docs/OBSERVABILITY.md names every metric in both spellings', () => {
    const doc = readFileSync(new URL('../../docs/OBSERVABILITY.md', import.meta.url), 'utf8');
    for (const d of Object.values(SIGNALS)) {
      expect(doc, d.prom).toContain(`\`${d.prom}\``);
      expect(doc, d.otel).toContain(`\`${d.otel}\``);
    }
  });
});
