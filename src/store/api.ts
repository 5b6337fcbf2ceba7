import { ImmuneError } from '../domain/errors.js';
import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';
import type { EventQuery, RegisteredAgent, SeedMeasurement, SeedRecord, Store, StoreHealth } from './store.js';

export interface ApiStoreOptions {
  /** SERVER_API_BASE_URL, without a trailing slash. */
  baseUrl: string;
  /** SERVER_API_KEY (sent as X-API-Key and Authorization: Bearer). */
  apiKey?: string;
  timeoutMs?: number;
  /** Records per write request. */
  batchSize?: number;
}

/** A body that is already JSON text (sent as is, not encoded again). */
class RawJson {
  constructor(readonly text: string | Buffer) {}
}

/**
 * A Store that is a client of `immune server-api` (the seed's client-deployed
 * architecture: no database on the control plane's host). Uses the seed's
 * paths where they fit and the batch additions for writes.
 */
export class ApiStore implements Store {
  readonly kind = 'api' as const;
  private readonly timeoutMs: number;
  private readonly batchSize: number;

  constructor(private readonly opts: ApiStoreOptions) {
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.batchSize = opts.batchSize ?? 5000;
  }

  private async call<T>(method: string, path: string, runId: string | null, body?: unknown, query?: Record<string, string | number | undefined>, allowMissing = false): Promise<{ status: number; data: T | null }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const url = `${this.opts.baseUrl}${path}${qs.size > 0 ? `?${qs}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.opts.apiKey) {
      headers['x-api-key'] = this.opts.apiKey;
      headers.authorization = `Bearer ${this.opts.apiKey}`;
    }
    if (runId !== null) headers['x-run-id'] = runId;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : body instanceof RawJson ? body.text : JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new ImmuneError('IMM_ERR_STORE_UNAVAILABLE', `server API at ${this.opts.baseUrl} is unreachable: ${(err as Error).message}`, { store: 'api' }, { cause: err, retryable: true });
    }
    const text = await res.text();
    const data = text === '' ? null : (JSON.parse(text) as T);
    if (res.ok || (res.status === 404 && allowMissing)) return { status: res.status, data };
    const message = (data as { error?: string } | null)?.error ?? text.slice(0, 300);
    // Outages and credential problems keep the data queued (retryable); anything else is a bug worth seeing.
    if (res.status >= 500 || res.status === 401 || res.status === 403 || res.status === 429) {
      throw new ImmuneError('IMM_ERR_STORE_UNAVAILABLE', `server API answered ${res.status} to ${method} ${path}: ${message}`, { store: 'api', status: res.status }, { retryable: true });
    }
    throw new Error(`server API refused ${method} ${path} (${res.status}): ${message}`);
  }

  /** GET; with allowMissing a 404 means "none" (null) instead of an error. */
  private async get<T>(path: string, runId: string | null, query?: Record<string, string | number | undefined>, allowMissing = false): Promise<T | null> {
    const r = await this.call<T>('GET', path, runId, undefined, query, allowMissing);
    return r.status === 404 ? null : r.data;
  }

  private async postChunks<T>(path: string, runId: string, key: string, items: readonly T[]): Promise<void> {
    for (let i = 0; i < items.length; i += this.batchSize) await this.call('POST', path, runId, { [key]: items.slice(i, i + this.batchSize) });
  }

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  async health(): Promise<StoreHealth> {
    try {
      const r = await this.call<{ status?: string; detail?: string; store?: string }>('GET', '/api/v1/health', null);
      return { ok: r.data?.status === 'healthy', kind: this.kind, detail: `server API ${this.opts.baseUrl} (${r.data?.store ?? '?'}: ${r.data?.detail ?? r.data?.status ?? ''})` };
    } catch (err) {
      return { ok: false, kind: this.kind, detail: (err as Error).message };
    }
  }

  async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
    await this.postChunks('/api/v1/vitals/batch', runId, 'vitals', batch);
  }

  async recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]> {
    if (opts.windowSeconds === undefined && opts.limit === undefined) return (await this.get<Vitals[]>('/api/v1/vitals/all', runId, { agent_id: agentId })) ?? [];
    // The seed's endpoint defaults to a 30 s window; "no window" is asked for as the whole history.
    const window = opts.windowSeconds ?? 1e12;
    return (await this.get<Vitals[]>('/api/v1/vitals/recent', runId, { agent_id: agentId, window_seconds: window, limit: opts.limit, now: opts.now })) ?? [];
  }

  async latestVitals(runId: string): Promise<Vitals[]> {
    return (await this.get<Vitals[]>('/api/v1/vitals/latest-by-agent', runId)) ?? [];
  }

  async vitalsCount(runId: string, agentId?: string): Promise<number> {
    if (agentId === undefined) return (await this.get<{ total: number }>('/api/v1/vitals/total-executions', runId))?.total ?? 0;
    return (await this.get<{ count: number }>('/api/v1/vitals/execution-count', runId, { agent_id: agentId }))?.count ?? 0;
  }

  async appendEvents(runId: string, events: readonly ImmuneEvent[]): Promise<void> {
    await this.postChunks('/api/v1/events/batch', runId, 'events', events);
  }

  async readEvents(runId: string, q: EventQuery = {}): Promise<ImmuneEvent[]> {
    if (q.types && q.types.length === 0) return [];
    return (
      (await this.get<ImmuneEvent[]>('/api/v1/events', runId, {
        after_seq: q.afterSeq,
        before_seq: q.beforeSeq,
        agent_id: q.agentId,
        types: q.types?.join(','),
        since: q.sinceTs,
        until: q.untilTs,
        limit: q.limit,
        order: q.order,
      })) ?? []
    );
  }

  async saveSnapshot(runId: string, snapshot: EngineSnapshot, encoded?: Buffer): Promise<void> {
    await this.call('PUT', '/api/v1/snapshot', runId, encoded === undefined ? snapshot : new RawJson(encoded));
  }

  async loadSnapshot(runId: string): Promise<EngineSnapshot | null> {
    return this.get<EngineSnapshot>('/api/v1/snapshot', runId, undefined, true);
  }

  async upsertAgent(runId: string, agent: RegisteredAgent): Promise<void> {
    await this.call('POST', '/api/v1/agents', runId, agent);
  }

  async agents(runId: string): Promise<RegisteredAgent[]> {
    return (await this.get<RegisteredAgent[]>('/api/v1/agents', runId)) ?? [];
  }

  async appendRecords(runId: string, records: readonly SeedRecord[]): Promise<void> {
    await this.postChunks('/api/v1/records/batch', runId, 'records', records);
  }

  async readRecords(runId: string, q: { measurement: SeedMeasurement; agentId?: string; limit?: number }): Promise<SeedRecord[]> {
    return (await this.get<SeedRecord[]>('/api/v1/records', runId, { measurement: q.measurement, agent_id: q.agentId, limit: q.limit })) ?? [];
  }

  async registerRun(runId: string): Promise<void> {
    await this.call('POST', '/api/v1/runs', runId, { run_id: runId });
  }

  async latestRun(): Promise<string | null> {
    return (await this.get<{ run_id: string | null }>('/api/v1/runs/latest', null))?.run_id ?? null;
  }

  async pruneVitals(olderThanTs: number): Promise<number> {
    const r = await this.call<{ deleted: number }>('POST', '/api/v1/prune', null, { older_than: olderThanTs });
    return r.data?.deleted ?? 0;
  }
}
