import { ImmuneError } from '../domain/errors.js';
import type { AgentMeta, ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';
import type { Logger } from '../log.js';
import { filterEvents } from './event-query.js';
import { encodePoint, escKey, escString, fieldValue, qlIdent, qlString, qlTimeUs, type FieldValue } from './line-protocol.js';
import { newSeedContext, seedBaselineProfile, seedRowsForEvent } from './seed-views.js';
import type { EventQuery, RegisteredAgent, SeedMeasurement, SeedRecord, Store, StoreHealth } from './store.js';

export interface InfluxStoreOptions {
  url: string;
  /** 2.x/3.x token, or "user:password" for 1.x (sent as Basic auth). */
  token?: string;
  /** Database (1.x) or bucket (2.x/3.x, reached through the v1 compatibility API). */
  database: string;
  log?: Logger;
  /** Per-request timeout, ms. */
  timeoutMs?: number;
  /** Lines per write request. */
  linesPerWrite?: number;
  now?: () => number;
}

/** Internal measurements next to the seed's ones (agent_vitals, baseline_profile, infection_event, …). */
const M = { vitals: 'agent_vitals', events: 'immune_event', run: 'immune_run', snapshot: 'engine_snapshot', profile: 'baseline_profile', agents: 'agent_registry' } as const;

type Row = Record<string, unknown>;
interface Series {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/**
 * One agent_vitals point, written out directly (the hot path: no intermediate
 * objects). Numbers are floats, success an integer, as in the seed's schema;
 * `timestamp` keeps the exact sample time next to the µs point key.
 */
function vitalsLine(runId: string, v: Vitals, us: number): string {
  const f = (x: number) => fieldValue(x);
  return (
    `agent_vitals,agent_id=${escKey(v.agent_id)},run_id=${escKey(runId)} ` +
    `timestamp=${f(v.timestamp)},latency_ms=${f(v.latency_ms)},input_tokens=${f(v.input_tokens)},output_tokens=${f(v.output_tokens)},token_count=${f(v.token_count)},cost=${f(v.cost)},tool_calls=${f(v.tool_calls)},retries=${f(v.retries)},success=${v.success ? 1 : 0}i,` +
    `agent_type=${escString(v.agent_type)},model=${escString(v.model)},provider=${escString(v.provider)},error_type=${escString(v.error_type)},prompt_hash=${escString(v.prompt_hash)},` +
    `mcp_servers=${escString(JSON.stringify(v.mcp_servers))},tool_names=${escString(JSON.stringify(v.tool_names))} ${us}`
  );
}

/**
 * InfluxDB through the HTTP API that 1.x, 2.x (v1 compatibility) and 3.x all
 * serve: line-protocol writes to /write and InfluxQL reads from /query.
 *
 * Time keys, chosen so nothing is silently overwritten (InfluxDB keeps one
 * point per series and timestamp): vitals use the sample time in µs, bumped
 * by 1 µs when an agent reports twice in the same µs; events use run-start +
 * seq µs, so order is seq order and a re-sent event overwrites itself.
 */
export class InfluxStore implements Store {
  readonly kind = 'influx' as const;
  private readonly timeoutMs: number;
  private readonly linesPerWrite: number;
  private readonly now: () => number;
  private dbReady = false;
  /** Last µs used per run+agent, so two samples in the same µs both survive. */
  private readonly lastVitalUs = new Map<string, number>();
  /** Start of each run in µs: the time base of its events. */
  private readonly runBase = new Map<string, number>();
  private lastTouched: { run: string; at: number } | null = null;
  private clockUs = 0;
  private readonly seedCtx = new Map<string, ReturnType<typeof newSeedContext>>();

  constructor(private readonly opts: InfluxStoreOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.linesPerWrite = opts.linesPerWrite ?? 5000;
    this.now = opts.now ?? (() => Date.now() / 1000);
  }

  // ───────────────────────────── HTTP ─────────────────────────────

  private headers(): Record<string, string> {
    const t = this.opts.token ?? '';
    if (t === '') return {};
    return { authorization: t.includes(':') ? `Basic ${Buffer.from(t).toString('base64')}` : `Token ${t}` };
  }

  private async http(path: string, init: RequestInit, what: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.opts.url}${path}`, { ...init, headers: { ...this.headers(), ...(init.headers as Record<string, string>) }, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new ImmuneError('IMM_ERR_STORE_UNAVAILABLE', `InfluxDB at ${this.opts.url} is unreachable (${what}): ${(err as Error).message}`, { store: 'influx' }, { cause: err, retryable: true });
    }
    if (res.ok) return res;
    const body = (await res.text().catch(() => '')).slice(0, 500);
    // Credentials can be fixed without losing data: keep queuing instead of dropping.
    if (res.status >= 500 || res.status === 401 || res.status === 403 || res.status === 429) {
      throw new ImmuneError('IMM_ERR_STORE_UNAVAILABLE', `InfluxDB answered ${res.status} to ${what}: ${body}`, { store: 'influx', status: res.status }, { retryable: true });
    }
    throw new Error(`InfluxDB refused ${what} (${res.status}): ${body}`);
  }

  private async writeLines(lines: string[]): Promise<void> {
    await this.ensureDatabase();
    for (let i = 0; i < lines.length; i += this.linesPerWrite) {
      const body = lines.slice(i, i + this.linesPerWrite).join('\n');
      await this.http(`/write?db=${encodeURIComponent(this.opts.database)}&precision=u`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' } }, 'a write');
    }
  }

  /** Runs one InfluxQL statement; returns its series (chunked responses are merged). */
  private async query(q: string): Promise<Series[]> {
    await this.ensureDatabase();
    const params = new URLSearchParams({ db: this.opts.database, q, epoch: 'u', chunked: 'true', chunk_size: '10000' });
    const res = await this.http('/query', { method: 'POST', body: params, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 'a query');
    const text = await res.text();
    const merged = new Map<string, Series>();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const doc = JSON.parse(line) as { results?: Array<{ error?: string; series?: Series[] }>; error?: string };
      if (doc.error) throw new Error(`InfluxDB query failed: ${doc.error}`);
      for (const r of doc.results ?? []) {
        if (r.error) {
          if (/database not found/.test(r.error)) return [];
          throw new Error(`InfluxDB query failed: ${r.error} (${q})`);
        }
        for (const s of r.series ?? []) {
          const key = `${s.name}\u0000${JSON.stringify(s.tags ?? {})}`;
          const m = merged.get(key);
          if (m) m.values.push(...s.values);
          else merged.set(key, { ...s, values: [...s.values] });
        }
      }
    }
    return [...merged.values()];
  }

  private async rows(q: string): Promise<Row[]> {
    const out: Row[] = [];
    for (const s of await this.query(q)) {
      for (const v of s.values) {
        const r: Row = { ...s.tags };
        s.columns.forEach((c, i) => (r[c] = v[i]));
        out.push(r);
      }
    }
    return out;
  }

  /** Creates the database on 1.x; 2.x/3.x refuse the statement (the bucket must exist there), which is fine. */
  private async ensureDatabase(): Promise<void> {
    if (this.dbReady) return;
    const params = new URLSearchParams({ q: `CREATE DATABASE ${qlIdent(this.opts.database)}` });
    try {
      await this.http('/query', { method: 'POST', body: params, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 'CREATE DATABASE');
    } catch (err) {
      // Unreachable or bad credentials: report. Forbidden (a user allowed to write but not to create databases): carry on.
      if (err instanceof ImmuneError && err.retryable && err.details.status !== 403) throw err;
      this.opts.log?.debug({ err }, 'CREATE DATABASE refused; assuming the database exists');
    }
    this.dbReady = true;
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  async open(): Promise<void> {
    await this.ensureDatabase();
  }

  async close(): Promise<void> {}

  async health(): Promise<StoreHealth> {
    try {
      const res = await this.http('/ping', { method: 'GET' }, 'ping');
      const version = res.headers.get('x-influxdb-version') ?? 'unknown version';
      // /ping needs no credentials: one authenticated read tells whether the token works.
      await this.query('SHOW MEASUREMENTS LIMIT 1');
      return { ok: true, kind: this.kind, detail: `InfluxDB ${version} at ${this.opts.url}, database ${this.opts.database}` };
    } catch (err) {
      return { ok: false, kind: this.kind, detail: (err as Error).message };
    }
  }

  /** Strictly increasing µs for points this process creates (runs, snapshots, registrations). */
  private tick(): number {
    this.clockUs = Math.max(this.clockUs + 1, Math.round(this.now() * 1e6));
    return this.clockUs;
  }

  private runLine(runId: string): string {
    this.lastTouched = { run: runId, at: this.now() };
    return encodePoint({ measurement: M.run, tags: { run_id: runId }, fields: { active: { int: 1 } }, timeUs: this.tick() });
  }

  /** A run marker is written with the data when the run changes or every 5 s, so latestRun stays cheap and right. */
  private touchLines(runId: string): string[] {
    const t = this.lastTouched;
    return !t || t.run !== runId || this.now() - t.at > 5 ? [this.runLine(runId)] : [];
  }

  private async base(runId: string): Promise<number> {
    let b = this.runBase.get(runId);
    if (b !== undefined) return b;
    const found = await this.rows(`SELECT first(active) FROM ${qlIdent(M.run)} WHERE run_id = ${qlString(runId)}`);
    if (found.length > 0) b = found[0].time as number;
    else {
      const line = this.runLine(runId);
      await this.writeLines([line]);
      b = Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    this.runBase.set(runId, b);
    return b;
  }

  // ───────────────────────────── vitals ─────────────────────────────

  async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
    if (batch.length === 0) return;
    const lines = this.touchLines(runId);
    for (const v of batch) {
      const key = `${runId}\u0000${v.agent_id}`;
      let us = Math.round(v.timestamp * 1e6);
      const last = this.lastVitalUs.get(key);
      if (last !== undefined && us <= last && last - us < 1000) us = last + 1;
      this.lastVitalUs.set(key, Math.max(us, last ?? us));
      lines.push(vitalsLine(runId, v, us));
    }
    await this.writeLines(lines);
  }

  private toVitals(r: Row): Vitals {
    const s = (k: string) => (typeof r[k] === 'string' ? (r[k] as string) : '');
    const n = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : 0);
    const list = (k: string) => (typeof r[k] === 'string' && r[k] !== '' ? (JSON.parse(r[k] as string) as string[]) : []);
    return {
      agent_id: s('agent_id'),
      agent_type: s('agent_type'),
      timestamp: typeof r.timestamp === 'number' ? r.timestamp : (r.time as number) / 1e6,
      latency_ms: n('latency_ms'),
      input_tokens: n('input_tokens'),
      output_tokens: n('output_tokens'),
      token_count: n('token_count'),
      cost: n('cost'),
      tool_calls: n('tool_calls'),
      retries: n('retries'),
      success: r.success === 1,
      model: s('model'),
      provider: s('provider'),
      error_type: s('error_type'),
      prompt_hash: s('prompt_hash'),
      mcp_servers: list('mcp_servers'),
      tool_names: list('tool_names'),
    };
  }

  async recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]> {
    const cutoff = opts.windowSeconds === undefined ? undefined : (opts.now ?? this.now()) - opts.windowSeconds;
    const where = [`run_id = ${qlString(runId)}`, `agent_id = ${qlString(agentId)}`];
    // A window reaching before 1970 (callers ask for "everything" that way) needs no time condition; InfluxDB times are int64 ns.
    if (cutoff !== undefined && cutoff > 0) where.push(`time >= ${qlTimeUs(Math.max(0, cutoff * 1e6 - 1000))}`);
    const limit = opts.limit !== undefined ? ` LIMIT ${Math.floor(opts.limit) + 8}` : '';
    const rows = await this.rows(`SELECT * FROM ${qlIdent(M.vitals)} WHERE ${where.join(' AND ')} ORDER BY time DESC${limit}`);
    // The µs key can differ from the exact timestamp field by a few µs: the field decides.
    let list = rows.map((r) => this.toVitals(r)).filter((v) => cutoff === undefined || v.timestamp >= cutoff);
    list.sort((a, b) => a.timestamp - b.timestamp);
    if (opts.limit !== undefined) list = list.slice(Math.max(0, list.length - opts.limit));
    return list;
  }

  async latestVitals(runId: string): Promise<Vitals[]> {
    const rows = await this.rows(`SELECT * FROM ${qlIdent(M.vitals)} WHERE run_id = ${qlString(runId)} GROUP BY agent_id ORDER BY time DESC LIMIT 1`);
    return rows.map((r) => this.toVitals(r));
  }

  async vitalsCount(runId: string, agentId?: string): Promise<number> {
    const agent = agentId === undefined ? '' : ` AND agent_id = ${qlString(agentId)}`;
    const rows = await this.rows(`SELECT count(latency_ms) FROM ${qlIdent(M.vitals)} WHERE run_id = ${qlString(runId)}${agent}`);
    return rows.length > 0 ? Number(rows[0].count) : 0;
  }

  /** 1.x deletes by time; 2.x and 3.x refuse DELETE over InfluxQL (use the bucket's retention period there). */
  async pruneVitals(olderThanTs: number): Promise<number> {
    const before = `time < ${qlTimeUs(olderThanTs * 1e6)}`;
    const counted = await this.rows(`SELECT count(latency_ms) FROM ${qlIdent(M.vitals)} WHERE ${before}`);
    const n = counted.length > 0 ? Number(counted[0].count) : 0;
    if (n === 0) return 0;
    await this.query(`DELETE FROM ${qlIdent(M.vitals)} WHERE ${before}`);
    return n;
  }

  // ───────────────────────────── events ─────────────────────────────

  async appendEvents(runId: string, events: readonly ImmuneEvent[]): Promise<void> {
    if (events.length === 0) return;
    const base = await this.base(runId);
    const lines = this.touchLines(runId);
    let ctx = this.seedCtx.get(runId);
    if (!ctx) this.seedCtx.set(runId, (ctx = newSeedContext()));
    for (const e of events) {
      lines.push(encodePoint({ measurement: M.events, tags: { run_id: runId, agent_id: e.agent_id, type: e.type }, fields: { seq: { int: e.seq }, ts: e.ts, data: JSON.stringify(e) }, timeUs: base + e.seq }));
      // The seed's measurements, derived for dashboards and seed tooling (source=event); immune_event stays the truth.
      for (const r of seedRowsForEvent(e, ctx)) lines.push(this.seedLine(runId, r, 'event', e.seq));
    }
    await this.writeLines(lines);
  }

  private seedLine(runId: string, r: SeedRecord, source: 'event' | 'seed', seq?: number): string {
    const fields: Record<string, FieldValue | null> = { record: JSON.stringify(r.fields), ts: r.ts };
    if (seq !== undefined) fields.seq = { int: seq };
    for (const [k, v] of Object.entries(r.fields)) {
      // Flat scalar copies for Grafana; derived rows only, whose types we control (a field's type is fixed on first write).
      if (source !== 'event' || k === 'record' || k === 'ts' || k === 'seq') continue;
      if (typeof v === 'number' && Number.isFinite(v)) fields[k] = v;
      else if (typeof v === 'boolean') fields[k] = { int: v ? 1 : 0 };
      else if (typeof v === 'string') fields[k] = v;
      else if (v !== null && v !== undefined) fields[`${k}_json`] = JSON.stringify(v);
    }
    const tags: Record<string, string> = { run_id: runId, agent_id: r.agent_id, source };
    if (r.measurement === 'action_log' && typeof r.fields.type === 'string' && /^[a-z_]+$/.test(r.fields.type)) tags.type = r.fields.type;
    return encodePoint({ measurement: r.measurement, tags, fields, timeUs: source === 'event' ? Math.round(r.ts * 1e6) + ((seq ?? 0) % 1000) : this.tick() });
  }

  async readEvents(runId: string, q: EventQuery = {}): Promise<ImmuneEvent[]> {
    if (q.types && q.types.length === 0) return [];
    const base = await this.baseIfKnown(runId);
    if (base === null) return [];
    const where = [`run_id = ${qlString(runId)}`];
    if (q.afterSeq !== undefined) where.push(`time > ${qlTimeUs(base + q.afterSeq)}`);
    if (q.beforeSeq !== undefined) where.push(`time < ${qlTimeUs(base + q.beforeSeq)}`);
    if (q.agentId !== undefined) where.push(`agent_id = ${qlString(q.agentId)}`);
    if (q.types) where.push(`(${q.types.map((t) => `"type" = ${qlString(t)}`).join(' OR ')})`);
    if (q.sinceTs !== undefined) where.push(`ts >= ${q.sinceTs}`);
    if (q.untilTs !== undefined) where.push(`ts <= ${q.untilTs}`);
    const limit = q.limit !== undefined ? ` LIMIT ${Math.floor(q.limit)}` : '';
    const rows = await this.rows(`SELECT data FROM ${qlIdent(M.events)} WHERE ${where.join(' AND ')} ORDER BY time ${q.order === 'desc' ? 'DESC' : 'ASC'}${limit}`);
    return filterEvents(
      rows.map((r) => JSON.parse(r.data as string) as ImmuneEvent),
      q,
    );
  }

  private async baseIfKnown(runId: string): Promise<number | null> {
    const b = this.runBase.get(runId);
    if (b !== undefined) return b;
    const found = await this.rows(`SELECT first(active) FROM ${qlIdent(M.run)} WHERE run_id = ${qlString(runId)}`);
    if (found.length === 0) return null;
    this.runBase.set(runId, found[0].time as number);
    return found[0].time as number;
  }

  // ───────────────────────────── snapshot ─────────────────────────────

  /**
   * One point per agent in baseline_profile (the seed's fields plus the exact
   * snapshot; a string field holds at most 64 KB, so one blob per run would not
   * fit), then the engine_snapshot marker that makes the generation current.
   */
  async saveSnapshot(runId: string, snapshot: EngineSnapshot): Promise<void> {
    const gen = this.tick();
    const lines: string[] = [];
    for (const [i, a] of snapshot.agents.entries()) {
      const profile = seedBaselineProfile(a.id, a.baseline);
      const fields: Record<string, FieldValue> = { snapshot: JSON.stringify(a), generation: { int: gen }, position: { int: i } };
      for (const [k, v] of Object.entries(profile)) if (typeof v === 'number' && Number.isFinite(v)) fields[k] = v;
      lines.push(encodePoint({ measurement: M.profile, tags: { run_id: runId, agent_id: a.id }, fields, timeUs: gen }));
    }
    await this.writeLines(lines);
    await this.writeLines([...this.touchLines(runId), encodePoint({ measurement: M.snapshot, tags: { run_id: runId }, fields: { seq: { int: snapshot.seq }, agents: { int: snapshot.agents.length } }, timeUs: gen })]);
  }

  async loadSnapshot(runId: string): Promise<EngineSnapshot | null> {
    const marker = await this.rows(`SELECT last(seq) AS seq FROM ${qlIdent(M.snapshot)} WHERE run_id = ${qlString(runId)}`);
    if (marker.length === 0) return null;
    const gen = marker[0].time as number;
    const rows = await this.rows(`SELECT snapshot, position FROM ${qlIdent(M.profile)} WHERE run_id = ${qlString(runId)} AND time = ${qlTimeUs(gen)}`);
    const agents = rows
      .filter((r) => typeof r.snapshot === 'string')
      .sort((a, b) => (a.position as number) - (b.position as number))
      .map((r) => JSON.parse(r.snapshot as string) as EngineSnapshot['agents'][number]);
    return { seq: Number(marker[0].seq), agents };
  }

  // ───────────────────────────── agents, records, runs ─────────────────────────────

  async upsertAgent(runId: string, agent: RegisteredAgent): Promise<void> {
    await this.writeLines([...this.touchLines(runId), encodePoint({ measurement: M.agents, tags: { run_id: runId, agent_id: agent.agent_id }, fields: { meta: JSON.stringify(agent.meta) }, timeUs: this.tick() })]);
  }

  async agents(runId: string): Promise<RegisteredAgent[]> {
    const rows = await this.rows(`SELECT last(meta) AS meta FROM ${qlIdent(M.agents)} WHERE run_id = ${qlString(runId)} GROUP BY agent_id`);
    return rows.map((r) => ({ agent_id: r.agent_id as string, meta: JSON.parse(r.meta as string) as AgentMeta })).sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  }

  async appendRecords(runId: string, records: readonly SeedRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.writeLines([...this.touchLines(runId), ...records.map((r) => this.seedLine(runId, r, 'seed'))]);
  }

  async readRecords(runId: string, q: { measurement: SeedMeasurement; agentId?: string; limit?: number }): Promise<SeedRecord[]> {
    const agent = q.agentId === undefined ? '' : ` AND agent_id = ${qlString(q.agentId)}`;
    const rows = await this.rows(`SELECT agent_id, ts, record FROM ${qlIdent(q.measurement)} WHERE run_id = ${qlString(runId)} AND "source" = 'seed'${agent} ORDER BY time ASC`);
    const list = rows
      .map((r) => ({ measurement: q.measurement, agent_id: r.agent_id as string, ts: r.ts as number, fields: JSON.parse(r.record as string) as Record<string, unknown> }))
      .sort((a, b) => a.ts - b.ts);
    return q.limit !== undefined ? list.slice(Math.max(0, list.length - q.limit)) : list;
  }

  async registerRun(runId: string): Promise<void> {
    await this.writeLines([this.runLine(runId)]);
  }

  async latestRun(): Promise<string | null> {
    const rows = await this.rows(`SELECT last(active) FROM ${qlIdent(M.run)} GROUP BY run_id`);
    let best: Row | null = null;
    for (const r of rows) if (!best || (r.time as number) > (best.time as number)) best = r;
    return (best?.run_id as string | undefined) ?? null;
  }
}
