import type { ImmuneEvent } from '../domain/events.js';
import { LIFECYCLE_STATES, type LifecycleState } from '../domain/types.js';
import type { Vitals } from '../domain/vitals.js';

/**
 * The product's outgoing metrics, defined once. `Signals` turns vitals and
 * engine events into these series; the Prometheus registry (prometheus.ts)
 * and the OTLP exporter (otel-metrics.ts) are two views of the same state, so
 * a number on /metrics and the same number in the collector cannot disagree.
 *
 * Counters and gauges are pulled: Signals holds the values and each view reads
 * them when scraped or exported, which keeps `onVitals` (the ingest hot path)
 * to a few Map lookups and one addition. Histograms are pushed to subscribers
 * as they happen (they are rare: one per infection or healing).
 */

export type SignalKind = 'counter' | 'gauge' | 'histogram';

export interface SignalDef {
  /** Prometheus metric name. */
  readonly prom: string;
  /** OpenTelemetry instrument name. */
  readonly otel: string;
  readonly kind: SignalKind;
  readonly help: string;
  readonly labels: readonly string[];
  /** UCUM unit for OpenTelemetry ('1' for counts). */
  readonly unit: string;
  /** Histogram bucket upper bounds. */
  readonly buckets?: readonly number[];
}

const def = (d: SignalDef): SignalDef => d;

/** Every outgoing metric. docs/OBSERVABILITY.md lists each one (a test checks it). */
export const SIGNALS = {
  executions: def({ prom: 'immune_agent_executions_total', otel: 'agent.execution.count', kind: 'counter', unit: '1', help: 'Agent tasks reported (one per accepted vitals sample), by agent type, model and outcome.', labels: ['agent_type', 'model', 'outcome'] }),
  agentExecutions: def({ prom: 'immune_agent_executions_by_agent_total', otel: 'immune.agent.executions', kind: 'counter', unit: '1', help: 'Agent tasks reported per agent (bounded: agents beyond METRICS_MAX_AGENT_SERIES are agent_id="other").', labels: ['agent_id'] }),
  infections: def({ prom: 'immune_infections_total', otel: 'immune.infections', kind: 'counter', unit: '1', help: 'Infections detected, by primary diagnosis and severity.', labels: ['diagnosis', 'severity'] }),
  infectionAnomalies: def({ prom: 'immune_infection_anomalies_total', otel: 'immune.infection.anomalies', kind: 'counter', unit: '1', help: 'Anomalies seen in detected infections (an infection with two anomalies counts twice).', labels: ['anomaly'] }),
  agentInfections: def({ prom: 'immune_agent_infections_total', otel: 'immune.agent.infections', kind: 'counter', unit: '1', help: 'Infections detected per agent (bounded like immune_agent_executions_by_agent_total).', labels: ['agent_id'] }),
  approvalsRequested: def({ prom: 'immune_approvals_requested_total', otel: 'immune.approvals.requested', kind: 'counter', unit: '1', help: 'Severe infections that waited for a human decision, by diagnosis.', labels: ['diagnosis'] }),
  approvalDecisions: def({ prom: 'immune_approval_decisions_total', otel: 'immune.approvals.decisions', kind: 'counter', unit: '1', help: 'Decisions on quarantined agents (approved, rejected, heal_now), by kind of actor.', labels: ['decision', 'actor_kind'] }),
  quarantineEvents: def({ prom: 'immune_quarantine_events_total', otel: 'immune.quarantine.events', kind: 'counter', unit: '1', help: 'Agents entering quarantine (cause infection or an actor kind) and leaving it (cause healed or an actor kind).', labels: ['event', 'cause'] }),
  healingAttempts: def({ prom: 'immune_healing_attempts_total', otel: 'immune.healing.attempts', kind: 'counter', unit: '1', help: 'Healing actions started, by diagnosis, action and trigger.', labels: ['diagnosis', 'action', 'trigger'] }),
  healingOutcomes: def({ prom: 'immune_healing_outcomes_total', otel: 'immune.healing.outcomes', kind: 'counter', unit: '1', help: 'Healing action outcomes: applied, failed (could not be applied), healed (probation passed), relapsed (probation failed).', labels: ['diagnosis', 'action', 'outcome'] }),
  exhausted: def({ prom: 'immune_agents_exhausted_total', otel: 'immune.agents.exhausted', kind: 'counter', unit: '1', help: 'Times an agent ran out of healing actions and needed an operator.', labels: [] }),
  fleetIncidents: def({ prom: 'immune_fleet_incidents_total', otel: 'immune.fleet.incidents', kind: 'counter', unit: '1', help: 'Fleet incidents opened (many agents sharing a model or provider sick at once), by group kind.', labels: ['group_kind'] }),
  timeToDetect: def({ prom: 'immune_time_to_detect_samples', otel: 'immune.time_to_detect', kind: 'histogram', unit: '{sample}', help: 'Samples of evidence behind each detection (time to detect, in samples), by severity.', labels: ['severity'], buckets: [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50] }),
  timeToHeal: def({ prom: 'immune_time_to_heal_seconds', otel: 'immune.time_to_heal', kind: 'histogram', unit: 's', help: 'From infection detected to probation passed, seconds, by the diagnosis that was cured.', labels: ['diagnosis'], buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200] }),
  agents: def({ prom: 'immune_agents', otel: 'immune.agents', kind: 'gauge', unit: '{agent}', help: 'Agents by lifecycle state.', labels: ['state'] }),
  fleetIncidentsActive: def({ prom: 'immune_fleet_incidents_active', otel: 'immune.fleet.incidents.active', kind: 'gauge', unit: '{incident}', help: 'Fleet incidents currently open.', labels: [] }),
  webhookDeliveries: def({ prom: 'immune_webhook_deliveries_total', otel: 'immune.webhook.deliveries', kind: 'counter', unit: '1', help: 'Webhook deliveries by result: sent, failed (gave up after retries or a permanent error), dropped (queue full or shutdown).', labels: ['result'] }),
} as const satisfies Record<string, SignalDef>;

export type SignalKey = keyof typeof SIGNALS;

/** Label value standing for every agent (or agent type, model) beyond the series bound. */
export const OTHER = 'other';

export type Labels = Readonly<Record<string, string>>;

/** One labelled value. `labels` is created once and never changes, so views may keep it. */
export interface Series {
  readonly labels: Labels;
  value: number;
}

export interface DeliveryStats {
  sent: number;
  failed: number;
  dropped: number;
}

export interface SignalsOptions {
  /** Agents that get their own series (first come); the rest are agent_id="other". METRICS_MAX_AGENT_SERIES. */
  maxAgentSeries: number;
  /** Distinct agent_type values, model values, and (agent_type, model) combinations kept (first come, default 100); the rest are "other". Vitals carry free text here. */
  maxLabelValues?: number;
  /** Current number of agents per lifecycle state (the control loop's view). */
  agentStates?: () => Partial<Record<LifecycleState, number>>;
  /** Number of open fleet incidents (e.g. engine.incidents().length). */
  activeIncidents?: () => number;
  /** Counters of the webhook notifier. */
  webhookStats?: () => DeliveryStats;
}

export type HistogramSink = (key: SignalKey, labels: Labels, value: number) => void;

const SEP = '\u0001';

/** A counter with labels: one Series per distinct label-value tuple. */
class CounterFamily {
  private readonly byKey = new Map<string, Series>();
  constructor(private readonly labelNames: readonly string[]) {}

  /** The series for these label values, created at 0; hot paths keep the handle instead of calling this per sample. */
  series(values: readonly string[]): Series {
    const key = values.join(SEP);
    let s = this.byKey.get(key);
    if (!s) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]));
      s = { labels: Object.freeze(labels), value: 0 };
      this.byKey.set(key, s);
    }
    return s;
  }

  inc(values: readonly string[], n = 1): void {
    this.series(values).value += n;
  }

  all(): Series[] {
    return [...this.byKey.values()];
  }
}

/** First-come admission of label values up to a bound; later values map to OTHER so series stay bounded. */
class BoundedValues {
  private readonly admitted = new Set<string>();
  constructor(private readonly max: number) {}

  label(value: string): string {
    if (this.admitted.has(value)) return value;
    if (this.admitted.size < this.max && value !== OTHER) {
      this.admitted.add(value);
      return value;
    }
    return OTHER;
  }
}

interface ExecutionCells {
  success: Series;
  failure: Series;
}

interface Episode {
  detectedAt: number;
  diagnosis: string;
}

const KNOWN_ACTOR_KINDS = new Set(['system', 'operator', 'viewer', 'agent']);

/** 'operator:alice' → 'operator'; anything unexpected is 'other' so a free-text actor cannot add series. */
export function actorKind(actor: string): string {
  const i = actor.indexOf(':');
  const kind = i < 0 ? actor : actor.slice(0, i);
  return KNOWN_ACTOR_KINDS.has(kind) ? kind : OTHER;
}

/** 'model:gpt-4o' → 'model'. */
function groupKind(group: string): string {
  const i = group.indexOf(':');
  const kind = i < 0 ? group : group.slice(0, i);
  return kind === 'model' || kind === 'provider' ? kind : OTHER;
}

/**
 * Turns vitals and engine events into the SIGNALS series. Feed it with
 * `onVitals` for every accepted sample and `onEvents` for every outcome of the
 * engine; read it through an ImmuneMetrics (Prometheus) and/or OtelMetrics.
 */
export class Signals {
  private readonly counters = new Map<SignalKey, CounterFamily>();
  private readonly sinks = new Set<HistogramSink>();
  private readonly agentIds: BoundedValues;
  private readonly agentTypes: BoundedValues;
  private readonly models: BoundedValues;
  /** agent_type label → model label → cells. Keys are already bounded, so the maps are too. */
  private readonly execCells = new Map<string, Map<string, ExecutionCells>>();
  /** Admitted agents only (at most maxAgentSeries entries). */
  private readonly execByAgent = new Map<string, Series>();
  private readonly execOther: Series;
  private readonly maxLabelValues: number;
  private execCombinations = 0;
  /** Open infection episodes per agent: when detected (for time to heal) and the diagnosis (for approval labels). */
  private readonly episodes = new Map<string, Episode>();

  constructor(private readonly opts: SignalsOptions) {
    if (!Number.isInteger(opts.maxAgentSeries) || opts.maxAgentSeries < 0) throw new RangeError(`maxAgentSeries must be a non-negative integer, got ${opts.maxAgentSeries}`);
    this.agentIds = new BoundedValues(opts.maxAgentSeries);
    this.maxLabelValues = opts.maxLabelValues ?? 100;
    this.agentTypes = new BoundedValues(this.maxLabelValues);
    this.models = new BoundedValues(this.maxLabelValues);
    for (const [key, d] of Object.entries(SIGNALS) as Array<[SignalKey, SignalDef]>) {
      if (d.kind === 'counter') this.counters.set(key, new CounterFamily(d.labels));
    }
    this.execOther = this.family('agentExecutions').series([OTHER]);
  }

  private family(key: SignalKey): CounterFamily {
    const f = this.counters.get(key);
    if (!f) throw new Error(`${key} is not a counter`);
    return f;
  }

  /** Per accepted vitals sample. O(1): a handful of Map lookups and two additions. */
  onVitals(v: Vitals): void {
    const type = this.agentTypes.label(v.agent_type || 'unknown');
    const model = this.models.label(v.model || 'unknown');
    let byModel = this.execCells.get(type);
    if (!byModel) {
      byModel = new Map();
      this.execCells.set(type, byModel);
    }
    let cells = byModel.get(model);
    if (!cells) {
      cells = this.admitCombination(type, model);
      byModel.set(model, cells);
    }
    (v.success ? cells.success : cells.failure).value += 1;

    let mine = this.execByAgent.get(v.agent_id);
    if (!mine) {
      const label = this.agentIds.label(v.agent_id);
      if (label === OTHER) mine = this.execOther;
      else {
        mine = this.family('agentExecutions').series([label]);
        this.execByAgent.set(v.agent_id, mine);
      }
    }
    mine.value += 1;
  }

  /**
   * Series for a new (agent_type, model) combination. Each dimension is bounded and so are the combinations
   * (distinct types × distinct models cannot multiply): past the bound they share agent_type="other", model="other".
   */
  private admitCombination(type: string, model: string): ExecutionCells {
    const admit = this.execCombinations < this.maxLabelValues;
    if (admit) this.execCombinations += 1;
    const f = this.family('executions');
    const [t, m] = admit ? [type, model] : [OTHER, OTHER];
    return { success: f.series([t, m, 'success']), failure: f.series([t, m, 'failure']) };
  }

  onEvents(events: readonly ImmuneEvent[]): void {
    for (const e of events) this.onEvent(e);
  }

  onEvent(e: ImmuneEvent): void {
    switch (e.type) {
      case 'infection_detected': {
        const diagnosis = e.diagnosis.hypotheses[0]?.diagnosis ?? 'unknown';
        const severity = e.infection.severity;
        this.family('infections').inc([diagnosis, severity]);
        for (const a of e.infection.anomalies) this.family('infectionAnomalies').inc([a]);
        this.family('agentInfections').inc([this.agentIds.label(e.agent_id)]);
        this.family('quarantineEvents').inc(['entered', 'infection']);
        if (e.infection.evidence_samples !== undefined) this.observe('timeToDetect', { severity }, e.infection.evidence_samples);
        this.episodes.set(e.agent_id, { detectedAt: e.ts, diagnosis });
        break;
      }
      case 'approval_requested':
        this.family('approvalsRequested').inc([this.episodes.get(e.agent_id)?.diagnosis ?? 'unknown']);
        break;
      case 'approved':
      case 'rejected':
      case 'heal_now':
        this.family('approvalDecisions').inc([e.type, actorKind(e.actor)]);
        break;
      case 'quarantined':
        this.family('quarantineEvents').inc(['entered', actorKind(e.actor)]);
        break;
      case 'released':
        this.family('quarantineEvents').inc(['released', actorKind(e.actor)]);
        this.episodes.delete(e.agent_id);
        break;
      case 'baseline_accepted':
      case 'baseline_reset':
        this.episodes.delete(e.agent_id);
        break;
      case 'action_started':
        this.family('healingAttempts').inc([e.diagnosis, e.action, e.trigger]);
        break;
      case 'action_applied':
        this.family('healingOutcomes').inc([e.diagnosis, e.action, 'applied']);
        break;
      case 'action_failed':
        this.family('healingOutcomes').inc([e.diagnosis, e.action, 'failed']);
        break;
      case 'probation_failed':
        this.family('healingOutcomes').inc([e.diagnosis, e.action, 'relapsed']);
        break;
      case 'probation_passed': {
        this.family('healingOutcomes').inc([e.diagnosis, e.action, 'healed']);
        this.family('quarantineEvents').inc(['released', 'healed']);
        const ep = this.episodes.get(e.agent_id);
        // An episode that began before a restart has no start time here: no observation rather than a wrong one.
        if (ep) this.observe('timeToHeal', { diagnosis: e.diagnosis }, Math.max(0, e.ts - ep.detectedAt));
        this.episodes.delete(e.agent_id);
        break;
      }
      case 'exhausted':
        this.family('exhausted').inc([]);
        break;
      case 'fleet_incident_started':
        this.family('fleetIncidents').inc([groupKind(e.incident.group)]);
        break;
      default:
        break;
    }
  }

  /** Receives every histogram observation from now on; returns the unsubscribe function. */
  subscribe(sink: HistogramSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  private observe(key: SignalKey, labels: Labels, value: number): void {
    for (const sink of this.sinks) sink(key, labels, value);
  }

  /** Current values of a counter or gauge (views call this when scraped or exported). */
  read(key: SignalKey): Series[] {
    switch (key) {
      case 'agents': {
        const counts = this.opts.agentStates?.();
        if (!counts) return [];
        return LIFECYCLE_STATES.map((state) => ({ labels: { state }, value: counts[state] ?? 0 }));
      }
      case 'fleetIncidentsActive': {
        const n = this.opts.activeIncidents?.();
        return n === undefined ? [] : [{ labels: {}, value: n }];
      }
      case 'webhookDeliveries': {
        const s = this.opts.webhookStats?.();
        if (!s) return [];
        return (['sent', 'failed', 'dropped'] as const).map((result) => ({ labels: { result }, value: s[result] }));
      }
      default:
        return this.family(key).all();
    }
  }
}
