import { describe, expect, it } from 'vitest';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { ImmuneEngine, type Outcome } from '../../src/engine/engine.js';
import { makeVitals } from '../support/vitals.js';

type Fault = Parameters<ReturnType<typeof makeVitals>>[0];

/** An engine plus a log, with every action applied at once (like the simulated executor). */
function harness(overrides = {}) {
  const engine = new ImmuneEngine({ healingStepDelaySeconds: 0, ...overrides });
  const log: ImmuneEvent[] = [];
  const take = (o: Outcome): Outcome => {
    log.push(...o.events);
    for (const eff of o.effects) take(engine.actionResult(eff.agent_id, eff.attempt_id, true, 'applied', 0));
    return o;
  };
  const next = makeVitals('agent-1', 3);
  const feed = (n: number, fault?: Fault) => {
    for (let i = 0; i < n; i++) take(engine.observe(next(fault)));
  };
  const types = () => log.map((e) => e.type);
  const state = () => engine.get('agent-1')!.wf.state;
  /** Feeds faulty samples until the agent leaves `healthy` (at most `max`). */
  const sicken = (fault: Fault, max = 10) => {
    for (let i = 0; i < max && state() === 'healthy'; i++) feed(1, fault);
  };
  return { engine, log, take, feed, types, state, sicken };
}

describe('ImmuneEngine', () => {
  it('learns, then stays healthy on normal behaviour', () => {
    const h = harness();
    h.feed(14);
    expect(h.state()).toBe('learning');
    h.feed(1);
    expect(h.state()).toBe('healthy');
    h.feed(300);
    expect(h.state()).toBe('healthy');
    expect(h.types().filter((t) => t === 'infection_detected')).toEqual([]);
  });

  it('routes a severe infection to approval and heals only after approval', () => {
    const h = harness();
    h.feed(40);
    h.sicken({ tools: 8, latency: 3 });
    expect(h.state()).toBe('pending_approval');
    const inf = h.log.find((e) => e.type === 'infection_detected');
    expect(inf && inf.type === 'infection_detected' && inf.infection.severity).toBe('severe');
    expect(inf && inf.type === 'infection_detected' && inf.infection.anomalies).toContain('tool_explosion');
    // Samples while pending are neither judged nor learned.
    const n = h.engine.get('agent-1')!.baseline.n;
    h.feed(5, { tools: 8, latency: 3 });
    expect(h.engine.get('agent-1')!.baseline.n).toBe(n);
    expect(() => h.engine.healNow('agent-1', 'operator', 0)).toThrow(/heal now/);
    h.take(h.engine.approve('agent-1', 'operator', 0));
    expect(h.state()).toBe('probation');
    expect(() => h.engine.approve('agent-1', 'operator', 0)).toThrow(/not awaiting approval/);
    h.feed(5);
    expect(h.state()).toBe('healthy');
    expect(h.types()).toContain('probation_passed');
  });

  it('a rejected agent stays quarantined and is not re-raised until "heal now"', () => {
    const h = harness();
    h.feed(40);
    h.sicken({ input: 8 });
    expect(h.state()).toBe('pending_approval');
    h.take(h.engine.reject('agent-1', 'alice', 0));
    expect(h.state()).toBe('rejected');
    h.feed(50, { input: 8 });
    expect(h.state()).toBe('rejected');
    expect(h.types().filter((t) => t === 'infection_detected').length).toBe(1);
    h.take(h.engine.healNow('agent-1', 'bob', 0));
    const started = h.log.filter((e) => e.type === 'action_started');
    expect(started.length).toBe(1);
    expect(started[0].type === 'action_started' && started[0].trigger).toBe('heal_now');
    expect(h.log.find((e) => e.type === 'rejected')?.actor).toBe('alice');
  });

  it('escalates through the ladder on failed probation and remembers failures for next time', () => {
    const h = harness({ deviationRequiringApproval: 1000 });
    h.feed(40);
    // Sick until the third action is applied: each probation before it fails on fresh faulty samples.
    const started = () => h.log.filter((e) => e.type === 'action_started').map((e) => (e.type === 'action_started' ? e.action : ''));
    for (let i = 0; i < 60 && started().length < 3; i++) h.feed(1, { tools: 8 });
    expect(started()).toEqual(['revoke_tools', 'reduce_autonomy', 'reset_memory']);
    expect(h.state()).toBe('probation');
    h.feed(6);
    expect(h.state()).toBe('healthy');
    const mem = h.engine.memory;
    expect([...mem.failedActions('agent-1', 'infinite_loop')].sort()).toEqual(['reduce_autonomy', 'revoke_tools']);
    // Next episode of the same diagnosis skips what failed.
    h.feed(20);
    h.sicken({ tools: 8 });
    const next = started();
    expect(next.length).toBe(4);
    expect(next[3]).toBe('reset_memory');
  });

  it('exhausts when every rung fails and asks for an operator', () => {
    const h = harness({ deviationRequiringApproval: 1000 });
    h.feed(40);
    for (let i = 0; i < 40 && h.state() !== 'exhausted'; i++) h.feed(1, { input: 6 });
    expect(h.state()).toBe('exhausted');
    // Both hypotheses' ladders were tried before giving up, with no repeats.
    const tried = h.log.filter((e) => e.type === 'action_started').map((e) => (e.type === 'action_started' ? e.action : ''));
    expect(new Set(tried).size).toBe(tried.length);
    expect(tried).toContain('reset_agent');
    h.take(h.engine.release('agent-1', 'operator', 0));
    expect(h.state()).toBe('healthy');
  });

  it('operator feedback reorders the episode and is remembered for the next one', () => {
    const h = harness();
    h.feed(40);
    h.sicken({ input: 8 });
    const first = h.engine.get('agent-1')!.wf.diagnosis!.hypotheses[0].diagnosis;
    h.take(h.engine.feedback('agent-1', 'prompt_injection', 'alice', 0, 'it was an injection'));
    expect(h.engine.get('agent-1')!.wf.diagnosis!.hypotheses[0].diagnosis).toBe('prompt_injection');
    expect(h.engine.memory.correctionsFor('agent-1')?.get(first)?.get('prompt_injection')).toBe(1);
  });

  it('restores workflow, memory and detection state from the log and a snapshot', () => {
    const h = harness({ deviationRequiringApproval: 1000 });
    h.feed(40);
    h.sicken({ tools: 8 });
    h.feed(4, { tools: 8 });
    const snap = h.engine.snapshot();
    const copy = new ImmuneEngine({ healingStepDelaySeconds: 0, deviationRequiringApproval: 1000 });
    copy.restore(h.log, JSON.parse(JSON.stringify(snap)));
    const a = h.engine.get('agent-1')!;
    const b = copy.get('agent-1')!;
    expect(b.wf).toEqual(a.wf);
    expect(Array.from(b.baseline.mean)).toEqual(Array.from(a.baseline.mean));
    expect([...copy.memory.failedActions('agent-1', 'infinite_loop')]).toEqual([...h.engine.memory.failedActions('agent-1', 'infinite_loop')]);
    expect(copy.lastSeq).toBe(h.engine.lastSeq);
  });

  it('a model change relearns instead of alarming', () => {
    const h = harness();
    h.feed(40);
    h.feed(30, { model: 'Claude Opus 4', latency: 3 });
    expect(h.types()).toContain('baseline_reset');
    expect(h.types()).not.toContain('infection_detected');
    expect(h.state()).toBe('healthy');
  });

  it('adopts a new prompt that behaves normally', () => {
    const h = harness();
    h.feed(40);
    h.feed(30, { prompt: 'prompt-v2' });
    expect(h.types()).toContain('prompt_adopted');
    expect(h.types()).not.toContain('infection_detected');
    expect(h.engine.get('agent-1')!.baseline.prompt_hash).toBe('prompt-v2');
  });

  it('accept-baseline relearns the agent from fresh samples', () => {
    const h = harness();
    h.feed(40);
    h.sicken({ input: 8 });
    h.take(h.engine.acceptBaseline('agent-1', 'operator', 0));
    expect(h.state()).toBe('learning');
    h.feed(15, { input: 8 });
    expect(h.state()).toBe('healthy');
    h.feed(50, { input: 8 });
    expect(h.state()).toBe('healthy');
  });
});
