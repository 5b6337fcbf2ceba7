import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';
import type { EventQuery, RegisteredAgent, Store, StoreHealth } from './store.js';

interface Run {
  vitals: Map<string, Vitals[]>;
  events: ImmuneEvent[];
  snapshot: EngineSnapshot | null;
  agents: Map<string, RegisteredAgent>;
  touched: number;
}

/** Keeps everything in process memory; only when asked for (IMMUNE_STORE=memory) and in tests. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly runs = new Map<string, Run>();
  private clock = 0;

  async open(): Promise<void> {}
  async close(): Promise<void> {}
  async health(): Promise<StoreHealth> {
    return { ok: true, kind: this.kind, detail: 'in-memory (nothing survives a restart)' };
  }

  private run(runId: string): Run {
    let r = this.runs.get(runId);
    if (!r) this.runs.set(runId, (r = { vitals: new Map(), events: [], snapshot: null, agents: new Map(), touched: 0 }));
    r.touched = ++this.clock;
    return r;
  }

  async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
    const r = this.run(runId);
    for (const v of batch) {
      let list = r.vitals.get(v.agent_id);
      if (!list) r.vitals.set(v.agent_id, (list = []));
      list.push(v);
    }
  }

  async recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]> {
    let list = this.runs.get(runId)?.vitals.get(agentId) ?? [];
    if (opts.windowSeconds !== undefined) {
      const cutoff = (opts.now ?? Date.now() / 1000) - opts.windowSeconds;
      list = list.filter((v) => v.timestamp >= cutoff);
    }
    const sorted = [...list].sort((a, b) => a.timestamp - b.timestamp);
    return opts.limit !== undefined ? sorted.slice(-opts.limit) : sorted;
  }

  async latestVitals(runId: string): Promise<Vitals[]> {
    const out: Vitals[] = [];
    for (const list of this.runs.get(runId)?.vitals.values() ?? []) {
      if (list.length > 0) out.push(list.reduce((a, b) => (b.timestamp >= a.timestamp ? b : a)));
    }
    return out;
  }

  async vitalsCount(runId: string, agentId?: string): Promise<number> {
    const r = this.runs.get(runId);
    if (!r) return 0;
    if (agentId !== undefined) return r.vitals.get(agentId)?.length ?? 0;
    let n = 0;
    for (const l of r.vitals.values()) n += l.length;
    return n;
  }

  async appendEvents(runId: string, events: readonly ImmuneEvent[]): Promise<void> {
    this.run(runId).events.push(...events);
  }

  async readEvents(runId: string, q: EventQuery = {}): Promise<ImmuneEvent[]> {
    const types = q.types ? new Set(q.types) : null;
    let list = (this.runs.get(runId)?.events ?? []).filter(
      (e) =>
        (q.afterSeq === undefined || e.seq > q.afterSeq) &&
        (q.beforeSeq === undefined || e.seq < q.beforeSeq) &&
        (q.agentId === undefined || e.agent_id === q.agentId) &&
        (types === null || types.has(e.type)) &&
        (q.sinceTs === undefined || e.ts >= q.sinceTs) &&
        (q.untilTs === undefined || e.ts <= q.untilTs),
    );
    list = [...list].sort((a, b) => (q.order === 'desc' ? b.seq - a.seq : a.seq - b.seq));
    return q.limit !== undefined ? list.slice(0, q.limit) : list;
  }

  async saveSnapshot(runId: string, snapshot: EngineSnapshot): Promise<void> {
    this.run(runId).snapshot = structuredClone(snapshot);
  }

  async loadSnapshot(runId: string): Promise<EngineSnapshot | null> {
    const s = this.runs.get(runId)?.snapshot;
    return s ? structuredClone(s) : null;
  }

  async upsertAgent(runId: string, agent: RegisteredAgent): Promise<void> {
    this.run(runId).agents.set(agent.agent_id, structuredClone(agent));
  }

  async agents(runId: string): Promise<RegisteredAgent[]> {
    return [...(this.runs.get(runId)?.agents.values() ?? [])].map((a) => structuredClone(a));
  }

  async latestRun(): Promise<string | null> {
    let best: [string, number] | null = null;
    for (const [id, r] of this.runs) if (!best || r.touched > best[1]) best = [id, r.touched];
    return best?.[0] ?? null;
  }

  async pruneVitals(olderThanTs: number): Promise<number> {
    let n = 0;
    for (const r of this.runs.values()) {
      for (const [id, list] of r.vitals) {
        const keep = list.filter((v) => v.timestamp >= olderThanTs);
        n += list.length - keep.length;
        r.vitals.set(id, keep);
      }
    }
    return n;
  }
}
