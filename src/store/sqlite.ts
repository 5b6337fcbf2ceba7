import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ImmuneError } from '../domain/errors.js';
import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';
import type { Logger } from '../log.js';
import { spawnWorker } from '../spawn-worker.js';
import { configure, eventFromRow, packVitals, migrate, rowToVitals, type VitalsRow, type WriteOp } from './sqlite-schema.js';
import { segmentReader } from './sqlite-segments.js';
import { readSnapshotText } from './sqlite-snapshots.js';
import type { CheckpointerReport } from './sqlite-checkpointer.js';
import type { WriterReply, WriterRequest } from './sqlite-writer.js';
import type { EventQuery, RegisteredAgent, SeedMeasurement, SeedRecord, Store, StoreHealth } from './store.js';

export interface SqliteStoreOptions {
  /** The database file (default: immune.sqlite under IMMUNE_CACHE_DIR). */
  path: string;
  log?: Logger;
  /** Epoch seconds, for windows relative to now. */
  now?: () => number;
  /** SQLITE_SYNCHRONOUS: 'normal' survives process crashes, 'full' also power loss (slower acknowledgements). */
  sync?: 'normal' | 'full';
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** SQLite error codes that mean "try again later" (disk full, locked, I/O trouble), not a bug. */
const RETRYABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|NOMEM|READONLY|PROTOCOL)/;
/** Codes that mean the file is not a usable database. */
const CORRUPT = /^SQLITE_(CORRUPT|NOTADB)/;

/**
 * A checkpointer thread that stopped on its own (its connection could not open the file, say) is started
 * again with the vitals written CHECKPOINTER_RESTART_MS later at the earliest, not with the next batch:
 * a thread that cannot start would otherwise be booted (and warn) hundreds of times a second under ingest.
 * The wait doubles with each stop in a row up to the cap, and starts over once a thread has lived that long.
 * Each stop is one warning, with its reason and the wait. Meanwhile nothing is lost: the writer's own
 * automatic checkpoint (64 MB of WAL) keeps the WAL bounded, at the cost of a commit stalling now and then.
 */
const CHECKPOINTER_RESTART_MS = 30_000;
const CHECKPOINTER_RESTART_CAP_MS = 600_000;

function storeError(err: unknown, what: string): Error {
  const code = (err as { code?: string }).code ?? '';
  if (err instanceof ImmuneError) return err;
  if (RETRYABLE.test(code)) return new ImmuneError('IMM_ERR_STORE_UNAVAILABLE', `sqlite: ${what} failed: ${(err as Error).message}`, { store: 'sqlite' }, { cause: err, retryable: true });
  return new Error(`sqlite: ${what} failed: ${(err as Error).message}`, { cause: err });
}

/**
 * The default store: one SQLite file in WAL mode. Reads run on this thread
 * (short indexed queries); every write goes to a worker thread that groups
 * concurrent writes into one transaction (group commit), so durable ingest
 * runs at >100k vitals/s without blocking the event loop.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  /** Problems found while opening (a corrupt file moved aside), for the health detail and the log. */
  readonly warnings: string[] = [];
  private db: Database.Database | null = null;
  private worker: Worker | null = null;
  /** Checkpoints the WAL off the writer's thread (sqlite-checkpointer.ts); started with the first vitals. */
  private checkpointer: Worker | null = null;
  /** Not before (performance.now()) may a checkpointer that stopped on its own be started again; and the wait after the next stop. */
  private checkpointerAfter = 0;
  private checkpointerWait = CHECKPOINTER_RESTART_MS;
  private ready: Promise<void> | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void }>();
  private readonly runIds = new Map<string, number>();
  private readonly now: () => number;
  private closed = false;
  /** close() has begun (closed is set only once it is done). */
  private closing = false;
  /** Why the last checkpointer thread stopped on its own (health() says so until one is started again). */
  private checkpointerDown: string | null = null;
  private segmentQueries: ReturnType<typeof segmentReader> | null = null;

  constructor(private readonly opts: SqliteStoreOptions) {
    this.now = opts.now ?? (() => Date.now() / 1000);
  }

  get path(): string {
    return this.opts.path;
  }

  async open(): Promise<void> {
    mkdirSync(dirname(this.opts.path), { recursive: true, mode: 0o700 });
    try {
      this.db = this.openFile();
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!CORRUPT.test(code)) throw storeError(err, `opening ${this.opts.path}`);
      // Start anyway with an empty database; the damaged file is kept for forensics, not deleted.
      const aside = `${this.opts.path}.corrupt-${Date.now()}`;
      for (const suffix of ['', '-wal', '-shm']) if (existsSync(this.opts.path + suffix)) renameSync(this.opts.path + suffix, aside + suffix);
      const msg = `database ${this.opts.path} is corrupt (${code}); moved to ${aside} and started with an empty database`;
      this.warnings.push(msg);
      this.opts.log?.error({ err, path: this.opts.path, moved_to: aside }, msg);
      this.db = this.openFile();
    }
    this.closed = false;
    this.closing = false;
    // Not awaited: reads work without the writer, so a restart is not held up by the worker booting; writes wait for it.
    this.startWorker().catch((err: unknown) => this.opts.log?.error({ err }, 'sqlite writer could not start'));
  }

  private openFile(): Database.Database {
    const db = new Database(this.opts.path);
    try {
      configure(db, this.opts.sync ?? 'normal');
      migrate(db);
      db.prepare('SELECT count(*) FROM runs').get();
      return db;
    } catch (err) {
      db.close();
      if (err instanceof Error && /newer than this build/.test(err.message)) {
        throw new ImmuneError('IMM_ERR_CONFIG', `${this.opts.path}: ${err.message}; use the newer build or point IMMUNE_CACHE_DIR elsewhere`, { path: this.opts.path });
      }
      throw err;
    }
  }

  private startWorker(): Promise<void> {
    const worker = spawnWorker(import.meta.url, 'sqlite-writer', { path: this.opts.path, sync: this.opts.sync ?? 'normal' });
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: WriterReply) => {
        if (m.t === 'ready') resolve();
        else if (m.t === 'fatal') reject(new ImmuneError('IMM_ERR_STORE_UNAVAILABLE', `sqlite writer could not open the database: ${m.message}`, {}, { retryable: true }));
        else this.settle(m);
      });
      worker.on('error', (err) => {
        this.opts.log?.error({ err }, 'sqlite writer failed');
        reject(err);
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        const err = new ImmuneError('IMM_ERR_STORE_UNAVAILABLE', `sqlite writer stopped (exit ${code})`, { store: 'sqlite' }, { retryable: true });
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        reject(err);
      });
    });
    return this.ready;
  }

  private startCheckpointer(): void {
    const w = spawnWorker(import.meta.url, 'sqlite-checkpointer', { path: this.opts.path, sync: this.opts.sync ?? 'normal' });
    const started = performance.now();
    let stop: { code?: string; message: string } | undefined;
    this.checkpointer = w;
    this.checkpointerDown = null;
    w.on('message', (m: CheckpointerReport) => {
      if (m.t === 'warn') this.opts.log?.warn({ path: this.opts.path, code: m.code, reason: m.message }, 'sqlite WAL checkpoint failed; retrying. No data is lost: meanwhile the writer checkpoints the WAL itself at 64 MB');
      else if (m.t === 'fatal') stop = m;
    });
    w.on('error', (err: Error & { code?: string }) => (stop ??= { code: err.code, message: err.message ?? String(err) }));
    w.on('exit', (exitCode) => {
      if (this.checkpointer !== w) return; // stopped by close() (stopCheckpointer)
      this.checkpointer = null;
      const now = performance.now();
      if (now - started >= CHECKPOINTER_RESTART_CAP_MS) this.checkpointerWait = CHECKPOINTER_RESTART_MS;
      const wait = this.checkpointerWait;
      this.checkpointerAfter = now + wait;
      this.checkpointerWait = Math.min(2 * wait, CHECKPOINTER_RESTART_CAP_MS);
      this.checkpointerDown = `WAL checkpointer stopped (${[stop?.code, stop?.message ?? `exit ${exitCode}`].filter(Boolean).join(': ')}), restarted with the vitals written ${wait / 1000} s later; meanwhile the writer checkpoints at 64 MB`;
      this.opts.log?.warn(
        { path: this.opts.path, code: stop?.code, reason: stop?.message ?? `exit ${exitCode}`, restart_in_s: wait / 1000 },
        'sqlite WAL checkpointer stopped; restarted with the first vitals after restart_in_s seconds. No data is lost: meanwhile the writer checkpoints the WAL itself at 64 MB (a commit stalls now and then)',
      );
    });
    w.unref();
  }

  private async stopCheckpointer(): Promise<void> {
    const w = this.checkpointer;
    if (!w) return;
    this.checkpointer = null; // its exit is not a stop to restart after
    const exited = new Promise((r) => w.once('exit', r));
    w.postMessage({ t: 'close' });
    // A checkpoint in progress finishes first (it is not interrupted); a thread that does not answer is ended.
    const late = setTimeout(() => void w.terminate(), 5000);
    await exited;
    clearTimeout(late);
  }

  private settle(m: Exclude<WriterReply, { t: 'ready' } | { t: 'fatal' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.t === 'ack') p.resolve(m.n ?? 0);
    else p.reject(storeError(Object.assign(new Error(m.message), { code: m.sqliteCode }), 'write'));
  }

  private async send(req: DistributiveOmit<WriterRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<number> {
    if (this.closed) throw new Error('sqlite store is closed');
    // A writer that died (out of memory, killed) is restarted on the next write.
    if (!this.worker) await this.startWorker();
    await this.ready;
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ ...req, id }, transfer);
    });
  }

  private write(ops: WriteOp[]): Promise<number> {
    return this.send({ t: 'write', ops: JSON.stringify(ops) });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // From here on no write starts a checkpointer: one started while the writer closes would outlive the store.
    this.closing = true;
    await this.stopCheckpointer();
    if (this.worker) {
      const w = this.worker;
      await this.send({ t: 'close' }).catch(() => undefined);
      await w.terminate().catch(() => undefined);
      this.worker = null;
    }
    this.closed = true;
    this.db?.close();
    this.db = null;
    this.segmentQueries = null;
    this.runIds.clear();
  }

  async health(): Promise<StoreHealth> {
    try {
      this.conn().prepare('SELECT 1').get();
      const notes = this.checkpointerDown ? [...this.warnings, this.checkpointerDown] : this.warnings;
      const note = notes.length > 0 ? `; ${notes.join('; ')}` : '';
      return { ok: this.worker !== null, kind: this.kind, detail: `sqlite ${this.opts.path}${this.worker ? '' : ' (writer not running)'}${note}` };
    } catch (err) {
      return { ok: false, kind: this.kind, detail: `sqlite ${this.opts.path}: ${(err as Error).message}` };
    }
  }

  private conn(): Database.Database {
    if (!this.db) throw new Error('sqlite store is not open');
    return this.db;
  }

  /** The interned id of a run, or null when nothing was ever written to it. */
  private runKey(runId: string): number | null {
    const cached = this.runIds.get(runId);
    if (cached !== undefined) return cached;
    const row = this.conn().prepare<[string], { id: number }>('SELECT id FROM runs WHERE run_id = ?').get(runId);
    if (row) this.runIds.set(runId, row.id);
    return row?.id ?? null;
  }

  /** The interned id of a (run, agent) pair, or null when the agent never reported in that run. */
  private seriesKey(runId: string, agentId: string): number | null {
    const run = this.runKey(runId);
    if (run === null) return null;
    return this.read('series', (db) => db.prepare<[number, string], number>('SELECT id FROM series WHERE run = ? AND agent_id = ?').pluck().get(run, agentId) ?? null);
  }

  private segments(): ReturnType<typeof segmentReader> {
    this.segmentQueries ??= segmentReader(this.conn());
    return this.segmentQueries;
  }

  private read<T>(what: string, f: (db: Database.Database) => T): T {
    try {
      return f(this.conn());
    } catch (err) {
      throw storeError(err, what);
    }
  }

  // ───────────────────────────── vitals ─────────────────────────────

  async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
    if (batch.length > 0) {
      if (!this.checkpointer && !this.closing && performance.now() >= this.checkpointerAfter) this.startCheckpointer();
      const packed = packVitals(batch);
      await this.send({ t: 'vitals', run: runId, packed }, [packed.nums.buffer as ArrayBuffer]);
    }
  }

  async recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]> {
    const series = this.seriesKey(runId, agentId);
    if (series === null) return [];
    const cutoff = opts.windowSeconds === undefined ? -Infinity : (opts.now ?? this.now()) - opts.windowSeconds;
    const rows = this.read('recent vitals', () => this.segments().recent(agentId, series, cutoff, opts.limit ?? Infinity));
    return rows.reverse().map(rowToVitals);
  }

  async latestVitals(runId: string): Promise<Vitals[]> {
    const run = this.runKey(runId);
    if (run === null) return [];
    return this.read('latest vitals', (db) => {
      const agentOf = new Map(db.prepare<[number], { id: number; agent_id: string }>('SELECT id, agent_id FROM series WHERE run = ?').all(run).map((r) => [r.id, r.agent_id]));
      return this.segments().latest(agentOf).map(rowToVitals);
    });
  }

  async vitalsCount(runId: string, agentId?: string): Promise<number> {
    if (agentId !== undefined) {
      const series = this.seriesKey(runId, agentId);
      return series === null ? 0 : this.read('vitals count', () => this.segments().count(series));
    }
    const run = this.runKey(runId);
    if (run === null) return 0;
    return this.read('vitals count', () => this.segments().countRun(run));
  }

  async pruneVitals(olderThanTs: number): Promise<number> {
    return this.send({ t: 'prune', olderThan: olderThanTs, chunk: 5000 });
  }

  // ───────────────────────────── events ─────────────────────────────

  async appendEvents(runId: string, events: readonly ImmuneEvent[]): Promise<void> {
    if (events.length > 0) await this.write([{ k: 'events', run: runId, events }]);
  }

  async readEvents(runId: string, q: EventQuery = {}): Promise<ImmuneEvent[]> {
    const run = this.runKey(runId);
    if (run === null) return [];
    const where = ['run = ?'];
    const params: unknown[] = [run];
    const add = (cond: string, ...values: unknown[]) => {
      where.push(cond);
      params.push(...values);
    };
    if (q.afterSeq !== undefined) add('seq > ?', q.afterSeq);
    if (q.beforeSeq !== undefined) add('seq < ?', q.beforeSeq);
    if (q.agentId !== undefined) add('agent_id = ?', q.agentId);
    if (q.types) add(`type IN (${q.types.map(() => '?').join(', ') || 'NULL'})`, ...q.types);
    if (q.sinceTs !== undefined) add('ts >= ?', q.sinceTs);
    if (q.untilTs !== undefined) add('ts <= ?', q.untilTs);
    const sql = `SELECT data FROM events WHERE ${where.join(' AND ')} ORDER BY seq ${q.order === 'desc' ? 'DESC' : 'ASC'} LIMIT ?`;
    params.push(q.limit ?? -1);
    return this.read('read events', (db) => db.prepare<unknown[], { data: string }>(sql).all(...params)).map(eventFromRow);
  }

  // ───────────────────────────── snapshot, agents, records, runs ─────────────────────────────

  async saveSnapshot(runId: string, snapshot: EngineSnapshot, encoded?: Buffer): Promise<void> {
    // Its own message, as bytes the writer stores in parts (sqlite-snapshots.ts): a fleet's snapshot is megabytes of JSON.
    await this.send({ t: 'snapshot', run: runId, seq: snapshot.seq, data: encoded ?? Buffer.from(JSON.stringify(snapshot)) });
  }

  async loadSnapshot(runId: string): Promise<EngineSnapshot | null> {
    const run = this.runKey(runId);
    if (run === null) return null;
    // One read transaction: the pointer and the parts it names are seen at the same commit.
    const text = this.read('load snapshot', (db) =>
      db.transaction(() => {
        const row = db.prepare<[number], { data: string }>('SELECT data FROM snapshots WHERE run = ?').get(run);
        return row ? readSnapshotText(db, row.data) : null;
      })(),
    );
    return text === null ? null : (JSON.parse(text) as EngineSnapshot);
  }

  async upsertAgent(runId: string, agent: RegisteredAgent): Promise<void> {
    await this.write([{ k: 'agent', run: runId, agent_id: agent.agent_id, meta: JSON.stringify(agent.meta) }]);
  }

  async agents(runId: string): Promise<RegisteredAgent[]> {
    const run = this.runKey(runId);
    if (run === null) return [];
    return this.read('agents', (db) => db.prepare<[number], { agent_id: string; meta: string }>('SELECT agent_id, meta FROM agents WHERE run = ? ORDER BY agent_id').all(run)).map((r) => ({
      agent_id: r.agent_id,
      meta: JSON.parse(r.meta) as RegisteredAgent['meta'],
    }));
  }

  async appendRecords(runId: string, records: readonly SeedRecord[]): Promise<void> {
    if (records.length > 0) await this.write([{ k: 'records', run: runId, records }]);
  }

  async readRecords(runId: string, q: { measurement: SeedMeasurement; agentId?: string; limit?: number }): Promise<SeedRecord[]> {
    const run = this.runKey(runId);
    if (run === null) return [];
    const agentCond = q.agentId === undefined ? '' : ' AND agent_id = ?';
    const params: unknown[] = q.agentId === undefined ? [run, q.measurement] : [run, q.measurement, q.agentId];
    const rows = this.read('read records', (db) =>
      db
        .prepare<unknown[], { agent_id: string; ts: number; fields: string }>(`SELECT agent_id, ts, fields FROM records WHERE run = ? AND measurement = ?${agentCond} ORDER BY ts DESC, id DESC LIMIT ?`)
        .all(...params, q.limit ?? -1),
    );
    return rows.reverse().map((r) => ({ measurement: q.measurement, agent_id: r.agent_id, ts: r.ts, fields: JSON.parse(r.fields) as Record<string, unknown> }));
  }

  async registerRun(runId: string): Promise<void> {
    await this.write([{ k: 'touch', run: runId }]);
  }

  async latestRun(): Promise<string | null> {
    return this.read('latest run', (db) => db.prepare<[], { run_id: string }>('SELECT run_id FROM runs ORDER BY touched DESC, id DESC LIMIT 1').get()?.run_id ?? null);
  }
}
