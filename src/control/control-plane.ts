import { ImmuneError, isImmuneError } from '../domain/errors.js';
import type { AgentMeta, ImmuneEvent } from '../domain/events.js';
import { CONTAINED_STATES, DIAGNOSIS_TYPES, type Actor, type DiagnosisType } from '../domain/types.js';
import { checkTimestamp, parseVitals, type TimestampBounds, type Vitals } from '../domain/vitals.js';
import { describeBaseline, effectiveSigma, isReady, type MetricBaseline } from '../engine/baseline.js';
import type { EngineConfig } from '../engine/config.js';
import { CONTINUOUS } from '../engine/metrics.js';
import type { AgentRuntime, Effect, ImmuneEngine, Outcome } from '../engine/engine.js';
import type { Logger } from '../log.js';
import { filterEvents } from '../store/event-query.js';
import type { EventQuery, Store, StoreHealth } from '../store/store.js';
import { agentSummary, healingEntry, pendingItem, rejectedItem, type AgentSummary, type HealingEntry } from './views.js';
import { WriteBehind } from './write-behind.js';

/** Carries out a healing action on an agent and reports back through ControlPlane.completeAction. */
export interface ActionExecutor {
  execute(effect: Effect, rt: AgentRuntime): void;
  /** Time-based work (timeouts, retries); called every tick. */
  tick?(now: number): void;
}

export interface Directive {
  id: string;
  action: string;
  diagnosis: string;
}

export interface AgentState {
  status: string;
  directive: Directive | null;
}

export interface ControlPlaneOptions {
  engine: ImmuneEngine;
  store: Store;
  runId: string;
  log: Logger;
  /** Epoch seconds. */
  clock?: () => number;
  bounds: TimestampBounds;
  /** Chooses the executor for an agent (simulated, control URL, or directive in the ingest answer). */
  executorFor: (rt: AgentRuntime) => ActionExecutor;
  /** Pending directive of an agent for the ingest answer, if its executor hands out directives. */
  directiveFor?: (agentId: string) => Directive | null;
  /** How many log events to keep in memory for the timeline and SSE resume. */
  recentEvents?: number;
  storeHealth?: () => Promise<StoreHealth>;
}

export type EventListener = (events: readonly ImmuneEvent[]) => void;
export type VitalsListener = (v: Vitals) => void;

interface Counters {
  executions: number;
  infections: number;
  healed: number;
  failedHealings: number;
  quarantines: number;
}

/**
 * The imperative shell around the engine: validates input, feeds the engine,
 * persists what it decides (events and vitals, batched), runs the effects
 * through executors, and fans events out to listeners (SSE, metrics,
 * webhooks). Everything an operator can do goes through here.
 */
export class ControlPlane {
  readonly engine: ImmuneEngine;
  readonly runId: string;
  readonly startedAt: number;
  private readonly store: Store;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly bounds: TimestampBounds;
  private readonly writer: WriteBehind;
  private readonly listeners = new Set<EventListener>();
  private readonly vitalsListeners: VitalsListener[] = [];
  private readonly recent: ImmuneEvent[] = [];
  private readonly recentMax: number;
  private readonly executorFor: (rt: AgentRuntime) => ActionExecutor;
  private readonly executors = new Set<ActionExecutor>();
  private readonly directiveFor: (agentId: string) => Directive | null;
  private readonly storeHealthFn: () => Promise<StoreHealth>;
  /** Agents whose summary changed since the last `takeChangedAgents` (for the 1 s SSE batch). */
  private readonly changed = new Set<string>();
  private readonly requestedAt = new Map<string, number>();
  readonly counters: Counters = { executions: 0, infections: 0, healed: 0, failedHealings: 0, quarantines: 0 };

  constructor(o: ControlPlaneOptions) {
    this.engine = o.engine;
    this.store = o.store;
    this.runId = o.runId;
    this.log = o.log;
    this.clock = o.clock ?? (() => Date.now() / 1000);
    this.bounds = o.bounds;
    this.executorFor = o.executorFor;
    this.directiveFor = o.directiveFor ?? (() => null);
    this.recentMax = o.recentEvents ?? 2000;
    this.storeHealthFn = o.storeHealth ?? (() => this.store.health());
    this.writer = new WriteBehind(this.store, this.runId, this.log);
    this.startedAt = this.clock();
  }

  now(): number {
    return this.clock();
  }

  // ───────────────────────────── restore ─────────────────────────────

  /** Rebuilds state from the log (and counters from it), then re-sends healing actions that never got an outcome. */
  restoreFrom(events: readonly ImmuneEvent[]): void {
    for (const e of events) {
      this.count(e);
      if (e.type === 'approval_requested') this.requestedAt.set(e.agent_id, e.ts);
      this.remember(e);
    }
    for (const eff of this.engine.inFlight()) this.dispatch(eff);
  }

  // ───────────────────────────── ingest ─────────────────────────────

  /**
   * Validates every record first, then applies them all: a batch with one bad
   * record is rejected whole (the error names its index) and changes nothing.
   */
  ingest(records: readonly unknown[], opts: { batch: boolean; meta?: Partial<AgentMeta>; checkTimestamps?: boolean }): { accepted: number; agents: Map<string, AgentState> } {
    const now = this.clock();
    const parsed: Vitals[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const idx = opts.batch ? i : undefined;
      const v = parseVitals(records[i], now, idx);
      if (opts.checkTimestamps !== false) checkTimestamp(v, now, this.bounds, idx);
      parsed[i] = v;
    }
    const agents = new Map<string, AgentState>();
    for (const v of parsed) agents.set(v.agent_id, this.observe(v, opts.meta));
    return { accepted: parsed.length, agents };
  }

  /** One validated sample (simulated agents call this directly). */
  observe(v: Vitals, meta: Partial<AgentMeta> = { source: 'external' }): AgentState {
    this.counters.executions += 1;
    const out = this.engine.observe(v, meta);
    this.writer.vitals(v);
    for (const l of this.vitalsListeners) l(v);
    const rt = this.engine.get(v.agent_id)!;
    // The runtime's id, not the request's equal string: the set holds it until the next dashboard batch.
    this.changed.add(rt.id);
    if (out.events.length > 0 || out.effects.length > 0) this.apply(out);
    return { status: rt.wf.state, directive: this.directiveFor(v.agent_id) };
  }

  /** The healing directive waiting for this agent, if any. */
  directiveOf(agentId: string): Directive | null {
    return this.directiveFor(agentId);
  }

  register(agentId: string, meta: Partial<AgentMeta>): 'registered' | 'already_registered' | 'updated' {
    const known = this.engine.get(agentId) !== undefined;
    const out = this.engine.register(agentId, meta, this.clock());
    this.apply(out);
    const rt = this.engine.get(agentId)!;
    void this.store.upsertAgent(this.runId, { agent_id: agentId, meta: rt.meta }).catch((err: unknown) => this.log.warn({ err, agent_id: agentId }, 'could not persist agent registration'));
    this.changed.add(agentId);
    return !known ? 'registered' : out.events.length > 0 ? 'updated' : 'already_registered';
  }

  // ───────────────────────────── commands ─────────────────────────────

  approve(agentId: string, actor: Actor): AgentSummary {
    return this.command(agentId, () => this.engine.approve(agentId, actor, this.clock()));
  }

  reject(agentId: string, actor: Actor): AgentSummary {
    return this.command(agentId, () => this.engine.reject(agentId, actor, this.clock()));
  }

  healNow(agentId: string, actor: Actor): AgentSummary {
    return this.command(agentId, () => this.engine.healNow(agentId, actor, this.clock()));
  }

  release(agentId: string, actor: Actor, reason?: string): AgentSummary {
    return this.command(agentId, () => this.engine.release(agentId, actor, this.clock(), reason));
  }

  quarantine(agentId: string, actor: Actor, reason?: string): AgentSummary {
    return this.command(agentId, () => this.engine.quarantine(agentId, actor, this.clock(), reason));
  }

  acceptBaseline(agentId: string, actor: Actor, reason?: string): AgentSummary {
    return this.command(agentId, () => this.engine.acceptBaseline(agentId, actor, this.clock(), reason));
  }

  feedback(agentId: string, diagnosis: string, actor: Actor, note?: string): AgentSummary {
    if (!(DIAGNOSIS_TYPES as readonly string[]).includes(diagnosis)) {
      throw new ImmuneError('IMM_ERR_VALIDATION', `field 'diagnosis' must be one of ${DIAGNOSIS_TYPES.join(', ')}`, { field: 'diagnosis' });
    }
    return this.command(agentId, () => this.engine.feedback(agentId, diagnosis as DiagnosisType, actor, this.clock(), note));
  }

  /** Applies a command to every agent in `state`; one refusal does not stop the others. */
  bulk(state: 'pending_approval' | 'rejected', fn: (agentId: string) => unknown): string[] {
    const done: string[] = [];
    for (const rt of [...this.engine.all()].filter((r) => r.wf.state === state)) {
      try {
        fn(rt.id);
        done.push(rt.id);
      } catch (err) {
        this.log.warn({ err, agent_id: rt.id }, 'bulk command skipped an agent');
      }
    }
    return done;
  }

  /** The outcome of a healing action, from an executor or an agent's acknowledgement. */
  completeAction(agentId: string, attemptId: string, ok: boolean, detail: string, actor: Actor = 'system'): void {
    this.apply(this.engine.actionResult(agentId, attemptId, ok, detail, this.clock(), actor));
    this.changed.add(agentId);
  }

  private command(agentId: string, fn: () => Outcome): AgentSummary {
    this.apply(fn());
    this.changed.add(agentId);
    return agentSummary(this.engine.require(agentId), this.engine.cfg);
  }

  // ───────────────────────────── loop ─────────────────────────────

  tick(): void {
    const now = this.clock();
    this.apply(this.engine.tick(now));
    for (const ex of this.executors) ex.tick?.(now);
  }

  async flush(): Promise<void> {
    await this.writer.flush();
  }

  /**
   * Resolves once everything this request produced (vitals and decisions) is
   * in the store: an agent whose sample was accepted, or an operator whose
   * approval returned 200, must find it there after a crash (group commit:
   * concurrent requests share one write).
   */
  durable(): Promise<void> {
    return this.writer.durable();
  }

  async close(): Promise<void> {
    await this.writer.close();
  }

  /** Called for every accepted sample, on the ingest hot path: keep listeners O(1). */
  onVitals(listener: VitalsListener): void {
    this.vitalsListeners.push(listener);
  }

  onEvents(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private apply(out: Outcome): void {
    if (out.events.length > 0) {
      for (const e of out.events) {
        this.count(e);
        this.remember(e);
        this.logDecision(e);
        if (e.type === 'approval_requested') this.requestedAt.set(e.agent_id, e.ts);
        if (!e.agent_id.startsWith('fleet:')) this.changed.add(e.agent_id);
      }
      this.writer.events(out.events);
      for (const l of this.listeners) {
        try {
          l(out.events);
        } catch (err) {
          this.log.error({ err }, 'event listener failed');
        }
      }
    }
    for (const eff of out.effects) this.dispatch(eff);
  }

  private dispatch(eff: Effect): void {
    const rt = this.engine.get(eff.agent_id);
    if (!rt) return;
    const ex = this.executorFor(rt);
    this.executors.add(ex);
    try {
      ex.execute(eff, rt);
    } catch (err) {
      this.log.error({ err, agent_id: eff.agent_id, action: eff.action }, 'executor threw; recording the action as failed');
      this.completeAction(eff.agent_id, eff.attempt_id, false, `executor error: ${(err as Error).message}`);
    }
  }

  private remember(e: ImmuneEvent): void {
    this.recent.push(e);
    if (this.recent.length > this.recentMax * 1.25) this.recent.splice(0, this.recent.length - this.recentMax);
  }

  private count(e: ImmuneEvent): void {
    switch (e.type) {
      case 'infection_detected':
        this.counters.infections += 1;
        this.counters.quarantines += 1;
        break;
      case 'quarantined':
        this.counters.quarantines += 1;
        break;
      case 'probation_passed':
        this.counters.healed += 1;
        break;
      case 'action_failed':
      case 'probation_failed':
        this.counters.failedHealings += 1;
        break;
      default:
        break;
    }
  }

  private logDecision(e: ImmuneEvent): void {
    const base = { agent_id: e.agent_id, event: e.type, actor: e.actor };
    switch (e.type) {
      case 'infection_detected': {
        const h = e.diagnosis.hypotheses[0];
        this.log.warn({ ...base, sigma: e.infection.max_deviation, severity: e.infection.severity, anomalies: e.infection.anomalies, diagnosis: h.diagnosis, confidence: h.confidence }, `infection: ${e.agent_id} quarantined (${e.infection.anomalies.join(', ')}, ${e.infection.max_deviation.toFixed(1)}σ) — ${h.diagnosis}: ${h.reasoning}`);
        break;
      }
      case 'approval_requested':
        this.log.warn(base, `approval needed: ${e.agent_id} — ${e.reason}`);
        break;
      case 'action_started':
        this.log.info({ ...base, action: e.action, diagnosis: e.diagnosis, trigger: e.trigger }, `healing ${e.agent_id}: ${e.action} (${e.diagnosis}, ${e.trigger})`);
        break;
      case 'probation_passed':
        this.log.info({ ...base, action: e.action }, `healed: ${e.agent_id} by ${e.action}`);
        break;
      case 'probation_failed':
      case 'action_failed':
        this.log.info({ ...base, action: e.action }, `healing step failed for ${e.agent_id}: ${e.reason}`);
        break;
      case 'exhausted':
        this.log.error(base, `exhausted: ${e.agent_id} — ${e.reason}`);
        break;
      case 'fleet_incident_started':
        this.log.warn({ ...base, group: e.incident.group, agents: e.incident.agents.length }, `fleet incident: ${e.reason}`);
        break;
      case 'fleet_incident_ended':
        this.log.info({ ...base, group: e.incident.group }, `fleet incident over: ${e.incident.group}`);
        break;
      case 'approved':
      case 'rejected':
      case 'heal_now':
      case 'released':
      case 'quarantined':
      case 'baseline_accepted':
      case 'diagnosis_feedback':
        this.log.info(base, `${e.type.replace('_', ' ')}: ${e.agent_id} by ${e.actor}`);
        break;
      case 'baseline_ready':
      case 'baseline_reset':
      case 'prompt_adopted':
        this.log.debug(base, `${e.type}: ${e.agent_id} — ${e.reason}`);
        break;
      default:
        break;
    }
  }

  // ───────────────────────────── views ─────────────────────────────

  summary(agentId: string): AgentSummary {
    return agentSummary(this.engine.require(agentId), this.engine.cfg);
  }

  agents(filter: { status?: string; type?: string; model?: string; q?: string } = {}): AgentSummary[] {
    const q = filter.q?.toLowerCase();
    const out: AgentSummary[] = [];
    for (const rt of this.engine.all()) {
      if (filter.status && rt.wf.state !== filter.status) continue;
      if (filter.type && rt.meta.agent_type !== filter.type) continue;
      if (filter.model && rt.meta.model !== filter.model) continue;
      if (q && !`${rt.id} ${rt.meta.agent_type} ${rt.meta.model} ${rt.meta.mcp_servers.join(' ')}`.toLowerCase().includes(q)) continue;
      out.push(agentSummary(rt, this.engine.cfg));
    }
    return out;
  }

  /** Summaries of agents that changed since the last call (the SSE `agents` batch). */
  takeChangedAgents(build = true): AgentSummary[] {
    const out: AgentSummary[] = [];
    // With nobody listening the set is only cleared: building 10,000 summaries a second for no one costs the ingest path.
    if (build) for (const id of this.changed) {
      const rt = this.engine.get(id);
      if (rt) out.push(agentSummary(rt, this.engine.cfg));
    }
    this.changed.clear();
    return out;
  }

  pending() {
    return [...this.engine.all()].filter((rt) => rt.wf.state === 'pending_approval').map((rt) => pendingItem(rt, this.requestedAt.get(rt.id) ?? rt.wf.since));
  }

  rejected() {
    return [...this.engine.all()].filter((rt) => rt.wf.state === 'rejected').map((rt) => rejectedItem(rt));
  }

  /** The in-memory tail of the log, oldest first. */
  recentEvents(afterSeq = 0): ImmuneEvent[] {
    if (afterSeq <= 0) return [...this.recent];
    let i = this.recent.length;
    while (i > 0 && this.recent[i - 1].seq > afterSeq) i--;
    return this.recent.slice(i);
  }

  /** True when the in-memory tail still holds everything after `afterSeq` (SSE resume). */
  canResumeFrom(afterSeq: number): boolean {
    return this.recent.length === 0 || this.recent[0].seq <= afterSeq + 1;
  }

  healings(limit = 50): HealingEntry[] {
    const out: HealingEntry[] = [];
    for (let i = this.recent.length - 1; i >= 0 && out.length < limit; i--) {
      const h = healingEntry(this.recent[i]);
      if (h) out.push(h);
    }
    return out;
  }

  patterns() {
    return this.engine.memory.patterns();
  }

  stats() {
    const byStatus: Record<string, number> = {};
    let baselines = 0;
    let quarantined = 0;
    for (const rt of this.engine.all()) {
      byStatus[rt.wf.state] = (byStatus[rt.wf.state] ?? 0) + 1;
      if (isReady(rt.baseline, this.engine.cfg) || rt.wf.state !== 'learning') baselines += 1;
      if (CONTAINED_STATES.has(rt.wf.state)) quarantined += 1;
    }
    const c = this.counters;
    const totals = this.engine.memory.totals();
    return {
      total_agents: this.engine.size,
      total_executions: c.executions,
      total_infections: c.infections,
      total_healed: c.healed,
      failed_healings: c.failedHealings,
      total_quarantines: c.quarantines,
      // The seed's definition: share of detected infections that were healed (falls back to the action success rate).
      success_rate: c.infections > 0 ? Math.min(1, c.healed / c.infections) : totals.attempts > 0 ? totals.successes / totals.attempts : 0,
      current_quarantined: quarantined,
      pending_approvals: byStatus.pending_approval ?? 0,
      runtime_seconds: Math.max(0, this.clock() - this.startedAt),
      started_at: this.startedAt,
      baselines_learned: baselines,
      by_status: byStatus,
    };
  }

  incidents() {
    return this.engine.incidents();
  }

  /**
   * Reads the audit log from the store (after writing what is still queued, so
   * nothing recent is missing). While the store is unreachable, the in-memory
   * tail answers instead, marked `partial`.
   */
  async events(q: EventQuery): Promise<{ events: ImmuneEvent[]; partial: boolean }> {
    try {
      await this.writer.flush();
      return { events: await this.store.readEvents(this.runId, q), partial: false };
    } catch (err) {
      if (!isImmuneError(err) || (!err.retryable && err.code !== 'IMM_ERR_STORE_UNAVAILABLE')) throw err;
      this.log.warn({ err }, 'event log read from the in-memory tail: the store is unreachable');
      return { events: filterEvents(this.recent, q), partial: true };
    }
  }

  async storeStatus() {
    const h = await this.storeHealthFn();
    const w = this.writer.stats();
    // Everything accepted and not yet stored: this process's batches plus the store's retry queue and spill.
    return { ...h, queued: w.queued + (h.queue?.queued ?? 0), dropped: w.dropped + (h.queue?.dropped ?? 0), degraded: !h.ok || h.queue?.degraded === true };
  }

  async detail(agentId: string) {
    const rt = this.engine.require(agentId);
    const ready = isReady(rt.baseline, this.engine.cfg) || rt.baseline.n > 0;
    let recent: Vitals[] = [];
    try {
      recent = await this.store.recentVitals(this.runId, agentId, { limit: 200 });
    } catch (err) {
      this.log.warn({ err, agent_id: agentId }, 'recent vitals unavailable from the store');
    }
    const history = this.recent.filter((e) => e.agent_id === agentId).slice(-100).reverse();
    return {
      agent: agentSummary(rt, this.engine.cfg),
      baseline: ready ? { ...withBands(describeBaseline(rt.baseline), rt, this.engine.cfg.thresholdSigma, this.engine.cfg), prompt_hash: rt.baseline.prompt_hash, samples: rt.baseline.n } : null,
      deviations: this.engine.currentDeviations(agentId),
      recent_vitals: recent,
      history,
    };
  }
}

/**
 * Adds the band the sentinel actually uses (mean ± threshold·σ in log space,
 * with σ's floors) to each continuous metric, in linear units, for charts.
 */
function withBands(metrics: Record<string, MetricBaseline>, rt: AgentRuntime, threshold: number, cfg: EngineConfig): Record<string, MetricBaseline & { low?: number; high?: number }> {
  const out: Record<string, MetricBaseline & { low?: number; high?: number }> = { ...metrics };
  CONTINUOUS.forEach((m, i) => {
    const mu = rt.baseline.mean[i];
    const sd = effectiveSigma(rt.baseline, i, cfg);
    // × m.unit: the engine reads cost in hundredths of a cent; the chart shows USD.
    out[m.key] = { ...metrics[m.key], low: Math.max(0, Math.expm1(mu - threshold * sd)) * m.unit, high: Math.expm1(mu + threshold * sd) * m.unit };
  });
  return out;
}
