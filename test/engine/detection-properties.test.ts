import { describe, expect, it } from 'vitest';
import { generateTrace, type Trace } from '../../bench/detect/generator.js';
import { rng } from '../../bench/detect/rng.js';
import type { ImmuneEvent } from '../../src/domain/events.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { ImmuneEngine, type Outcome } from '../../src/engine/engine.js';

/** Runs the real engine in event time over a generated trace (replay semantics) and returns its event log. */
function run(trace: Trace, transform: (v: Vitals, i: number) => Vitals = (v) => v): ImmuneEvent[] {
  const engine = new ImmuneEngine({ healingStepDelaySeconds: 0, replayMode: true, autoApprove: true });
  const log: ImmuneEvent[] = [];
  const take = (o: Outcome) => {
    log.push(...o.events);
    for (const e of o.effects) take(engine.actionResult(e.agent_id, e.attempt_id, true, 'applied', 0));
  };
  let tick = 0;
  trace.vitals.forEach((v0, i) => {
    const v = transform(v0, i);
    if (v.timestamp >= tick + 1) take(engine.tick((tick = v.timestamp)));
    take(engine.observe(v));
  });
  return log;
}

const infections = (log: ImmuneEvent[]) => log.filter((e) => e.type === 'infection_detected');

describe('detection properties on realistic healthy fleets (heavy tails, bursts, drift, deployments, model changes)', () => {
  const seeds = [21, 22, 23];
  const traces = seeds.map((seed) => generateTrace({ seed, agents: 30, hours: 4, faultsPerKind: 0 }));
  const logs = traces.map((t) => run(t));

  it('quarantines no healthy agent outside the provider incident (≤ 1 per 100 agent-hours on these seeds)', () => {
    let falseAlarms = 0;
    traces.forEach((t, k) => {
      for (const e of infections(logs[k])) if (!(t.labels.incident.agents.includes(e.agent_id) && e.ts >= t.labels.incident.start && e.ts <= t.labels.incident.graceEnd)) falseAlarms++;
    });
    expect(falseAlarms).toBeLessThanOrEqual(3); // 3 traces × 30 agents × 4 h = 360 agent-hours
  });

  it('reports the provider incident as one fleet incident and quarantines none of its agents', () => {
    traces.forEach((t, k) => {
      expect(logs[k].filter((e) => e.type === 'fleet_incident_started')).toHaveLength(1);
      const caught = infections(logs[k]).filter((e) => t.labels.incident.agents.includes(e.agent_id) && e.ts >= t.labels.incident.start && e.ts <= t.labels.incident.graceEnd);
      expect(caught).toEqual([]);
    });
  });

  it('adopts legitimate prompt deployments (behaviour within ±15 %) instead of alarming', () => {
    let deployments = 0;
    traces.forEach((t, k) => {
      for (const c of t.labels.changes.filter((x) => x.kind === 'prompt_deployment')) {
        deployments++;
        expect(logs[k].some((e) => e.type === 'prompt_adopted' && e.agent_id === c.agent_id && e.ts >= c.ts)).toBe(true);
      }
    });
    expect(deployments).toBeGreaterThan(5);
  });

  it('relearns after a model change instead of alarming', () => {
    let changes = 0;
    traces.forEach((t, k) => {
      for (const c of t.labels.changes.filter((x) => x.kind === 'model_change')) {
        changes++;
        expect(logs[k].some((e) => e.type === 'baseline_reset' && e.agent_id === c.agent_id && e.ts === c.ts)).toBe(true);
        expect(infections(logs[k]).filter((e) => e.agent_id === c.agent_id && e.ts >= c.ts && e.ts <= c.watchEnd)).toEqual([]);
      }
    });
    expect(changes).toBeGreaterThan(0);
  });

  it('a lone outlier of any size, anywhere, never quarantines an agent', () => {
    const t = traces[0];
    const r = rng(99);
    const hit = new Set<number>();
    while (hit.size < 300) hit.add(r.int(2000, t.vitals.length - 1));
    // multiply one task of many agents by 5–1000× on every metric: a timeout, a giant document, a runaway tool
    const spiked = run(t, (v, i) => {
      if (!hit.has(i)) return v;
      const f = r.logUniform(5, 1000);
      return { ...v, latency_ms: v.latency_ms * f, input_tokens: Math.round(v.input_tokens * f), output_tokens: Math.round(v.output_tokens * f), token_count: Math.round(v.token_count * f), cost: v.cost * f, tool_calls: Math.round(v.tool_calls * f) };
    });
    const before = new Set(infections(logs[0]).map((e) => `${e.agent_id}@${e.ts}`));
    const added = infections(spiked).filter((e) => !before.has(`${e.agent_id}@${e.ts}`));
    expect(added).toEqual([]);
  });
});
