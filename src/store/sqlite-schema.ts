import type Database from 'better-sqlite3';
import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import { SEGMENTS_DDL, SEGMENTS_UPGRADE_FROM_1, sealExisting, segmentWriter } from './sqlite-segments.js';
import { SNAPSHOT_PARTS_DDL } from './sqlite-snapshots.js';
import type { SeedRecord } from './store.js';

/**
 * Layout of the embedded database, shared by the reading connection (main
 * thread) and the writer worker. Each (run, agent) pair is interned as a
 * small integer "series", so vitals rows and their one index carry an
 * integer instead of two strings. Vitals are appended in arrival order and
 * indexed once per segment of consecutive rows (sqlite-segments.ts), not row
 * by row, so commits stay cheap however large the file grows.
 *
 * Version 2 added the segments; a version-1 file is upgraded in place.
 */
export const SQLITE_SCHEMA_VERSION = 2;

const DDL = `
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, touched INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, run INTEGER NOT NULL, agent_id TEXT NOT NULL, UNIQUE (run, agent_id));
CREATE TABLE IF NOT EXISTS vitals (
  id INTEGER PRIMARY KEY, series INTEGER NOT NULL, ts REAL NOT NULL, agent_type TEXT NOT NULL,
  latency_ms REAL NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, token_count INTEGER NOT NULL,
  cost REAL NOT NULL, tool_calls INTEGER NOT NULL, retries INTEGER NOT NULL, success INTEGER NOT NULL,
  model TEXT NOT NULL, provider TEXT NOT NULL, error_type TEXT NOT NULL, prompt_hash TEXT NOT NULL,
  mcp_servers TEXT NOT NULL, tool_names TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (run INTEGER NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, agent_id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_agent ON events(run, agent_id, seq);
CREATE TABLE IF NOT EXISTS snapshots (run INTEGER PRIMARY KEY, seq INTEGER NOT NULL, saved_at REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (run INTEGER NOT NULL, agent_id TEXT NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (run, agent_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, run INTEGER NOT NULL, measurement TEXT NOT NULL, agent_id TEXT NOT NULL, ts REAL NOT NULL, fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_measurement ON records(run, measurement, ts);
${SEGMENTS_DDL}${SNAPSHOT_PARTS_DDL}`;

export type SqliteSync = 'normal' | 'full';

/**
 * WAL lets the dashboard read while the writer commits. synchronous=NORMAL
 * (the default, SQLITE_SYNCHRONOUS) keeps every committed write across a crash
 * or kill -9 of the process — the WAL is in the OS page cache — and fsyncs at
 * checkpoints; FULL also survives power loss, at one fsync per grouped commit,
 * which every acknowledged ingest request waits for.
 */
export function configure(db: Database.Database, sync: SqliteSync = 'normal'): void {
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -65536'); // KiB: keeps the agent index hot during ingest
  db.pragma('wal_autocheckpoint = 16384'); // pages: fewer, larger checkpoints
  db.pragma('foreign_keys = OFF');
}

/** Creates the tables; refuses a database written by a newer version (its layout is unknown). */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new Error(`database schema version ${version} is newer than this build understands (${SQLITE_SCHEMA_VERSION})`);
  }
  db.transaction(() => {
    if (version === 1) db.exec(SEGMENTS_UPGRADE_FROM_1);
    db.exec(DDL);
    if (version === 1) sealExisting(db);
    if (version < SQLITE_SCHEMA_VERSION) db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
  })();
}

/** Insert order: the row id comes first, from segmentWriter. */
export const VITALS_COLUMNS =
  'id, series, ts, agent_type, latency_ms, input_tokens, output_tokens, token_count, cost, tool_calls, retries, success, model, provider, error_type, prompt_hash, mcp_servers, tool_names';

export interface VitalsRow {
  agent_id: string;
  series: number;
  ts: number;
  agent_type: string;
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  token_count: number;
  cost: number;
  tool_calls: number;
  retries: number;
  success: number;
  model: string;
  provider: string;
  error_type: string;
  prompt_hash: string;
  mcp_servers: string;
  tool_names: string;
}

/** Empty lists are stored as '' (one byte) rather than '[]'. */
const list = (xs: readonly string[]) => (xs.length === 0 ? '' : JSON.stringify(xs));
const unlist = (s: string): string[] => (s === '' ? [] : (JSON.parse(s) as string[]));

export function vitalsParams(id: number, series: number, v: Vitals): unknown[] {
  return [
    id,
    series,
    v.timestamp,
    v.agent_type,
    v.latency_ms,
    v.input_tokens,
    v.output_tokens,
    v.token_count,
    v.cost,
    v.tool_calls,
    v.retries,
    v.success ? 1 : 0,
    v.model,
    v.provider,
    v.error_type,
    v.prompt_hash,
    list(v.mcp_servers),
    list(v.tool_names),
  ];
}

export function rowToVitals(r: VitalsRow): Vitals {
  return {
    agent_id: r.agent_id,
    agent_type: r.agent_type,
    timestamp: r.ts,
    latency_ms: r.latency_ms,
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    token_count: r.token_count,
    cost: r.cost,
    tool_calls: r.tool_calls,
    retries: r.retries,
    success: r.success === 1,
    model: r.model,
    provider: r.provider,
    error_type: r.error_type,
    prompt_hash: r.prompt_hash,
    mcp_servers: unlist(r.mcp_servers),
    tool_names: unlist(r.tool_names),
  };
}

/** Slots per vitals row in the packed encoding (see packVitals). */
export const PACK_WIDTH = 17;
/** Slots that hold an index into the string dictionary rather than a number. */
const STRING_SLOTS = new Set([0, 2, 11, 12, 13, 14, 15, 16]);

/** A batch of vitals for the writer thread: numbers in one transferable buffer, each distinct string once. */
export interface PackedVitals {
  dict: string[];
  nums: Float64Array;
}

/**
 * Packs vitals in insert order (agent_id first, then the columns after
 * `series`). The same agent, model and prompt repeat across a batch, so a
 * string dictionary plus a Float64Array (moved, not copied, to the worker)
 * costs far less to hand over and to read than one object per record.
 */
export function packVitals(batch: readonly Vitals[]): PackedVitals {
  const dict: string[] = [];
  const index = new Map<string, number>();
  const str = (x: string): number => {
    let i = index.get(x);
    if (i === undefined) {
      i = dict.length;
      dict.push(x);
      index.set(x, i);
    }
    return i;
  };
  const nums = new Float64Array(batch.length * PACK_WIDTH);
  let i = 0;
  for (const v of batch) {
    nums[i++] = str(v.agent_id);
    nums[i++] = v.timestamp;
    nums[i++] = str(v.agent_type);
    nums[i++] = v.latency_ms;
    nums[i++] = v.input_tokens;
    nums[i++] = v.output_tokens;
    nums[i++] = v.token_count;
    nums[i++] = v.cost;
    nums[i++] = v.tool_calls;
    nums[i++] = v.retries;
    nums[i++] = v.success ? 1 : 0;
    nums[i++] = str(v.model);
    nums[i++] = str(v.provider);
    nums[i++] = str(v.error_type);
    nums[i++] = str(v.prompt_hash);
    nums[i++] = str(list(v.mcp_servers));
    nums[i++] = str(list(v.tool_names));
  }
  return { dict, nums };
}

/** One write the worker applies inside a transaction. Runs are named by run_id; the worker interns them. */
export type WriteOp =
  | { k: 'vitals'; run: string; rows: readonly Vitals[] }
  | { k: 'packed'; run: string; packed: PackedVitals }
  | { k: 'events'; run: string; events: readonly ImmuneEvent[] }
  | { k: 'agent'; run: string; agent_id: string; meta: string }
  | { k: 'records'; run: string; records: readonly SeedRecord[] }
  | { k: 'touch'; run: string };

/** Prepared statements of the writer connection. */
export function writer(db: Database.Database, now: () => number) {
  const runIds = new Map<string, number>();
  const findRun = db.prepare<[string], { id: number }>('SELECT id FROM runs WHERE run_id = ?');
  const addRun = db.prepare('INSERT INTO runs (run_id, created_at, touched) VALUES (?, ?, 0)');
  const touch = db.prepare('UPDATE runs SET touched = (SELECT coalesce(max(touched), 0) + 1 FROM runs) WHERE id = ?');
  const insVitals = db.prepare(`INSERT INTO vitals (${VITALS_COLUMNS}) VALUES (${new Array(PACK_WIDTH + 1).fill('?').join(', ')})`);
  const ids = segmentWriter(db);
  const findSeries = db.prepare<[number, string], { id: number }>('SELECT id FROM series WHERE run = ? AND agent_id = ?');
  const addSeries = db.prepare('INSERT INTO series (run, agent_id) VALUES (?, ?)');
  const seriesIds = new Map<string, number>();
  const insEvent = db.prepare('INSERT OR IGNORE INTO events (run, seq, ts, agent_id, type, data) VALUES (?, ?, ?, ?, ?, ?)');
  const putAgent = db.prepare('INSERT INTO agents (run, agent_id, meta) VALUES (?, ?, ?) ON CONFLICT(run, agent_id) DO UPDATE SET meta = excluded.meta');
  const insRecord = db.prepare('INSERT INTO records (run, measurement, agent_id, ts, fields) VALUES (?, ?, ?, ?, ?)');

  const run = (runId: string): number => {
    let id = runIds.get(runId);
    if (id === undefined) {
      id = findRun.get(runId)?.id ?? Number(addRun.run(runId, now()).lastInsertRowid);
      runIds.set(runId, id);
    }
    return id;
  };

  const seriesOf = (run: number, agentId: string): number => {
    const key = `${run}\u0000${agentId}`;
    let id = seriesIds.get(key);
    if (id === undefined) {
      id = findSeries.get(run, agentId)?.id ?? Number(addSeries.run(run, agentId).lastInsertRowid);
      seriesIds.set(key, id);
    }
    return id;
  };

  /** Applies ops in order; the caller wraps this in a transaction. */
  const apply = (ops: readonly WriteOp[]): void => {
    const touched = new Set<number>();
    for (const op of ops) {
      const r = run(op.run);
      touched.add(r);
      switch (op.k) {
        case 'vitals':
          for (const v of op.rows) insVitals.run(vitalsParams(ids.next(), seriesOf(r, v.agent_id), v));
          break;
        case 'packed': {
          const { dict, nums } = op.packed;
          // Slot j of the packed row goes to column j + 1 (after the id).
          const row: unknown[] = new Array(PACK_WIDTH + 1);
          for (let i = 0; i < nums.length; i += PACK_WIDTH) {
            row[0] = ids.next();
            row[1] = seriesOf(r, dict[nums[i]]);
            for (let j = 1; j < PACK_WIDTH; j++) row[j + 1] = STRING_SLOTS.has(j) ? dict[nums[i + j]] : nums[i + j];
            insVitals.run(row);
          }
          break;
        }
        case 'events':
          for (const e of op.events) insEvent.run(r, e.seq, e.ts, e.agent_id, e.type, JSON.stringify(e));
          break;
        case 'agent':
          putAgent.run(r, op.agent_id, op.meta);
          break;
        case 'records':
          for (const x of op.records) insRecord.run(r, x.measurement, x.agent_id, x.ts, JSON.stringify(x.fields));
          break;
        case 'touch':
          break;
      }
    }
    // Touch in the order runs appeared, so the last-written run is the latest.
    for (const r of touched) touch.run(r);
    ids.sealStep();
  };

  return {
    apply,
    /** The interned id of a run (created on first use). */
    runKey: run,
    prune: ids.prune,
    /** After a rollback: cached ids may name rows that were never committed. */
    forget: () => {
      runIds.clear();
      seriesIds.clear();
      ids.forget();
    },
  };
}

export function eventFromRow(r: { data: string }): ImmuneEvent {
  return JSON.parse(r.data) as ImmuneEvent;
}
