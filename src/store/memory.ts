import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';
import { filterEvents } from './event-query.js';
import type { EventQuery, RegisteredAgent, SeedMeasurement, SeedRecord, Store, StoreHealth } from './store.js';

interface Run {
  vitals: Map<string, Vitals[]>;
  events: Map<number, ImmuneEvent>;
  snapshot: EngineSnapshot | null;
  agents: Map<string, RegisteredAgent>;
  records: SeedRecord[];
  touched: number;
}

/** Keeps everything in process memory; only when asked for (IMMUNE_STORE=memory) and in tests. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly runs = new Map<string, Run>();
  private clock = 0;

  constructor(private readonly now: () => number = () => Date.now() / 1000) {}

  async open(): Promise<void> {}
  async close(): Promise<void> {}
  async health(): Promise<StoreHealth> {
    return { ok: true, kind: this.kind, detail: 'in-memory (nothing survives a restart)' };
  }

  private run(runId: string): Run {
    let r = this.runs.get(runId);
    if (!r) this.runs.set(runId, (r = { vitals: new Map(), events: new Map(), snapshot: null, agents: new Map(), records: [], touched: 0 }));
    r.touched = ++this.clock;
    return r;
  }

  async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
    const r = this.run(runId);
    for (const v of batch) {
      let list = r.vitals.get(v.agent_id);
      if (!list) r.vitals.set(v.agent_id, (list = []));
      list.push(structuredClone(v));
    }
  }

  async recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]> {
    let list = this.runs.get(runId)?.vitals.get(agentId) ?? [];
    if (opts.windowSeconds !== undefined) {
      const cutoff = (opts.now ?? this.now()) - opts.windowSeconds;
      list = list.filter((v) => v.timestamp >= cutoff);
    }
    const sorted = [...list].sort((a, b) => a.timestamp - b.timestamp);
    return structuredClone(opts.limit !== undefined ? sorted.slice(Math.max(0, sorted.length - opts.limit)) : sorted);
  }

  async latestVitals(runId: string): Promise<Vitals[]> {
    const out: Vitals[] = [];
    for (const list of this.runs.get(runId)?.vitals.values() ?? []) {
      if (list.length > 0) out.push(list.reduce((a, b) => (b.timestamp >= a.timestamp ? b : a)));
    }
    return structuredClone(out);
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
    const r = this.run(runId);
    // Keyed by seq: a batch re-sent after a retry is stored once.
    for (const e of events) if (!r.events.has(e.seq)) r.events.set(e.seq, structuredClone(e));
  }

  async readEvents(runId: string, q: EventQuery = {}): Promise<ImmuneEvent[]> {
    return structuredClone(filterEvents([...(this.runs.get(runId)?.events.values() ?? [])], q));
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
    return structuredClone([...(this.runs.get(runId)?.agents.values() ?? [])]);
  }

  async appendRecords(runId: string, records: readonly SeedRecord[]): Promise<void> {
    this.run(runId).records.push(...structuredClone(records));
  }

  async readRecords(runId: string, q: { measurement: SeedMeasurement; agentId?: string; limit?: number }): Promise<SeedRecord[]> {
    const list = (this.runs.get(runId)?.records ?? [])
      .filter((r) => r.measurement === q.measurement && (q.agentId === undefined || r.agent_id === q.agentId))
      .sort((a, b) => a.ts - b.ts);
    return structuredClone(q.limit !== undefined ? list.slice(Math.max(0, list.length - q.limit)) : list);
  }

  async registerRun(runId: string): Promise<void> {
    this.run(runId);
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
