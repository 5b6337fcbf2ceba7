import type { FleetIncident } from '../domain/events.js';
import type { EngineConfig } from './config.js';

/**
 * One agent's standing in a group, as of its latest sample. One mutable record per agent and group:
 * the per-sample path updates it in place (a timestamp stored into a Map would box a new number on
 * every sample of every agent).
 */
interface Member {
  /** When it last reported. */
  seen: number;
  /**
   * Its latest sample carries provider-type evidence and nothing of its own. A level, not an edge: an
   * outage keeps every affected agent's evidence up, while noise on a healthy agent reaches half of h
   * now and then and falls back. Counting every agent that was ever half-way within the window added
   * 2 noisy peers to one real latency fault often enough to open false incidents in a 15-agent demo
   * fleet.
   */
  elevated: boolean;
  /** Its latest sample was slow (latency ≥ 2σ) or failed. */
  strained: boolean;
  /** Its latest sample showed trouble of its own kind: neither a witness for an outage nor a calm peer. */
  own: boolean;
  readonly group: Group;
  /** Dropped from the group after a window without samples: the agent's next sample joins it afresh. */
  left: boolean;
}

/**
 * Where one agent stands in its groups: its member records, kept by the caller (the engine's agent
 * runtime) so that noting a sample looks nothing up. Rebuilt when the agent's groups change (a new
 * model or provider) or it has left one.
 */
export interface Standing {
  readonly agentId: string;
  keys: readonly string[];
  members: Member[];
  /** The agent's groups (groupsFor), worked out for this model and provider. */
  groups: readonly string[];
  model: string;
  provider: string;
}

export function newStanding(agentId: string): Standing {
  return { agentId, keys: NO_GROUPS, members: [], groups: groupsOf('', ''), model: '', provider: '' };
}

/** groupsOf for one agent, remembered until its model or provider changes: two map lookups less per sample. */
export function groupsFor(st: Standing, model: string, provider: string): readonly string[] {
  if (model !== st.model || provider !== st.provider) {
    st.model = model;
    st.provider = provider;
    st.groups = groupsOf(model, provider);
  }
  return st.groups;
}

const NO_GROUPS: readonly string[] = Object.freeze([]);

interface Group {
  members: Map<string, Member>;
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

  /**
   * Records one judged sample. `providerSignal`: provider-type trouble and nothing else; `strained`:
   * this very sample was slow or failed; `own`: the agent shows trouble of its own kind (tokens,
   * tool calls, cost, a new prompt) or is being healed of its own infection. An agent with trouble
   * of its own is no witness for an outage, however slow it is: it stops counting as affected and is
   * neither a strained nor a calm peer until a sample shows nothing of its own again.
   */
  note(st: Standing, keys: readonly string[], ts: number, providerSignal: boolean, strained = providerSignal, own = false): void {
    if (st.keys !== keys || anyLeft(st.members)) this.place(st, keys, ts);
    const members = st.members;
    for (let i = 0; i < members.length; i++) {
      const m = members[i];
      m.seen = ts;
      m.own = own;
      m.strained = !own && strained;
      m.elevated = !own && providerSignal;
      // Written on every sample (not inside an if) so optimised code never meets a store it has not seen run.
      const g = m.group;
      const latest = Math.max(ts, g.lastElevated);
      g.lastElevated = m.elevated ? latest : g.lastElevated;
    }
  }

  /** Finds or adds the agent's member record in each of `keys`' groups. */
  private place(st: Standing, keys: readonly string[], ts: number): void {
    st.keys = keys;
    st.members = keys.map((k) => {
      let g = this.groups.get(k);
      if (!g) this.groups.set(k, (g = newGroup()));
      let m = g.members.get(st.agentId);
      if (!m) g.members.set(st.agentId, (m = { seen: ts, elevated: false, strained: false, own: false, group: g, left: false }));
      return m;
    });
  }

  /**
   * The group (of this agent's groups) where the most peers are in trouble right now. A group
   * qualifies for an incident when at least `fleetMinAgents` and `fleetMinFraction` of its active
   * agents show provider-type trouble and nothing of their own, *and* most of the agents that
   * reported since `since` (when this agent's trouble began) were strained in their latest sample:
   * an outage slows or fails nearly every task of the group at once, while a few sick agents among
   * calm peers are a coincidence (in a 15-agent demo fleet, 3 of 8 agents of one provider were
   * often elevated together with no provider at fault).
   */
  assess(keys: readonly string[], now: number, since = now): Assessment | null {
    let best: Assessment | null = null;
    for (const k of keys) {
      const g = this.groups.get(k);
      if (!g) continue;
      const cutoff = now - this.cfg.fleetWindowSeconds;
      const active = countSince(g, cutoff);
      const affected = countElevated(g, cutoff);
      const qualifies = affected >= this.cfg.fleetMinAgents && affected >= this.cfg.fleetMinFraction * active && mostlyStrained(g, since);
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
      const active = g ? countSince(g, now - this.cfg.fleetWindowSeconds) : 0;
      if (!g || active < this.cfg.fleetMinAgents) continue;
      let calm = 0;
      let strained = 0;
      let own = 0;
      for (const [a, m] of g.members) {
        if (a === agentId || m.seen < since) continue;
        if (m.own) own++;
        else if (m.strained) strained++;
        else calm++;
      }
      // In a small group, calm peers and peers sick on their own can leave too few possible witnesses for
      // an incident to ever qualify: waiting out the hold would then only delay the quarantine.
      const noIncidentPossible = calm + own > 0 && active - calm - own < this.cfg.fleetMinAgents;
      if (!noIncidentPossible && (calm < this.cfg.fleetMinAgents || strained * CALM_RATIO > calm)) return false;
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
    const agents = [...g.members].filter(([, m]) => m.elevated && m.seen >= cutoff).map(([a]) => a).sort();
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
    const g = this.groups.get(incident.group) ?? newGroup(incident.started_at);
    g.incident = incident;
    this.groups.set(incident.group, g);
    const n = Number(/^incident-(\d+):/.exec(incident.id)?.[1] ?? 0);
    if (n > this.incidentSeq) this.incidentSeq = n;
  }

  close(incidentId: string): void {
    for (const g of this.groups.values()) if (g.incident?.id === incidentId) g.incident = null;
  }
}

/** True when at least as many of the agents that reported since `since` were strained in their latest sample as were calm. */
function mostlyStrained(g: Group, since: number): boolean {
  let strained = 0;
  let calm = 0;
  for (const m of g.members.values()) {
    if (m.seen < since || m.own) continue;
    if (m.strained) strained++;
    else calm++;
  }
  return strained >= calm;
}

/** Calm peers needed per strained one before the peers are taken to contradict an outage (an outage strains most of them). */
const CALM_RATIO = 4;

function anyLeft(members: readonly Member[]): boolean {
  for (let i = 0; i < members.length; i++) if (members[i].left) return true;
  return false;
}

/** `lastElevated` is born a double (-Infinity: never), the kind of number every later timestamp is: see note(). */
function newGroup(lastElevated = -Infinity): Group {
  return { members: new Map(), incident: null, lastElevated };
}

/** Agents of the group that reported since `cutoff`; the others leave it. */
function countSince(g: Group, cutoff: number): number {
  let n = 0;
  for (const [a, m] of g.members) {
    if (m.seen >= cutoff) n++;
    else {
      m.left = true;
      g.members.delete(a);
    }
  }
  return n;
}

function countElevated(g: Group, cutoff: number): number {
  let n = 0;
  for (const m of g.members.values()) if (m.elevated && m.seen >= cutoff) n++;
  return n;
}
