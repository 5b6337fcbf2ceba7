import type { FleetIncident } from '../domain/events.js';
import type { EngineConfig } from './config.js';

interface Group {
  /** agent → last time it reported. */
  seen: Map<string, number>;
  /** agent → last time it looked like a provider problem (slow or failing). */
  elevated: Map<string, number>;
  /** Agents whose latest sample was slow (latency ≥ 2σ) or failed, with its time. */
  strained: Map<string, number>;
  incident: FleetIncident | null;
  lastElevated: number;
}

export interface Assessment {
  group: string;
  affected: number;
  active: number;
  qualifies: boolean;
}

const groupCache = new Map<string, Map<string, readonly string[]>>();

/**
 * Groups agents by what they share ("model:X", "provider:Y") so a provider outage is one incident, not N quarantines.
 * Called for every sample: the (frozen) lists are memoised so the hot path allocates nothing.
 */
export function groupsOf(model: string, provider: string): readonly string[] {
  let byModel = groupCache.get(provider);
  if (!byModel) {
    byModel = new Map();
    if (groupCache.size < 1024) groupCache.set(provider, byModel);
  }
  let keys = byModel.get(model);
  if (!keys) {
    const out: string[] = [];
    if (provider) out.push(`provider:${provider}`);
    if (model) out.push(`model:${model}`);
    keys = Object.freeze(out);
    // Labels come from reporters: bound the memo so arbitrary model names cannot grow it without limit.
    if (byModel.size < 1024) byModel.set(model, keys);
  }
  return keys;
}

/**
 * Tracks, per shared model/provider, which agents are active and which show
 * provider-type trouble, within a sliding event-time window.
 */
export class FleetCorrelator {
  private readonly groups = new Map<string, Group>();
  private incidentSeq = 0;

  constructor(private readonly cfg: EngineConfig) {}

  note(keys: readonly string[], agentId: string, ts: number, providerSignal: boolean, strained = providerSignal): void {
    for (const k of keys) {
      let g = this.groups.get(k);
      if (!g) this.groups.set(k, (g = newGroup()));
      g.seen.set(agentId, ts);
      if (strained) g.strained.set(agentId, ts);
      else if (g.strained.size > 0) g.strained.delete(agentId);
      if (providerSignal) {
        g.elevated.set(agentId, ts);
        if (ts > g.lastElevated) g.lastElevated = ts;
      }
    }
  }

  /** The group (of this agent's groups) where the most peers are in trouble right now. */
  assess(keys: readonly string[], now: number): Assessment | null {
    let best: Assessment | null = null;
    for (const k of keys) {
      const g = this.groups.get(k);
      if (!g) continue;
      const cutoff = now - this.cfg.fleetWindowSeconds;
      const active = countSince(g.seen, cutoff);
      const affected = countSince(g.elevated, cutoff);
      const qualifies = affected >= this.cfg.fleetMinAgents && affected >= this.cfg.fleetMinFraction * active;
      const a = { group: k, affected, active, qualifies };
      if (!best || (a.qualifies && !best.qualifies) || (a.qualifies === best.qualifies && a.affected > best.affected)) best = a;
    }
    return best;
  }

  /**
   * True when the agent's peers say the provider is fine: in every group of the
   * agent that is big enough to show an outage, at least `fleetMinAgents` peers
   * reported since `since` and at most one in CALM_RATIO + 1 of them was
   * strained in its latest sample. An outage slows or fails most of a group's
   * samples at once, so calm peers are strong evidence that a slow agent is
   * sick on its own, and waiting out the whole hold only delays its quarantine.
   */
  peersContradict(keys: readonly string[], agentId: string, since: number, now: number): boolean {
    let judged = 0;
    for (const k of keys) {
      const g = this.groups.get(k);
      if (!g || countSince(g.seen, now - this.cfg.fleetWindowSeconds) < this.cfg.fleetMinAgents) continue;
      let calm = 0;
      let strained = 0;
      for (const [a, t] of g.seen) {
        if (a === agentId || t < since) continue;
        if (g.strained.has(a)) strained++;
        else calm++;
      }
      if (calm < this.cfg.fleetMinAgents || strained * CALM_RATIO > calm) return false;
      judged++;
    }
    return judged > 0;
  }

  activeIncident(keys: readonly string[]): FleetIncident | null {
    for (const k of keys) {
      const inc = this.groups.get(k)?.incident;
      if (inc) return inc;
    }
    return null;
  }

  open(group: string, now: number, anomalies: string[], maxDeviation: number): FleetIncident {
    const g = this.groups.get(group);
    if (!g) throw new Error(`no fleet group ${group}`);
    if (g.incident) return g.incident;
    const cutoff = now - this.cfg.fleetWindowSeconds;
    const agents = [...g.elevated].filter(([, t]) => t >= cutoff).map(([a]) => a).sort();
    this.incidentSeq += 1;
    g.incident = { id: `incident-${this.incidentSeq}:${group}`, group, started_at: now, agents, anomalies: [...anomalies].sort(), max_deviation: maxDeviation };
    return g.incident;
  }

  join(incident: FleetIncident, agentId: string, anomalies: readonly string[], deviation: number): void {
    if (!incident.agents.includes(agentId)) incident.agents.push(agentId);
    for (const a of anomalies) if (!incident.anomalies.includes(a)) incident.anomalies.push(a);
    if (deviation > incident.max_deviation) incident.max_deviation = deviation;
  }

  /** Incidents whose group has shown no trouble for a whole window; they end now. */
  closeQuiet(now: number): FleetIncident[] {
    const ended: FleetIncident[] = [];
    for (const g of this.groups.values()) {
      if (g.incident && g.lastElevated < now - this.cfg.fleetWindowSeconds) {
        g.incident.ended_at = now;
        ended.push(g.incident);
        g.incident = null;
      }
    }
    return ended;
  }

  incidents(): FleetIncident[] {
    return [...this.groups.values()].flatMap((g) => (g.incident ? [g.incident] : []));
  }

  /** Restores an open incident from the log after a restart. */
  reopen(incident: FleetIncident): void {
    const g = this.groups.get(incident.group) ?? { ...newGroup(), lastElevated: incident.started_at };
    g.incident = incident;
    this.groups.set(incident.group, g);
    const n = Number(/^incident-(\d+):/.exec(incident.id)?.[1] ?? 0);
    if (n > this.incidentSeq) this.incidentSeq = n;
  }

  close(incidentId: string): void {
    for (const g of this.groups.values()) if (g.incident?.id === incidentId) g.incident = null;
  }
}

/** Calm peers needed per strained one before the peers are taken to contradict an outage (an outage strains most of them). */
const CALM_RATIO = 4;

function newGroup(): Group {
  return { seen: new Map(), elevated: new Map(), strained: new Map(), incident: null, lastElevated: 0 };
}

function countSince(m: Map<string, number>, cutoff: number): number {
  let n = 0;
  for (const [k, t] of m) {
    if (t >= cutoff) n++;
    else m.delete(k);
  }
  return n;
}
