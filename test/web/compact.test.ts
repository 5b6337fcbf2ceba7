import { describe, expect, it } from 'vitest';
import { compactAgents, splitChanges, vitalsRow, VITALS_FIELDS, LATEST_FIELDS, type AgentSummary as ServerSummary } from '../../src/control/views.js';
import { decodeOverview, expandAgents, expandVitals, KNOWN_AGENT_FIELDS, KNOWN_LATEST_FIELDS, withVitals } from '../../web/src/compact.js';
import { applyVitals, fromOverview } from '../../web/src/state.js';
import type { AgentSummary, Overview } from '../../web/src/types.js';

function summary(id: string, extra: Partial<ServerSummary> = {}): ServerSummary {
  return {
    id,
    type: 'Research',
    model: 'GPT-5',
    provider: 'openai',
    mcp_servers: ['postgres', 'web-fetch'],
    source: 'simulated',
    control_url: false,
    status: 'healthy',
    since: 100.5,
    executions: 10,
    last_seen: 110.25,
    has_baseline: true,
    latest: { latency: 312, tokens: 1200, input_tokens: 800, output_tokens: 400, cost: 0.0041, tools: 3, retries: 0, success: true, error_type: '', timestamp: 110.2 },
    infection: null,
    diagnosis: null,
    healing: null,
    decided_by: null,
    ...extra,
  } as ServerSummary;
}

const sick = summary('b', {
  status: 'pending_approval' as ServerSummary['status'],
  latest: null,
  infection: { timestamp: 105, max_deviation: 7.5, severity: 'severe', anomalies: ['tool_explosion'], deviations: { tool_calls: 7.5 } },
  diagnosis: { diagnosis: 'infinite_loop', confidence: 0.8, reasoning: 'calls spiked', hypotheses: [{ diagnosis: 'infinite_loop', confidence: 0.8, reasoning: 'calls spiked' }] },
  decided_by: null,
});

describe('compact overview (server encoder ↔ dashboard decoder)', () => {
  it('round-trips every field of every summary, nulls and nested objects included', () => {
    const list = [summary('a'), sick];
    const wire = JSON.parse(JSON.stringify(compactAgents(list)));
    expect(expandAgents(wire)).toEqual(list);
  });

  it("decodes the server's field lists on the fast path (fixed-shape literals)", () => {
    expect(KNOWN_AGENT_FIELDS).toBe(compactAgents([]).agent_fields.join(','));
    expect(KNOWN_LATEST_FIELDS).toBe(LATEST_FIELDS.join(','));
  });

  it('leaves a full-form overview as it is', () => {
    const full = { agents: [summary('a')], healings: [] } as unknown as Overview;
    expect(decodeOverview(full)).toBe(full);
  });

  it('follows the field names it is given (a server that adds a field still decodes)', () => {
    const wire = { agent_fields: ['id', 'extra', 'status'], latest_fields: [...LATEST_FIELDS], rows: [['a', 42, 'healthy']] };
    expect(expandAgents(wire)[0]).toEqual({ id: 'a', extra: 42, status: 'healthy' });
  });
});

describe('splitChanges: what the compact stream sends for one second of changes', () => {
  it('sends new agents and state changes whole, and vitals-only changes as rows', () => {
    const keys = new Map<string, string>();
    expect(splitChanges([summary('a'), sick], keys).full.map((s) => s.id)).toEqual(['a', 'b']);

    const a2 = summary('a', { executions: 11, last_seen: 111, latest: { ...summary('a').latest!, latency: 500, timestamp: 111 } });
    const b2 = summary('b', { ...sick, status: 'healing' as ServerSummary['status'], decided_by: 'operator' });
    const { full, rows } = splitChanges([a2, b2], keys);
    expect(full).toEqual([b2]);
    expect(rows).toEqual([vitalsRow(a2)]);
    const [u] = expandVitals({ fields: [...VITALS_FIELDS], latest_fields: [...LATEST_FIELDS], rows: JSON.parse(JSON.stringify(rows)) });
    expect(u).toEqual({ id: 'a', executions: 11, last_seen: 111, latest: a2.latest });
  });

  it('sends the summary whole when any field other than the vitals changed', () => {
    const base = summary('a');
    for (const [field, value] of Object.entries({ type: 'Data', model: 'GPT-4o', mcp_servers: ['notion'], since: 200, has_baseline: false, decided_by: 'ops', control_url: true })) {
      const keys = new Map<string, string>();
      splitChanges([base], keys);
      expect(splitChanges([{ ...base, [field]: value }], keys).full, field).toHaveLength(1);
    }
  });
});

describe('applying vitals rows on the dashboard', () => {
  const a = summary('a') as unknown as AgentSummary;
  const other = summary('c') as unknown as AgentSummary;
  const state = fromOverview({ agents: [a, other], healings: [], patterns: [], incidents: [], stats: null, store: null, seq: 0 } as unknown as Overview);

  it('replaces only the updated agents, keeping the others (and their cards) as they are', () => {
    const latest = { ...a.latest!, latency: 999, timestamp: 120 };
    const next = applyVitals(state, new Map([['a', { id: 'a', executions: 11, last_seen: 120, latest }]]));
    expect(next.agents[0]).toEqual({ ...a, executions: 11, last_seen: 120, latest });
    expect(next.agents[0].status).toBe('healthy');
    expect(next.agents[1]).toBe(other);
  });

  it('ignores a row older than what the agent shows (a full summary came later)', () => {
    expect(withVitals(a, { id: 'a', executions: 9, last_seen: 200, latest: null })).toBe(a);
    expect(withVitals(a, { id: 'a', executions: 10, last_seen: a.last_seen, latest: null })).toBe(a);
    expect(applyVitals(state, new Map([['a', { id: 'a', executions: 9, last_seen: 200, latest: null }]]))).toBe(state);
  });

  it('ignores rows of agents it does not know yet', () => {
    expect(applyVitals(state, new Map([['zz', { id: 'zz', executions: 1, last_seen: 1, latest: null }]]))).toBe(state);
  });
});
