import { describe, expect, it } from 'vitest';
import {
  agentAfter,
  applyEvents,
  countOutcome,
  fromOverview,
  healingEntryOf,
  matches,
  mergeAgents,
  NO_FILTER,
  openIncidents,
  pendingOf,
  rejectedOf,
  TIMELINE_LIMIT,
  visibleAgents,
  type DashboardState,
} from '../../web/src/state.js';
import type { AgentSummary, ImmuneEvent, Overview, Status } from '../../web/src/types.js';

function agent(id: string, status: Status = 'healthy', extra: Partial<AgentSummary> = {}): AgentSummary {
  return {
    id,
    type: 'Research',
    model: 'GPT-5',
    provider: 'openai',
    mcp_servers: ['postgres', 'web-fetch'],
    source: 'simulated',
    status,
    since: 100,
    executions: 10,
    last_seen: 100,
    has_baseline: true,
    latest: null,
    infection: null,
    diagnosis: null,
    healing: null,
    decided_by: null,
    ...extra,
  };
}

function overview(agents: AgentSummary[], extra: Partial<Overview> = {}): Overview {
  return {
    stats: {
      total_agents: agents.length,
      total_executions: 0,
      total_infections: 0,
      total_healed: 0,
      failed_healings: 0,
      success_rate: 0,
      current_quarantined: 0,
      pending_approvals: 0,
      runtime_seconds: 0,
      started_at: 0,
      baselines_learned: 0,
      by_status: {},
    },
    agents,
    healings: [],
    patterns: [],
    incidents: [],
    store: { kind: 'memory', ok: true, degraded: false, detail: '', queued: 0, dropped: 0 },
    ...extra,
  };
}

const ev = (seq: number, type: string, agent_id: string, extra: Partial<ImmuneEvent> = {}): ImmuneEvent => ({ seq, ts: 1000 + seq, agent_id, type, actor: 'system', reason: `${type} ${agent_id}`, ...extra });

describe('fromOverview', () => {
  it('takes the log position from the overview, else from the newest timeline entry', () => {
    expect(fromOverview(overview([], { seq: 42 })).seq).toBe(42);
    const healings = [5, 9, 7].map((seq) => ({ seq, timestamp: seq, agent_id: 'a', kind: 'approved' as const, actor: 'operator', message: '' }));
    expect(fromOverview(overview([], { healings })).seq).toBe(9);
    expect(fromOverview(overview([])).seq).toBe(0);
  });
});

describe('mergeAgents', () => {
  it('replaces changed agents in place, appends new ones and keeps untouched objects identical', () => {
    const a = agent('a');
    const b = agent('b');
    const s = fromOverview(overview([a, b]));
    const b2 = agent('b', 'quarantined');
    const c = agent('c');
    const next = mergeAgents(s, [c, b2]);
    expect(next.agents.map((x) => x.id)).toEqual(['a', 'b', 'c']);
    expect(next.agents[0]).toBe(a);
    expect(next.agents[1]).toBe(b2);
    expect(s.agents[1]).toBe(b); // the previous state is not mutated
  });
});

describe('applyEvents', () => {
  const base = (): DashboardState => fromOverview(overview([agent('a'), agent('b')], { seq: 10 }));

  it('skips events the overview already reflects and counts nothing twice', () => {
    const s = applyEvents(base(), [ev(9, 'approved', 'a'), ev(10, 'rejected', 'a')]);
    expect(s.healings).toEqual([]);
    expect(s.agents[0].status).toBe('healthy');
    const once = applyEvents(base(), [ev(11, 'probation_passed', 'a', { action: 'reset_memory', diagnosis: 'prompt_injection' })]);
    const twice = applyEvents(once, [ev(11, 'probation_passed', 'a', { action: 'reset_memory', diagnosis: 'prompt_injection' })]);
    expect(twice.patterns).toEqual([{ diagnosis: 'prompt_injection', action: 'reset_memory', successes: 1, failures: 0, success_rate: 1 }]);
  });

  it('puts the newest entry first, in log order regardless of arrival order', () => {
    const s = applyEvents(base(), [ev(13, 'action_started', 'a', { action: 'revoke_tools', diagnosis: 'infinite_loop', trigger: 'after_approval' }), ev(12, 'approved', 'a', { actor: 'operator' })]);
    expect(s.healings.map((h) => [h.seq, h.kind])).toEqual([
      [13, 'healing_attempt'],
      [12, 'approved'],
    ]);
    expect(s.healings[0]).toMatchObject({ trigger: 'after_approval', result: 'pending', action: 'revoke_tools' });
    expect(s.seq).toBe(13);
  });

  it('moves agents through the lifecycle as events arrive, recording who decided', () => {
    let s = applyEvents(base(), [ev(11, 'approval_requested', 'b')]);
    expect(s.agents[1]).toMatchObject({ status: 'pending_approval', since: 1011 });
    s = applyEvents(s, [ev(12, 'rejected', 'b', { actor: 'operator' })]);
    expect(s.agents[1]).toMatchObject({ status: 'rejected', decided_by: 'operator' });
    s = applyEvents(s, [ev(13, 'heal_now', 'b', { actor: 'operator' }), ev(14, 'action_applied', 'b', { action: 'reset_agent', diagnosis: 'unknown' })]);
    expect(s.agents[1].status).toBe('probation');
    expect(s.agents[0].status).toBe('healthy');
  });

  it('counts failures and successes per (diagnosis, action) like immune memory', () => {
    const s = applyEvents(base(), [
      ev(11, 'probation_failed', 'a', { action: 'revoke_tools', diagnosis: 'infinite_loop' }),
      ev(12, 'action_failed', 'b', { action: 'revoke_tools', diagnosis: 'infinite_loop' }),
      ev(13, 'probation_passed', 'a', { action: 'reduce_autonomy', diagnosis: 'infinite_loop' }),
    ]);
    const rows = Object.fromEntries(s.patterns.map((p) => [p.action, p]));
    expect(rows.revoke_tools).toMatchObject({ successes: 0, failures: 2, success_rate: 0 });
    expect(rows.reduce_autonomy).toMatchObject({ successes: 1, failures: 0, success_rate: 1 });
  });

  it('opens and closes fleet incidents', () => {
    const incident = { id: 'i1', group: 'model:GPT-5', started_at: 1, agents: ['a', 'b', 'c'], anomalies: ['latency_spike'], max_deviation: 6 };
    let s = applyEvents(base(), [ev(11, 'fleet_incident_started', 'fleet:model:GPT-5', { incident })]);
    expect(openIncidents(s.incidents).map((i) => i.id)).toEqual(['i1']);
    s = applyEvents(s, [ev(12, 'fleet_incident_ended', 'fleet:model:GPT-5', { incident: { ...incident, ended_at: 50 } })]);
    expect(s.incidents).toHaveLength(1);
    expect(openIncidents(s.incidents)).toEqual([]);
  });

  it('keeps at most TIMELINE_LIMIT entries', () => {
    const many = Array.from({ length: TIMELINE_LIMIT + 20 }, (_, i) => ev(11 + i, 'quarantined', 'a'));
    const s = applyEvents(base(), many);
    expect(s.healings).toHaveLength(TIMELINE_LIMIT);
    expect(s.healings[0].seq).toBe(10 + TIMELINE_LIMIT + 20);
  });
});

describe('healingEntryOf', () => {
  it('maps log events to timeline kinds and ignores the rest', () => {
    expect(healingEntryOf(ev(1, 'probation_passed', 'a', { action: 'reset_memory', diagnosis: 'memory_corruption' }))).toMatchObject({ kind: 'healing_succeeded', result: 'success' });
    expect(healingEntryOf(ev(1, 'probation_failed', 'a'))).toMatchObject({ kind: 'healing_failed', result: 'failed' });
    expect(healingEntryOf(ev(1, 'diagnosis_feedback', 'a', { diagnosis: 'prompt_drift' }))).toMatchObject({ kind: 'feedback', diagnosis: 'prompt_drift' });
    expect(healingEntryOf(ev(1, 'infection_detected', 'a', { diagnosis: { hypotheses: [{ diagnosis: 'infinite_loop', confidence: 0.9, reasoning: '' }] } }))).toMatchObject({
      kind: 'infection_detected',
      diagnosis: 'infinite_loop',
    });
    expect(healingEntryOf(ev(1, 'baseline_ready', 'a'))).toBeNull();
    expect(healingEntryOf(ev(1, 'agent_registered', 'a'))).toBeNull();
  });
});

describe('agentAfter', () => {
  it('returns the same object for events that do not move the agent', () => {
    const a = agent('a');
    expect(agentAfter(a, ev(1, 'action_started', 'a'))).toBe(a);
    expect(agentAfter(a, ev(1, 'diagnosis_feedback', 'a'))).toBe(a);
  });
});

describe('lists and filters', () => {
  const fleet = [
    agent('c', 'pending_approval', { since: 30 }),
    agent('a', 'pending_approval', { since: 10 }),
    agent('b', 'rejected', { since: 5 }),
    agent('d', 'healthy', { type: 'Data', model: 'Claude Sonnet 4', mcp_servers: ['notion'] }),
    agent('e', 'exhausted'),
  ];

  it('lists pending and rejected agents, longest waiting first', () => {
    expect(pendingOf(fleet).map((a) => a.id)).toEqual(['a', 'c']);
    expect(rejectedOf(fleet).map((a) => a.id)).toEqual(['b']);
  });

  it('matches the query against id, type, model and MCP servers, case-insensitively', () => {
    const f = (q: string) => fleet.filter((a) => matches(a, { ...NO_FILTER, q })).map((a) => a.id);
    expect(f('NOTION')).toEqual(['d']);
    expect(f('sonnet')).toEqual(['d']);
    expect(f('data')).toEqual(['d']);
    expect(f('web-fetch')).toEqual(['c', 'a', 'b', 'e']);
    expect(f('zzz')).toEqual([]);
  });

  it('combines status, type and model filters', () => {
    expect(visibleAgents(fleet, { ...NO_FILTER, status: 'healthy' }, 'name').map((a) => a.id)).toEqual(['d']);
    expect(visibleAgents(fleet, { ...NO_FILTER, type: 'Research', model: 'GPT-5' }, 'name').map((a) => a.id)).toEqual(['a', 'b', 'c', 'e']);
  });

  it('sorts problems first: what needs a human, then what is handled, then the healthy', () => {
    expect(visibleAgents(fleet, NO_FILTER, 'urgency').map((a) => a.id)).toEqual(['a', 'c', 'e', 'b', 'd']);
  });
});

describe('countOutcome', () => {
  it('does not mutate the list it is given', () => {
    const before = [{ diagnosis: 'x', action: 'y', successes: 1, failures: 0, success_rate: 1 }];
    const after = countOutcome(before, 'x', 'y', false);
    expect(before[0].failures).toBe(0);
    expect(after[0]).toMatchObject({ successes: 1, failures: 1, success_rate: 0.5 });
  });
});
