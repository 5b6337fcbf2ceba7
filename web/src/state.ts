import { withVitals, type VitalsUpdate } from './compact';
import type { AgentSummary, HealingEntry, HealingKind, ImmuneEvent, Incident, Overview, Pattern, Stats, Status, StoreStatus } from './types';

/** Everything the dashboard shows, as one immutable value: every update produces a new one. */
export interface DashboardState {
  stats: Stats | null;
  /** In the server's order; replaced objects on change so memoised cards can compare by identity. */
  agents: AgentSummary[];
  healings: HealingEntry[];
  patterns: Pattern[];
  incidents: Incident[];
  store: StoreStatus | null;
  /** Highest event-log position already reflected (events at or below it are skipped). */
  seq: number;
}

/** The timeline keeps this many entries; older ones live in the audit log (GET /api/v1/events). */
export const TIMELINE_LIMIT = 200;

export const EMPTY_STATE: DashboardState = { stats: null, agents: [], healings: [], patterns: [], incidents: [], store: null, seq: 0 };

export function fromOverview(o: Overview): DashboardState {
  const healings = o.healings.slice(0, TIMELINE_LIMIT);
  const seq = o.seq ?? healings.reduce((m, h) => Math.max(m, h.seq), 0);
  return { stats: o.stats, agents: o.agents, healings, patterns: o.patterns, incidents: o.incidents, store: o.store, seq };
}

/** Replaces changed agents in place (keeping order) and appends unknown ones. Unchanged objects keep their identity. */
export function mergeAgents(state: DashboardState, changed: readonly AgentSummary[]): DashboardState {
  if (changed.length === 0) return state;
  const byId = new Map<string, AgentSummary>();
  for (const a of changed) byId.set(a.id, a);
  const agents = state.agents.map((a) => {
    const next = byId.get(a.id);
    if (next === undefined) return a;
    byId.delete(a.id);
    return next;
  });
  for (const a of byId.values()) agents.push(a);
  return { ...state, agents };
}

/**
 * Applies `vitals` rows (new tasks of agents whose state did not change). Only the updated
 * agents get new objects, so only their cards re-render; the rest keep their identity.
 */
export function applyVitals(state: DashboardState, updates: ReadonlyMap<string, VitalsUpdate>): DashboardState {
  if (updates.size === 0) return state;
  let changed = false;
  const agents = state.agents.map((a) => {
    const u = updates.get(a.id);
    if (u === undefined) return a;
    const next = withVitals(a, u);
    if (next !== a) changed = true;
    return next;
  });
  return changed ? { ...state, agents } : state;
}

const KIND_OF_EVENT: Readonly<Record<string, HealingKind>> = {
  infection_detected: 'infection_detected',
  approval_requested: 'approval_requested',
  approved: 'approved',
  rejected: 'rejected',
  heal_now: 'heal_now',
  action_started: 'healing_attempt',
  action_applied: 'healing_applied',
  action_failed: 'healing_failed',
  probation_passed: 'healing_succeeded',
  probation_failed: 'healing_failed',
  exhausted: 'exhausted',
  quarantined: 'quarantined',
  released: 'released',
  baseline_accepted: 'baseline_accepted',
  diagnosis_feedback: 'feedback',
};

/**
 * Where each lifecycle event leads (src/engine/lifecycle.ts TRANSITIONS). Events
 * arrive within 100 ms while agent summaries come once per second, so the card
 * changes colour at once and the next summary fills in the details.
 */
const STATUS_AFTER: Readonly<Record<string, Status>> = {
  baseline_ready: 'healthy',
  baseline_reset: 'learning',
  baseline_accepted: 'learning',
  infection_detected: 'quarantined',
  approval_requested: 'pending_approval',
  approved: 'healing',
  rejected: 'rejected',
  heal_now: 'healing',
  healing_started: 'healing',
  action_applied: 'probation',
  probation_passed: 'healthy',
  probation_failed: 'healing',
  exhausted: 'exhausted',
  quarantined: 'quarantined',
  released: 'healthy',
};

const DECISIONS: ReadonlySet<string> = new Set(['approved', 'rejected', 'heal_now']);

/** The summary after one event, or the same object when the event does not move the agent. */
export function agentAfter(a: AgentSummary, e: ImmuneEvent): AgentSummary {
  const status = STATUS_AFTER[e.type];
  if (status === undefined) return a;
  const next: AgentSummary = { ...a, status, since: e.ts };
  if (DECISIONS.has(e.type)) next.decided_by = e.actor;
  if (e.type === 'infection_detected') {
    if (e.infection) next.infection = e.infection;
    const hyps = typeof e.diagnosis === 'object' ? e.diagnosis.hypotheses : [];
    if (hyps.length > 0) next.diagnosis = { ...hyps[0], hypotheses: hyps };
    next.healing = null;
    next.decided_by = null;
  }
  return next;
}

/** The timeline entry an event-log entry stands for, or null when it is not part of "recent healing actions". */
export function healingEntryOf(e: ImmuneEvent): HealingEntry | null {
  const kind = KIND_OF_EVENT[e.type];
  if (kind === undefined) return null;
  const entry: HealingEntry = { seq: e.seq, timestamp: e.ts, agent_id: e.agent_id, kind, actor: e.actor, message: e.reason };
  if (typeof e.action === 'string') entry.action = e.action;
  if (typeof e.diagnosis === 'string') entry.diagnosis = e.diagnosis;
  else if (typeof e.diagnosis === 'object' && e.diagnosis.hypotheses.length > 0) entry.diagnosis = e.diagnosis.hypotheses[0].diagnosis;
  if (e.trigger !== undefined) entry.trigger = e.trigger;
  if (kind === 'healing_attempt') entry.result = 'pending';
  else if (kind === 'healing_applied') entry.result = 'applied';
  else if (kind === 'healing_succeeded') entry.result = 'success';
  else if (kind === 'healing_failed') entry.result = 'failed';
  return entry;
}

/** Counts one verdict on a (diagnosis, action) pair, the way immune memory does. */
export function countOutcome(patterns: readonly Pattern[], diagnosis: string, action: string, success: boolean): Pattern[] {
  let found = false;
  const next = patterns.map((p) => {
    if (p.diagnosis !== diagnosis || p.action !== action) return p;
    found = true;
    return withRate({ ...p, successes: p.successes + (success ? 1 : 0), failures: p.failures + (success ? 0 : 1) });
  });
  if (!found) next.push(withRate({ diagnosis, action, successes: success ? 1 : 0, failures: success ? 0 : 1, success_rate: 0 }));
  return next;
}

function withRate(p: Pattern): Pattern {
  const n = p.successes + p.failures;
  return { ...p, success_rate: n === 0 ? 0 : p.successes / n };
}

function upsertIncident(incidents: readonly Incident[], incident: Incident): Incident[] {
  const rest = incidents.filter((i) => i.id !== incident.id);
  return [incident, ...rest];
}

/**
 * Folds new event-log entries into the timeline, the learned patterns and the
 * incident list. Entries at or below `state.seq` were already reflected (the
 * overview, or a replay after a reconnect) and are skipped, so nothing counts twice.
 */
export function applyEvents(state: DashboardState, events: readonly ImmuneEvent[]): DashboardState {
  const fresh = events.filter((e) => e.seq > state.seq).sort((a, b) => a.seq - b.seq);
  if (fresh.length === 0) return state;
  let { patterns, incidents } = state;
  const added: HealingEntry[] = [];
  const moved = new Map<string, AgentSummary>();
  const index = new Map(state.agents.map((a, i) => [a.id, i]));
  for (const e of fresh) {
    const i = index.get(e.agent_id);
    if (i !== undefined) {
      const before = moved.get(e.agent_id) ?? state.agents[i];
      const after = agentAfter(before, e);
      if (after !== before) moved.set(e.agent_id, after);
    }
    const entry = healingEntryOf(e);
    if (entry) added.push(entry);
    if (typeof e.action === 'string' && typeof e.diagnosis === 'string') {
      if (e.type === 'probation_passed') patterns = countOutcome(patterns, e.diagnosis, e.action, true);
      else if (e.type === 'probation_failed' || e.type === 'action_failed') patterns = countOutcome(patterns, e.diagnosis, e.action, false);
    }
    if ((e.type === 'fleet_incident_started' || e.type === 'fleet_incident_ended') && e.incident) incidents = upsertIncident(incidents, e.incident);
  }
  const healings = added.length === 0 ? state.healings : [...added.reverse(), ...state.healings].slice(0, TIMELINE_LIMIT);
  const agents = moved.size === 0 ? state.agents : state.agents.map((a) => moved.get(a.id) ?? a);
  return { ...state, agents, healings, patterns, incidents, seq: fresh[fresh.length - 1].seq };
}

/** Agents awaiting a human decision, longest waiting first. */
export function pendingOf(agents: readonly AgentSummary[]): AgentSummary[] {
  return agents.filter((a) => a.status === 'pending_approval').sort((a, b) => a.since - b.since);
}

/** Agents whose healing was rejected (waiting for "Heal now"), longest waiting first. */
export function rejectedOf(agents: readonly AgentSummary[]): AgentSummary[] {
  return agents.filter((a) => a.status === 'rejected').sort((a, b) => a.since - b.since);
}

export function openIncidents(incidents: readonly Incident[]): Incident[] {
  return incidents.filter((i) => i.ended_at === undefined || i.ended_at === null);
}

export interface AgentFilter {
  q: string;
  status: Status | '';
  type: string;
  model: string;
}

export const NO_FILTER: AgentFilter = { q: '', status: '', type: '', model: '' };

/** Same semantics as GET /api/v1/agents: q matches id, type, model or an MCP server, case-insensitively. */
export function matches(a: AgentSummary, f: AgentFilter): boolean {
  if (f.status !== '' && a.status !== f.status) return false;
  if (f.type !== '' && a.type !== f.type) return false;
  if (f.model !== '' && a.model !== f.model) return false;
  if (f.q === '') return true;
  const q = f.q.toLowerCase();
  return a.id.toLowerCase().includes(q) || a.type.toLowerCase().includes(q) || a.model.toLowerCase().includes(q) || a.mcp_servers.some((m) => m.toLowerCase().includes(q));
}

/** Problems first: what needs a human, then what is being handled, then the rest. */
const URGENCY: Readonly<Record<Status, number>> = {
  pending_approval: 0,
  exhausted: 1,
  rejected: 2,
  quarantined: 3,
  healing: 4,
  probation: 5,
  learning: 6,
  healthy: 7,
};

export type AgentSort = 'urgency' | 'name';

export function visibleAgents(agents: readonly AgentSummary[], f: AgentFilter, sort: AgentSort): AgentSummary[] {
  const out = agents.filter((a) => matches(a, f));
  const byName = (a: AgentSummary, b: AgentSummary) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  out.sort(sort === 'name' ? byName : (a, b) => URGENCY[a.status] - URGENCY[b.status] || byName(a, b));
  return out;
}

/** Distinct values of a field, sorted, for the filter drop-downs. */
export function distinct(agents: readonly AgentSummary[], pick: (a: AgentSummary) => string): string[] {
  return [...new Set(agents.map(pick))].filter((v) => v !== '').sort();
}
