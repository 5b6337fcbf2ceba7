import { describe, expect, it } from 'vitest';
import { rng, type Rng } from '../../bench/detect/rng.js';
import type { ImmuneEvent } from '../../src/domain/events.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { engineConfig } from '../../src/engine/config.js';
import { ImmuneEngine, type Outcome } from '../../src/engine/engine.js';
import { FleetCorrelator, groupsOf, newStanding, type Standing } from '../../src/engine/fleet-correlator.js';
import { infectionEffect, NO_EFFECT, type Effect, type InfectionType } from '../../src/sim/infections.js';

const cfg = engineConfig();

/** A correlator, and `note` by agent id: the engine keeps each agent's Standing in its runtime, here a map does. */
function correlator() {
  const f = new FleetCorrelator(cfg);
  const standings = new Map<string, Standing>();
  const note = (keys: readonly string[], id: string, ts: number, providerSignal: boolean, strained?: boolean, own?: boolean) => {
    let st = standings.get(id);
    if (!st) standings.set(id, (st = newStanding(id)));
    f.note(st, keys, ts, providerSignal, strained, own);
  };
  return { f, note };
}

describe('FleetCorrelator', () => {
  it('groups agents by provider and by model', () => {
    expect(groupsOf('gpt-4o', 'openai')).toEqual(['provider:openai', 'model:gpt-4o']);
    expect(groupsOf('', '')).toEqual([]);
  });

  it('qualifies a group when ≥ 3 agents and ≥ 30 % of active peers are in trouble within the window', () => {
    const { f, note } = correlator();
    const keys = groupsOf('m', 'p');
    for (let i = 0; i < 10; i++) note(keys, `a${i}`, 100, false);
    note(keys, 'a0', 101, true);
    note(keys, 'a1', 102, true);
    expect(f.assess(keys, 102)).toMatchObject({ affected: 2, active: 10, qualifies: false });
    note(keys, 'a2', 103, true);
    expect(f.assess(keys, 103)).toMatchObject({ affected: 3, active: 10, qualifies: true });
    // outside the window the evidence is forgotten
    expect(f.assess(keys, 103 + cfg.fleetWindowSeconds + 5)).toMatchObject({ affected: 0, qualifies: false });
  });

  it('an agent that left a group after a quiet window counts again when it reports again', () => {
    const { f, note } = correlator();
    const keys = groupsOf('m', 'p');
    for (let i = 0; i < 3; i++) note(keys, `a${i}`, 100, true);
    // a window later nobody is active: the group forgets them
    expect(f.assess(keys, 100 + cfg.fleetWindowSeconds + 5)).toMatchObject({ affected: 0, active: 0 });
    for (let i = 0; i < 3; i++) note(keys, `a${i}`, 200 + cfg.fleetWindowSeconds, true);
    expect(f.assess(keys, 200 + cfg.fleetWindowSeconds)).toMatchObject({ affected: 3, active: 3, qualifies: true });
  });

  it('an agent whose model changes moves to the new model\'s group', () => {
    const { f, note } = correlator();
    for (let i = 0; i < 3; i++) note(groupsOf('old', 'p'), `a${i}`, 100, true);
    note(groupsOf('new', 'p'), 'a0', 101, true);
    expect(f.assess(['model:new'], 101)).toMatchObject({ affected: 1, active: 1 });
    // still a member of the provider's group, not twice
    expect(f.assess(['provider:p'], 101)).toMatchObject({ affected: 3, active: 3 });
  });

  it('opens one incident per group, lets agents join it, and ends it after a quiet window', () => {
    const { f, note } = correlator();
    const keys = groupsOf('m', 'p');
    for (let i = 0; i < 4; i++) note(keys, `a${i}`, 100 + i, true);
    const inc = f.open('model:m', 104, ['latency_spike'], 4.2);
    expect(f.open('model:m', 105, ['latency_spike'], 9)).toBe(inc);
    expect(inc.agents).toEqual(['a0', 'a1', 'a2', 'a3']);
    f.join(inc, 'a9', ['error_rate_spike'], 6.5);
    expect(inc).toMatchObject({ agents: ['a0', 'a1', 'a2', 'a3', 'a9'], anomalies: ['latency_spike', 'error_rate_spike'], max_deviation: 6.5 });
    expect(f.activeIncident(keys)).toBe(inc);
    expect(f.closeQuiet(110)).toEqual([]);
    const ended = f.closeQuiet(104 + cfg.fleetWindowSeconds + 1);
    expect(ended).toHaveLength(1);
    expect(ended[0].ended_at).toBe(104 + cfg.fleetWindowSeconds + 1);
    expect(f.activeIncident(keys)).toBeNull();
  });

  it('restores an open incident and continues its numbering', () => {
    const { f, note } = correlator();
    f.reopen({ id: 'incident-7:model:m', group: 'model:m', started_at: 5, agents: ['a'], anomalies: [], max_deviation: 3 });
    expect(f.incidents().map((i) => i.id)).toEqual(['incident-7:model:m']);
    f.close('incident-7:model:m');
    for (let i = 0; i < 3; i++) note(['model:m'], `b${i}`, 10, true);
    expect(f.open('model:m', 10, [], 1).id).toBe('incident-8:model:m');
  });

  it('counts as affected only agents whose latest sample shows provider-type trouble and nothing of their own', () => {
    const { f, note } = correlator();
    const keys = groupsOf('m', 'p');
    for (let i = 0; i < 4; i++) note(keys, `a${i}`, 100, false);
    note(keys, 'a0', 101, true);
    note(keys, 'a1', 101, true);
    // a2 is slow, but its tokens or tools are up too (or it carries a new prompt): its own fault, no witness
    note(keys, 'a2', 101, false, true, true);
    expect(f.assess(keys, 101)).toMatchObject({ affected: 2, active: 4, qualifies: false });
    // an agent that first looked like the provider and then shows its own kind of trouble stops counting
    note(keys, 'a2', 102, true);
    expect(f.assess(keys, 102)).toMatchObject({ affected: 3, qualifies: true });
    note(keys, 'a2', 103, false, true, true);
    expect(f.assess(keys, 103)).toMatchObject({ affected: 2, qualifies: false });
    // a level, not an edge: evidence that fell back (noise) does not linger for the whole window
    note(keys, 'a1', 104, false);
    expect(f.assess(keys, 104)).toMatchObject({ affected: 1, qualifies: false });
  });

  it('a few troubled agents among calm peers are no outage: most agents that reported since the trouble began must be strained', () => {
    const { f, note } = correlator();
    const keys = groupsOf('m', 'p');
    for (let i = 0; i < 8; i++) note(keys, `a${i}`, 100, false);
    // a0 turned slow at 101; a1 and a2 show provider-type evidence, the other five report calm samples
    for (const a of ['a0', 'a1', 'a2']) note(keys, a, 105, true);
    for (const a of ['a3', 'a4', 'a5', 'a6', 'a7']) note(keys, a, 106, false);
    expect(f.assess(keys, 107, 101)).toMatchObject({ affected: 3, active: 8, qualifies: false });
    // an outage: the calm ones turn slow as soon as they report again
    for (const a of ['a3', 'a4']) note(keys, a, 108, false, true);
    expect(f.assess(keys, 109, 101)).toMatchObject({ affected: 3, qualifies: true });
  });

  it('peers with trouble of their own neither contradict nor support an outage', () => {
    const { f, note } = correlator();
    const keys = groupsOf('m', 'p');
    // ten agents: enough that a few calm or own-sick peers never rule an incident out by count alone
    for (let i = 0; i < 10; i++) note(keys, `a${i}`, 100, false);
    // a0 is held since 105; three calm peers since then contradict an outage…
    for (const a of ['a1', 'a2', 'a3']) note(keys, a, 110, false);
    expect(f.peersContradict(keys, 'a0', 105, 111)).toBe(true);
    // …and a slow peer whose tokens or tools are up too is sick on its own: no sign of an outage
    note(keys, 'a4', 111, false, true, true);
    expect(f.peersContradict(keys, 'a0', 105, 112)).toBe(true);
    // a slow peer with nothing of its own is: one in five strained is too many for calm peers to overrule
    note(keys, 'a5', 112, true, true);
    expect(f.peersContradict(keys, 'a0', 105, 113)).toBe(false);
    // a calm peer does not count if it is only calm for being healed of its own infection
    note(keys, 'a5', 113, false, false, true);
    note(keys, 'a3', 113, false, false, true);
    expect(f.peersContradict(keys, 'a0', 105, 114)).toBe(false);
  });

  it('in a group of three, one calm peer contradicts an outage: an incident needs three affected agents', () => {
    const { f, note } = correlator();
    const small = groupsOf('small-model', 'p-small');
    for (const a of ['a0', 'a1', 'a2']) note(small, a, 100, false);
    // no peer has reported since a0 became slow: all three could be in an outage together
    expect(f.peersContradict(small, 'a0', 105, 105)).toBe(false);
    // one calm peer leaves two possible witnesses, too few for an incident
    note(small, 'a1', 106, false);
    expect(f.peersContradict(small, 'a0', 105, 106)).toBe(true);
    // so does a peer sick on its own (it is no witness)
    const mixed = groupsOf('mixed-model', 'p-mixed');
    for (const a of ['m0', 'm1', 'm2']) note(mixed, a, 100, false);
    note(mixed, 'm1', 106, false, true, true);
    expect(f.peersContradict(mixed, 'm0', 105, 106)).toBe(true);
    // in a group of six the same calm peers prove nothing: four others could still be in trouble
    const big = groupsOf('big-model', 'p-big');
    for (let i = 0; i < 6; i++) note(big, `b${i}`, 100, false);
    note(big, 'b1', 106, false);
    note(big, 'b2', 107, false);
    expect(f.peersContradict(big, 'b0', 105, 107)).toBe(false);
  });

  it('refuses to open an incident for a group it has never seen', () => {
    expect(() => new FleetCorrelator(cfg).open('model:nope', 1, [], 1)).toThrow();
  });
});

/** A fleet of agents sharing one model, reporting in event time through the real engine. */
function fleet(n: number, seed: number) {
  const engine = new ImmuneEngine({ healingStepDelaySeconds: 0, replayMode: true, autoApprove: true });
  const log: ImmuneEvent[] = [];
  const r: Rng = rng(seed);
  const take = (o: Outcome) => {
    log.push(...o.events);
    for (const e of o.effects) take(engine.actionResult(e.agent_id, e.attempt_id, true, 'applied', 0));
  };
  let t = 1_700_000_000;
  /** One task per agent; `sick(i)` bends agent i's task with an infection's signature (src/sim/infections.ts). */
  const round = (latency: (i: number) => number, errorP: (i: number) => number, input: (i: number) => number = () => 1, sick: (i: number) => Effect = () => NO_EFFECT) => {
    for (let i = 0; i < n; i++) {
      t += 1;
      const e = sick(i);
      const failed = r.chance(e.errorP(errorP(i)));
      const v: Vitals = {
        agent_id: `agent-${i}`,
        agent_type: 'Support',
        timestamp: t,
        latency_ms: Math.round(1000 * Math.exp(0.3 * r.normal()) * latency(i) * e.latency),
        input_tokens: Math.round(900 * Math.exp(0.2 * r.normal()) * input(i) * e.input),
        output_tokens: Math.round(300 * Math.exp(0.2 * r.normal()) * e.output),
        token_count: 0,
        cost: 0.004,
        tool_calls: Math.round(r.poisson(3) * e.tools),
        retries: 0,
        success: !failed,
        model: 'claude-sonnet-4',
        provider: 'anthropic',
        error_type: failed ? 'provider_error' : '',
        prompt_hash: e.newPrompt ? `p${i}-tampered` : `p${i}`,
        mcp_servers: [],
        tool_names: [],
      };
      v.token_count = v.input_tokens + v.output_tokens;
      take(engine.tick(t));
      take(engine.observe(v));
    }
  };
  return { engine, log, round };
}

describe('provider incidents through the engine', () => {
  it('many agents on one model slowing down and failing together: one fleet incident, no individual quarantine', () => {
    const f = fleet(12, 1);
    for (let k = 0; k < 100; k++) f.round(() => 1, () => 0.02);
    for (let k = 0; k < 40; k++) f.round(() => 5, () => 0.32);
    for (let k = 0; k < 100; k++) f.round(() => 1, () => 0.02);
    const started = f.log.filter((e) => e.type === 'fleet_incident_started');
    expect(started).toHaveLength(1);
    expect(started[0].agent_id).toMatch(/^fleet:(model:claude-sonnet-4|provider:anthropic)$/);
    expect(f.log.filter((e) => e.type === 'infection_detected')).toEqual([]);
    expect(f.log.filter((e) => e.type === 'fleet_incident_ended')).toHaveLength(1);
    // afterwards the agents are still judged: a real fault on one of them is caught
    for (let k = 0; k < 10; k++) f.round((i) => (i === 3 ? 8 : 1), () => 0.02);
    expect(f.log.filter((e) => e.type === 'infection_detected').map((e) => e.agent_id)).toEqual(['agent-3']);
  });

  it('one agent slowing down while its peers are fine is that agent’s problem (tool_instability)', () => {
    const f = fleet(12, 2);
    for (let k = 0; k < 100; k++) f.round(() => 1, () => 0.02);
    for (let k = 0; k < 40; k++) f.round((i) => (i === 5 ? 6 : 1), () => 0.02);
    const infections = f.log.filter((e) => e.type === 'infection_detected');
    expect(infections.map((e) => e.agent_id)).toEqual(['agent-5']);
    expect(infections[0].type === 'infection_detected' && infections[0].diagnosis.hypotheses[0].diagnosis).toBe('tool_instability');
    expect(f.log.filter((e) => e.type === 'fleet_incident_started')).toEqual([]);
  });

  // The bug seen with 4 external agents: a token explosion, a tool loop and a prompt drift all slow their
  // agents down, and 3 of 4 slow agents were taken for a provider outage (their agents not quarantined).
  it.each([
    {
      what: 'three agents of one model sick with different infections at once are each quarantined',
      kinds: ['token_explosion', 'tool_loop', 'prompt_drift'],
      expected: { 'agent-0': 'prompt_drift', 'agent-1': 'infinite_loop', 'agent-2': 'prompt_drift' },
    },
    {
      what: 'a slow agent whose slow peers all have faults of their own is quarantined for its own latency',
      kinds: ['latency_spike', 'tool_loop', 'prompt_drift'],
      expected: { 'agent-0': 'tool_instability', 'agent-1': 'infinite_loop', 'agent-2': 'prompt_drift' },
    },
  ] as const)('a fleet of 4: $what, no incident', ({ kinds, expected }) => {
    const f = fleet(4, kinds[0] === 'latency_spike' ? 5 : 4);
    for (let k = 0; k < 100; k++) f.round(() => 1, () => 0.02);
    const sick = (i: number) => (i < kinds.length ? infectionEffect(kinds[i] as InfectionType, 3) : NO_EFFECT);
    for (let k = 0; k < 40; k++) f.round(() => 1, () => 0.02, () => 1, sick);
    expect(f.log.filter((e) => e.type === 'fleet_incident_started')).toEqual([]);
    expect(firstDiagnoses(f.log)).toEqual(expected);
  });

  it('a fault of its own that starts while the agent is part of an incident is quarantined', () => {
    const f = fleet(12, 6);
    for (let k = 0; k < 100; k++) f.round(() => 1, () => 0.02);
    for (let k = 0; k < 10; k++) f.round(() => 5, () => 0.32);
    const incident = f.engine.incidents()[0];
    expect(incident?.agents).toContain('agent-7');
    // agent-7, already a bystander of the outage, starts generating runaway output
    for (let k = 0; k < 20; k++) f.round(() => 5, () => 0.32, () => 1, (i) => (i === 7 ? infectionEffect('token_explosion', 2) : NO_EFFECT));
    expect(f.engine.incidents()).toHaveLength(1);
    const infections = f.log.filter((e) => e.type === 'infection_detected');
    expect(infections.map((e) => e.agent_id)).toEqual(['agent-7']);
    expect(infections[0].type === 'infection_detected' && infections[0].infection.anomalies).toContain('output_token_spike');
  });

  it('token anomalies are never blamed on the provider, even during an incident', () => {
    const f = fleet(12, 3);
    for (let k = 0; k < 100; k++) f.round(() => 1, () => 0.02);
    // agent-7 floods its context while the provider is slow: the context is its own infection
    for (let k = 0; k < 15; k++) f.round(() => 5, () => 0.32, (i) => (i === 7 ? 8 : 1));
    expect(f.engine.incidents()).toHaveLength(1);
    const infections = f.log.filter((e) => e.type === 'infection_detected');
    expect(infections.map((e) => e.agent_id)).toEqual(['agent-7']);
    expect(infections[0].type === 'infection_detected' && infections[0].infection.anomalies).toContain('input_token_spike');
  });
});

/** The primary diagnosis of each agent's first infection. */
function firstDiagnoses(log: readonly ImmuneEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of log) if (e.type === 'infection_detected' && !(e.agent_id in out)) out[e.agent_id] = e.diagnosis.hypotheses[0].diagnosis;
  return out;
}
