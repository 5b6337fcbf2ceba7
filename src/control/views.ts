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
