import type { ImmuneEvent } from '../domain/events.js';
import type { Infection } from '../domain/types.js';
import { describeBaseline, restoreBaseline, type BaselineSnapshot } from '../engine/baseline.js';
import type { SeedMeasurement, SeedRecord } from './store.js';

/**
 * The seed's measurements (infection_event, quarantine_event, approval_event,
 * healing_event, action_log) as views over our one event log, plus the
 * seed's queries over them. A seed-shaped client's own writes (SeedRecord)
 * are merged in, so both kinds of client see one consistent answer.
 *
 * Mapping (DESIGN: the event log is the source of truth):
 *   infection_detected            → infection_event, quarantine_event(quarantine)
 *   quarantined                   → quarantine_event(quarantine)
 *   released, probation_passed    → quarantine_event(release, duration_s)
 *   approval_requested/approved/rejected/heal_now → approval_event(pending/approved/rejected/heal_now)
 *   released, baseline_accepted   → approval_event(released/baseline_accepted) when a decision was open
 *   action_failed, probation_passed, probation_failed → healing_event (one per attempt outcome)
 *   every event                   → action_log
 */

interface Context {
  infection: Map<string, { infection: Infection; diagnosis: string; reasoning: string }>;
  quarantinedAt: Map<string, number>;
  trigger: Map<string, string>;
  openDecision: Set<string>;
}

export function newSeedContext(): Context {
  return { infection: new Map(), quarantinedAt: new Map(), trigger: new Map(), openDecision: new Set() };
}

const row = (measurement: SeedMeasurement, e: ImmuneEvent, fields: Record<string, unknown>): SeedRecord => ({ measurement, agent_id: e.agent_id, ts: e.ts, fields });

/** Seed rows for one event, in log order; `ctx` carries what earlier events said (the infection behind an approval request). */
export function seedRowsForEvent(e: ImmuneEvent, ctx: Context): SeedRecord[] {
  const out: SeedRecord[] = [];
  const inf = ctx.infection.get(e.agent_id);
  const approval = (decision: string) =>
    row('approval_event', e, {
      decision,
      severity: inf?.infection.max_deviation ?? null,
      anomalies: inf?.infection.anomalies ?? [],
      diagnosis_type: inf?.diagnosis ?? 'unknown',
      reasoning: inf?.reasoning ?? e.reason,
      infection_payload: inf?.infection ?? null,
      actor: e.actor,
    });
  const healing = (action: string, diagnosis: string, attemptId: string, success: boolean, validation: boolean, message: string) =>
    row('healing_event', e, { diagnosis_type: diagnosis, healing_action: action, success, validation_passed: validation, trigger: ctx.trigger.get(attemptId) ?? 'auto', message });
  const release = () => {
    const since = ctx.quarantinedAt.get(e.agent_id);
    ctx.quarantinedAt.delete(e.agent_id);
    out.push(row('quarantine_event', e, { action: 'release', duration_s: since === undefined ? null : Math.max(0, e.ts - since) }));
  };
  const log: Record<string, unknown> = { type: e.type, seq: e.seq, actor: e.actor, reason: e.reason, severity: null, diagnosis_type: null, action: null, success: null, trigger: null };

  switch (e.type) {
    case 'infection_detected': {
      const top = e.diagnosis.hypotheses[0];
      ctx.infection.set(e.agent_id, { infection: e.infection, diagnosis: top?.diagnosis ?? 'unknown', reasoning: top?.reasoning ?? e.reason });
      ctx.quarantinedAt.set(e.agent_id, e.ts);
      out.push(
        row('infection_event', e, { severity: e.infection.max_deviation, max_deviation: e.infection.max_deviation, anomalies: e.infection.anomalies, deviations: e.infection.deviations, diagnosis_type: top?.diagnosis ?? 'unknown' }),
        row('quarantine_event', e, { action: 'quarantine', duration_s: null }),
      );
      Object.assign(log, { severity: e.infection.max_deviation, diagnosis_type: top?.diagnosis ?? 'unknown' });
      break;
    }
    case 'quarantined':
      if (!ctx.quarantinedAt.has(e.agent_id)) ctx.quarantinedAt.set(e.agent_id, e.ts);
      out.push(row('quarantine_event', e, { action: 'quarantine', duration_s: null }));
      break;
    case 'approval_requested':
      ctx.openDecision.add(e.agent_id);
      out.push(approval('pending'));
      break;
    case 'approved':
    case 'heal_now':
      ctx.openDecision.delete(e.agent_id);
      out.push(approval(e.type));
      break;
    case 'rejected':
      ctx.openDecision.add(e.agent_id);
      out.push(approval('rejected'));
      break;
    case 'released':
    case 'baseline_accepted':
      if (ctx.openDecision.delete(e.agent_id)) out.push(approval(e.type));
      if (e.type === 'released') release();
      break;
    case 'action_started':
      ctx.trigger.set(e.attempt_id, e.trigger);
      Object.assign(log, { action: e.action, diagnosis_type: e.diagnosis, trigger: e.trigger });
      break;
    case 'action_applied':
      Object.assign(log, { action: e.action, diagnosis_type: e.diagnosis, success: true });
      break;
    case 'action_failed':
      out.push(healing(e.action, e.diagnosis, e.attempt_id, false, false, e.detail));
      Object.assign(log, { action: e.action, diagnosis_type: e.diagnosis, success: false });
      break;
    case 'probation_passed':
      out.push(healing(e.action, e.diagnosis, e.attempt_id, true, true, e.reason));
      Object.assign(log, { action: e.action, diagnosis_type: e.diagnosis, success: true });
      ctx.infection.delete(e.agent_id);
      release();
      break;
    case 'probation_failed':
      out.push(healing(e.action, e.diagnosis, e.attempt_id, true, false, e.reason));
      Object.assign(log, { action: e.action, diagnosis_type: e.diagnosis, success: false, severity: e.infection.max_deviation });
      break;
    default:
      break;
  }
  out.push(row('action_log', e, log));
  return out;
}

/** Every seed row the log implies, in log order. */
export function seedRowsFromEvents(events: Iterable<ImmuneEvent>): SeedRecord[] {
  const ctx = newSeedContext();
  const out: SeedRecord[] = [];
  for (const e of events) out.push(...seedRowsForEvent(e, ctx));
  return out;
}

/** Rows of one measurement from both sources, oldest first (stable for equal timestamps). */
export function mergeRows(measurement: SeedMeasurement, derived: readonly SeedRecord[], stored: readonly SeedRecord[]): SeedRecord[] {
  return [...derived.filter((r) => r.measurement === measurement), ...stored.filter((r) => r.measurement === measurement)].sort((a, b) => a.ts - b.ts);
}

// ───────────────────────────── the seed's queries ─────────────────────────────

const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
const str = (x: unknown, d = ''): string => (typeof x === 'string' ? x : d);

export interface ApprovalState {
  agent_id: string;
  decision: string;
  severity: number;
  anomalies: unknown[];
  diagnosis_type: string;
  reasoning: string;
  infection_payload: Record<string, unknown>;
  timestamp: number;
}

/** The latest approval decision per agent (seed GET /approvals/latest). */
export function latestApprovals(rows: readonly SeedRecord[]): Record<string, ApprovalState> {
  const out: Record<string, ApprovalState> = {};
  for (const r of rows) {
    if (r.measurement !== 'approval_event') continue;
    const f = r.fields;
    out[r.agent_id] = {
      agent_id: r.agent_id,
      decision: str(f.decision),
      severity: num(f.severity ?? f.max_deviation),
      anomalies: Array.isArray(f.anomalies) ? f.anomalies : [],
      diagnosis_type: str(f.diagnosis_type, 'unknown'),
      reasoning: str(f.reasoning),
      infection_payload: typeof f.infection_payload === 'object' && f.infection_payload !== null ? (f.infection_payload as Record<string, unknown>) : {},
      timestamp: r.ts,
    };
  }
  return out;
}

/** Agents whose latest decision is `decision`, in the seed's list shape (requested_at / rejected_at). */
export function approvalsIn(rows: readonly SeedRecord[], decision: 'pending' | 'rejected'): Array<Record<string, unknown>> {
  return Object.values(latestApprovals(rows))
    .filter((a) => a.decision === decision)
    .map((a) => ({
      agent_id: a.agent_id,
      severity: Math.round(a.severity * 10) / 10,
      anomalies: a.anomalies,
      diagnosis_type: a.diagnosis_type,
      reasoning: a.reasoning,
      [decision === 'pending' ? 'requested_at' : 'rejected_at']: a.timestamp,
    }));
}

/** Actions that failed for (agent, diagnosis) and have not worked since (seed GET /healing/failed-actions). */
export function failedActions(rows: readonly SeedRecord[], agentId: string, diagnosis: string): string[] {
  const failed = new Set<string>();
  for (const r of rows) {
    if (r.measurement !== 'healing_event' || r.agent_id !== agentId || r.fields.diagnosis_type !== diagnosis) continue;
    const action = str(r.fields.healing_action);
    if (r.fields.validation_passed === true) failed.delete(action);
    else failed.add(action);
  }
  return [...failed].sort();
}

export function healingTotals(rows: readonly SeedRecord[]): { total: number; rate: number } {
  let total = 0;
  let ok = 0;
  for (const r of rows) {
    if (r.measurement !== 'healing_event') continue;
    total += 1;
    if (r.fields.validation_passed === true) ok += 1;
  }
  return { total, rate: total === 0 ? 0 : ok / total };
}

/** Per diagnosis, the action with the most validated successes (seed GET /healing/pattern-summary). */
export function patternSummary(rows: readonly SeedRecord[]): Record<string, { best_action: string; success_count: number }> {
  const counts = new Map<string, Map<string, number>>();
  for (const r of rows) {
    if (r.measurement !== 'healing_event' || r.fields.validation_passed !== true) continue;
    const d = str(r.fields.diagnosis_type);
    const a = str(r.fields.healing_action);
    if (!d || !a) continue;
    let m = counts.get(d);
    if (!m) counts.set(d, (m = new Map()));
    m.set(a, (m.get(a) ?? 0) + 1);
  }
  const out: Record<string, { best_action: string; success_count: number }> = {};
  for (const [d, m] of counts) {
    let best: [string, number] = ['', -1];
    for (const [a, n] of m) if (n > best[1]) best = [a, n];
    out[d] = { best_action: best[0], success_count: best[1] };
  }
  return out;
}

/** The newest `limit` action-log rows, oldest first, in the seed's shape. */
export function recentActions(rows: readonly SeedRecord[], limit: number): Array<Record<string, unknown>> {
  const log = rows.filter((r) => r.measurement === 'action_log');
  return log.slice(Math.max(0, log.length - limit)).map((r) => {
    const f = r.fields;
    const payload = typeof f.payload === 'object' && f.payload !== null ? (f.payload as Record<string, unknown>) : f;
    return {
      type: str(f.type ?? f.action_type, 'unknown'),
      agent_id: r.agent_id,
      timestamp: r.ts,
      severity: typeof payload.severity === 'number' ? payload.severity : null,
      diagnosis_type: typeof payload.diagnosis_type === 'string' ? payload.diagnosis_type : null,
      action: typeof payload.action === 'string' ? payload.action : null,
      success: typeof payload.success === 'boolean' ? payload.success : null,
      trigger: typeof payload.trigger === 'string' ? payload.trigger : null,
      ...(typeof f.reason === 'string' ? { reason: f.reason, actor: f.actor, seq: f.seq } : {}),
    };
  });
}

/** The seed's baseline profile (linear units) from our snapshot of one agent's baseline. */
export function seedBaselineProfile(agentId: string, b: BaselineSnapshot): Record<string, number | string> {
  const d = describeBaseline(restoreBaseline(b));
  const out: Record<string, number | string> = { agent_id: agentId };
  for (const key of ['latency', 'tokens', 'tools', 'input_tokens', 'output_tokens', 'cost'] as const) {
    const m = d[key] as { mean: number; stddev: number; p95: number } | undefined;
    out[`${key}_mean`] = m?.mean ?? 0;
    out[`${key}_stddev`] = m?.stddev ?? 0;
    out[`${key}_p95`] = m?.p95 ?? 0;
  }
  out.sample_size = b.n;
  return out;
}
