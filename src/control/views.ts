import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import { isReady } from '../engine/baseline.js';
import type { EngineConfig } from '../engine/config.js';
import type { AgentRuntime } from '../engine/engine.js';

/** The JSON views the API and dashboard show (docs/API.md). Pure functions of engine state. */

export interface LatestVitals {
  latency: number;
  tokens: number;
  input_tokens: number;
  output_tokens: number;
  cost: number;
  tools: number;
  retries: number;
  success: boolean;
  error_type: string;
  timestamp: number;
}

export function latestOf(v: Vitals | null): LatestVitals | null {
  if (!v) return null;
  return {
    latency: v.latency_ms,
    tokens: v.token_count,
    input_tokens: v.input_tokens,
    output_tokens: v.output_tokens,
    cost: v.cost,
    tools: v.tool_calls,
    retries: v.retries,
    success: v.success,
    error_type: v.error_type,
    timestamp: v.timestamp,
  };
}

export function agentSummary(rt: AgentRuntime, cfg: EngineConfig) {
  const wf = rt.wf;
  const primary = wf.diagnosis?.hypotheses[Math.min(wf.hypothesis, (wf.diagnosis?.hypotheses.length ?? 1) - 1)] ?? wf.diagnosis?.hypotheses[0];
  return {
    id: rt.id,
    type: rt.meta.agent_type,
    model: rt.meta.model,
    provider: rt.meta.provider,
    mcp_servers: rt.meta.mcp_servers,
    source: rt.meta.source,
    control_url: rt.meta.control_url ? true : false,
    status: wf.state,
    since: wf.since,
    executions: rt.executions,
    last_seen: rt.lastSeen,
    has_baseline: isReady(rt.baseline, cfg) || wf.state !== 'learning',
    latest: latestOf(rt.last),
    infection: wf.infection
      ? { timestamp: wf.infection.timestamp, max_deviation: wf.infection.max_deviation, severity: wf.infection.severity, anomalies: wf.infection.anomalies, deviations: wf.infection.deviations }
      : null,
    diagnosis:
      wf.diagnosis && primary
        ? { diagnosis: primary.diagnosis, confidence: primary.confidence, reasoning: primary.reasoning, hypotheses: wf.diagnosis.hypotheses }
        : null,
    healing:
      wf.state === 'healing' || wf.state === 'probation' || (wf.attempt !== null && wf.tried.length > 0)
        ? { action: wf.attempt?.action ?? null, diagnosis: wf.attempt?.diagnosis ?? null, trigger: wf.trigger, attempt: wf.attempts, tried: [...wf.tried] }
        : null,
    decided_by: wf.decided_by,
  };
}
export type AgentSummary = ReturnType<typeof agentSummary>;

export function pendingItem(rt: AgentRuntime, requestedAt: number) {
  const s = rt.wf;
  const h = s.diagnosis?.hypotheses[0];
  return {
    agent_id: rt.id,
    type: rt.meta.agent_type,
    model: rt.meta.model,
    requested_at: requestedAt,
    max_deviation: s.infection?.max_deviation ?? 0,
    severity: s.infection?.severity ?? 'severe',
    anomalies: s.infection?.anomalies ?? [],
    deviations: s.infection?.deviations ?? {},
    diagnosis: h?.diagnosis ?? 'unknown',
    confidence: h?.confidence ?? 0,
    reasoning: h?.reasoning ?? '',
    hypotheses: s.diagnosis?.hypotheses ?? [],
  };
}

export function rejectedItem(rt: AgentRuntime) {
  const s = rt.wf;
  const h = s.diagnosis?.hypotheses[0];
  return {
    agent_id: rt.id,
    type: rt.meta.agent_type,
    model: rt.meta.model,
    rejected_at: s.since,
    rejected_by: s.decided_by,
    max_deviation: s.infection?.max_deviation ?? 0,
    anomalies: s.infection?.anomalies ?? [],
    diagnosis: h?.diagnosis ?? 'unknown',
    reasoning: h?.reasoning ?? '',
  };
}

export interface HealingEntry {
  seq: number;
  timestamp: number;
  agent_id: string;
  kind: string;
  action?: string;
  diagnosis?: string;
  trigger?: string;
  result?: string;
  actor: string;
  message: string;
}

/** Maps a log event to a "Recent healing actions" entry, or null for events the timeline does not show. */
export function healingEntry(e: ImmuneEvent): HealingEntry | null {
  const base = { seq: e.seq, timestamp: e.ts, agent_id: e.agent_id, actor: e.actor, message: e.reason };
  switch (e.type) {
    case 'approval_requested':
      return { ...base, kind: 'approval_requested' };
    case 'approved':
      return { ...base, kind: 'approved' };
    case 'rejected':
      return { ...base, kind: 'rejected' };
    case 'heal_now':
      return { ...base, kind: 'heal_now' };
    case 'action_started':
      return { ...base, kind: 'healing_attempt', action: e.action, diagnosis: e.diagnosis, trigger: e.trigger, result: 'pending' };
    case 'action_applied':
      return { ...base, kind: 'healing_applied', action: e.action, diagnosis: e.diagnosis, result: 'applied' };
    case 'action_failed':
      return { ...base, kind: 'healing_failed', action: e.action, diagnosis: e.diagnosis, result: 'failed' };
    case 'probation_passed':
      return { ...base, kind: 'healing_succeeded', action: e.action, diagnosis: e.diagnosis, result: 'success' };
    case 'probation_failed':
      return { ...base, kind: 'healing_failed', action: e.action, diagnosis: e.diagnosis, result: 'failed' };
    case 'exhausted':
      return { ...base, kind: 'exhausted', result: 'exhausted' };
    case 'quarantined':
      return { ...base, kind: 'quarantined' };
    case 'released':
      return { ...base, kind: 'released' };
    case 'baseline_accepted':
      return { ...base, kind: 'baseline_accepted' };
    case 'diagnosis_feedback':
      return { ...base, kind: 'feedback', diagnosis: e.diagnosis };
    case 'infection_detected':
      return { ...base, kind: 'infection_detected', diagnosis: e.diagnosis.hypotheses[0]?.diagnosis };
    default:
      return null;
  }
}

// ───────────────────── compact forms (dashboard first load and live stream) ─────────────────────
// A full summary is ~500 bytes of JSON; with 1,000 agents the overview and each second's stream
// batch were ~500 KB. The compact forms send each summary as a positional array whose field
// names travel once per message (`agent_fields`, `latest_fields`), and the stream sends a
// changed agent's full summary only when something other than its vitals changed.

/** Order of `LatestVitals` in a compact `latest` tuple. */
export const LATEST_FIELDS = ['latency', 'tokens', 'input_tokens', 'output_tokens', 'cost', 'tools', 'retries', 'success', 'error_type', 'timestamp'] as const;

/** Order of `AgentSummary` in a compact row; `latest` is itself a tuple in LATEST_FIELDS order (or null). */
export const SUMMARY_FIELDS = [
  'id',
  'type',
  'model',
  'provider',
  'mcp_servers',
  'source',
  'control_url',
  'status',
  'since',
  'has_baseline',
  'infection',
  'diagnosis',
  'healing',
  'decided_by',
  'executions',
  'last_seen',
  'latest',
] as const satisfies ReadonlyArray<keyof AgentSummary>;

/** The fields of a `vitals` stream row: what changes on every task. */
export const VITALS_FIELDS = ['id', 'executions', 'last_seen', 'latest'] as const satisfies ReadonlyArray<keyof AgentSummary>;

type Row = unknown[];

function latestTuple(l: LatestVitals | null): Row | null {
  return l === null ? null : LATEST_FIELDS.map((f) => l[f]);
}

function rowOf(s: AgentSummary, fields: ReadonlyArray<keyof AgentSummary>): Row {
  return fields.map((f) => (f === 'latest' ? latestTuple(s.latest) : s[f]));
}

/** One summary as a compact row in SUMMARY_FIELDS order. */
export function compactSummary(s: AgentSummary): Row {
  return rowOf(s, SUMMARY_FIELDS);
}

/** One summary's vitals as a row in VITALS_FIELDS order. */
export function vitalsRow(s: AgentSummary): Row {
  return rowOf(s, VITALS_FIELDS);
}

/** Summaries as `{agent_fields, latest_fields, rows}`: the compact overview's `agents`. */
export function compactAgents(list: readonly AgentSummary[]) {
  return { agent_fields: SUMMARY_FIELDS, latest_fields: LATEST_FIELDS, rows: list.map(compactSummary) };
}

/**
 * Everything in a summary except its vitals (executions, last_seen, latest), as a string: it
 * differs exactly when the stream must send the full summary rather than a vitals row.
 */
export function stateKey(s: AgentSummary): string {
  const { executions: _e, last_seen: _l, latest: _v, ...rest } = s;
  return JSON.stringify(rest);
}

/**
 * Splits one second's changed summaries for compact stream clients: agents whose state (status,
 * infection, diagnosis, healing, decision, static info) changed since `keys` last saw them go out
 * whole; the others, whose only change is new vitals, as rows. Updates `keys`.
 */
export function splitChanges(changed: readonly AgentSummary[], keys: Map<string, string>): { full: AgentSummary[]; rows: Row[] } {
  const full: AgentSummary[] = [];
  const rows: Row[] = [];
  for (const s of changed) {
    const key = stateKey(s);
    if (keys.get(s.id) === key && s.latest !== null) rows.push(vitalsRow(s));
    else full.push(s);
    keys.set(s.id, key);
  }
  return { full, rows };
}
