import type Database from 'better-sqlite3';
import type { VitalsRow } from './sqlite-schema.js';

/**
 * Vitals rows are numbered by arrival and grouped into segments of
 * SEGMENT_ROWS consecutive ids. Only the newest, *open* segment is written;
 * when it is full it is *sealed*: its entries are added to `vitals_index`
 * (seg, series, ts, id) by sorted INSERT … SELECTs, and its time range to
 * `segments`. A full segment is sealed SEAL_PIECE_ROWS rows per write
 * transaction, not all at once: sealing 32,768 rows in one go took ~25 ms,
 * and every acknowledgement waiting on the writer waited that long — about
 * 1 % of single-record requests at 15,000 a second. Until the last piece is
 * in, readers treat the segment as open (it is not in `segments` yet).
 *
 * Why: an index maintained row by row gives each agent its own insertion
 * point. With 10,000 agents every commit then rewrites about one 4 KiB index
 * page per row — on a file of a few million rows the writer fell from ~300k
 * to ~35k rows/s, and even an index led by the segment costs ~20 µs a row in
 * the small commits of single-record ingest (bench/store, docs/STORAGE.md).
 * Appending rows to the table and building the index once per segment, in
 * index order, makes both cheap: commits write the table pages they fill and
 * little else.
 *
 * Reads of one agent scan the open segment (at most SEGMENT_ROWS rows, a few
 * ms) and seek each sealed segment that can hold an answer, newest first;
 * retention removes old segments a window of ids at a time.
 */
export const SEGMENT_ROWS = 32_768;
/** Rows of a full segment indexed per write transaction (2–3 ms). */
export const SEAL_PIECE_ROWS = 2048;

export const SEGMENTS_DDL = `
CREATE TABLE IF NOT EXISTS segments (seg INTEGER PRIMARY KEY, min_ts REAL NOT NULL, max_ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS segments_by_max_ts ON segments(max_ts);
CREATE TABLE IF NOT EXISTS vitals_index (seg INTEGER NOT NULL, series INTEGER NOT NULL, ts REAL NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (seg, series, ts, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vitals_open (id INTEGER PRIMARY KEY CHECK (id = 1), first_id INTEGER NOT NULL);
INSERT OR IGNORE INTO vitals_open (id, first_id) VALUES (1, 0);
`;

/** Upgrade of a schema-1 file (a row-by-row index on (series, ts)): the index goes; migrate() then seals the existing rows (sealExisting). */
export const SEGMENTS_UPGRADE_FROM_1 = `DROP INDEX IF EXISTS vitals_by_series;`;

const segOf = (id: number) => Math.floor(id / SEGMENT_ROWS);

/**
 * Where the open segment starts, and sealing: shared by the writer's id allocator, the pruner and the upgrade.
 * `vitals_open.first_id` moves past a segment only when its last piece is indexed, so the segment being
 * sealed (the *pending* one) is read as part of the open region, and its partial entries are never read.
 */
function sealer(db: Database.Database) {
  const openFrom = db.prepare<[], number>('SELECT first_id FROM vitals_open').pluck();
  const setOpen = db.prepare('UPDATE vitals_open SET first_id = ?');
  const lastId = db.prepare<[], number | null>('SELECT max(id) FROM vitals').pluck();
  const lastIndexed = db.prepare<[number], number | null>('SELECT max(id) FROM vitals_index WHERE seg = ?').pluck();
  const range = db.prepare<[number, number], { n: number; lo: number | null; hi: number | null }>('SELECT count(*) AS n, min(ts) AS lo, max(ts) AS hi FROM vitals WHERE id >= ? AND id < ?');
  const index = db.prepare('INSERT INTO vitals_index (seg, series, ts, id) SELECT ?, series, ts, id FROM vitals WHERE id >= ? AND id < ? ORDER BY series, ts, id');
  const addSegment = db.prepare('INSERT OR REPLACE INTO segments (seg, min_ts, max_ts) VALUES (?, ?, ?)');
  let open: number | null = null;
  /** First id of the open segment not yet in the index (null: not read yet). */
  let indexedTo: number | null = null;
  /** Rows and time range of the pieces indexed so far, when this sealer indexed them all (null: read the whole segment at the end). */
  let seen: { n: number; lo: number; hi: number } | null = null;

  /** Indexes the next rows of the open segment (at most `budget`); when the segment is complete, seals it. */
  const indexPiece = (budget: number): void => {
    const from = open!;
    const s = segOf(from);
    const end = from + SEGMENT_ROWS;
    if (indexedTo === null) {
      const last = lastIndexed.get(s) ?? null;
      indexedTo = last === null ? from : last + 1;
      seen = last === null ? { n: 0, lo: Infinity, hi: -Infinity } : null;
    }
    const to = Math.min(end, indexedTo + budget);
    if (to > indexedTo) {
      index.run(s, indexedTo, to);
      if (seen) {
        const r = range.get(indexedTo, to)!;
        seen = r.n === 0 ? seen : { n: seen.n + r.n, lo: Math.min(seen.lo, r.lo!), hi: Math.max(seen.hi, r.hi!) };
      }
    }
    indexedTo = to;
    if (to < end) return;
    const r = seen ?? range.get(from, end)!;
    if (r.n > 0) addSegment.run(s, r.lo, r.hi);
    setOpen.run(end);
    open = end;
    indexedTo = null;
    seen = null;
  };

  return {
    /** First id of the open segment (cached; call forget() after a rollback). */
    openFrom(): number {
      open ??= openFrom.get() ?? 0;
      return open;
    },
    /** Seals full segments until the one holding `id` is the open one. Runs inside the caller's transaction. */
    sealBefore(id: number): void {
      while (segOf(id) > segOf(this.openFrom())) indexPiece(SEGMENT_ROWS);
    },
    /**
     * One piece of sealing for a writer whose next row is `nextId`: indexes up to SEAL_PIECE_ROWS rows of
     * the oldest full segment (after sealing at once any older one that is still pending: a bulk write can
     * fill segments faster than pieces seal them).
     */
    sealStep(nextId: number): void {
      const last = segOf(nextId);
      if (last - segOf(this.openFrom()) > 1) this.sealBefore((last - 1) * SEGMENT_ROWS);
      if (last > segOf(this.openFrom())) indexPiece(SEAL_PIECE_ROWS);
    },
    /** The largest row id, 0 when there are none. */
    lastId(): number {
      return lastId.get() ?? 0;
    },
    forget(): void {
      open = null;
      indexedTo = null;
      seen = null;
    },
  };
}

/**
 * The writer's side: hands out row ids (the writer is the only one, so it
 * counts them itself), seals full segments a piece per transaction
 * (`sealStep()` after the transaction's rows), and prunes. One sealer serves
 * all three, so none of them acts on another's stale idea of the open segment.
 */
export function segmentWriter(db: Database.Database) {
  const seal = sealer(db);
  let nextId: number | null = null;

  return {
    /** Id of the next row. */
    next(): number {
      nextId ??= Math.max(seal.lastId() + 1, seal.openFrom());
      return nextId++;
    },
    /** One piece of sealing, inside the transaction that wrote the rows. */
    sealStep(): void {
      if (nextId !== null) seal.sealStep(nextId);
    },
    prune: segmentPruner(db, seal),
    /** After a rollback: the counter and the open segment are stale. */
    forget(): void {
      nextId = null;
      seal.forget();
    },
  };
}

/** Seals the full segments of a file written before segments existed (schema 1). */
export function sealExisting(db: Database.Database): void {
  const seal = sealer(db);
  seal.sealBefore(seal.lastId());
}

/**
 * One short step of a retention pass: deletes vitals older than `olderThan`
 * in a window of at most `budget` ids, then moves on. Sealed segments whose
 * range starts before the cut are visited in order, then the open segment.
 * A sealed segment with nothing newer left is dropped from `segments`;
 * otherwise its lower bound is raised so later passes skip it. `cursor` is
 * the id to go on from (0 to start); returns null as cursor when done.
 */
function segmentPruner(db: Database.Database, seal: ReturnType<typeof sealer>) {
  const nextSegment = db.prepare<[number, number], { seg: number; max_ts: number }>('SELECT seg, max_ts FROM segments WHERE seg >= ? AND min_ts < ? ORDER BY seg LIMIT 1');
  const deleteRows = db.prepare('DELETE FROM vitals WHERE id >= ? AND id < ? AND ts < ?');
  const deleteEntries = db.prepare('DELETE FROM vitals_index WHERE seg = ? AND ts < ? AND id >= ? AND id < ?');
  const dropSegment = db.prepare('DELETE FROM segments WHERE seg = ?');
  const raiseLow = db.prepare('UPDATE segments SET min_ts = max(min_ts, ?) WHERE seg = ?');
  const deleteOpen = db.prepare('DELETE FROM vitals WHERE id IN (SELECT id FROM vitals WHERE id >= ? AND ts < ? LIMIT ?)');

  return (olderThan: number, cursor: number, budget: number): { deleted: number; cursor: number | null } => {
    // A segment still being sealed would be pruned as open rows while part of its index exists: finish it first.
    seal.sealBefore(seal.lastId() + 1);
    const open = seal.openFrom();
    let deleted = 0;
    let room = budget; // ids left to visit in this step
    let at = cursor;
    while (at < open) {
      const s = nextSegment.get(segOf(at), olderThan);
      if (!s) break;
      const lo = Math.max(at, s.seg * SEGMENT_ROWS);
      const end = (s.seg + 1) * SEGMENT_ROWS;
      const hi = Math.min(end, lo + room);
      deleted += deleteRows.run(lo, hi, olderThan).changes;
      deleteEntries.run(s.seg, olderThan, lo, hi);
      room -= hi - lo;
      at = hi;
      if (hi === end) {
        if (s.max_ts < olderThan) dropSegment.run(s.seg);
        else raiseLow.run(olderThan, s.seg);
      }
      if (room <= 0) return { deleted, cursor: at };
    }
    const n = deleteOpen.run(open, olderThan, room).changes;
    deleted += n;
    return n >= room ? { deleted, cursor: open } : { deleted, cursor: null };
  };
}

type Row = VitalsRow & { id: number };

/** Newest first: by timestamp, then by arrival. */
const newestFirst = (a: Row, b: Row) => b.ts - a.ts || b.id - a.id;

/**
 * The reading side (main thread). Each method runs in one read transaction,
 * so the open segment and the sealed ones are seen at the same commit.
 */
export function segmentReader(db: Database.Database) {
  const openFrom = db.prepare<[], number>('SELECT first_id FROM vitals_open').pluck();
  const segmentsFrom = db.prepare<[number], { seg: number; max_ts: number }>('SELECT seg, max_ts FROM segments WHERE max_ts >= ? ORDER BY max_ts DESC, seg DESC');
  const inOpen = db.prepare<[string, number, number, number, number], Row>('SELECT ? AS agent_id, * FROM vitals WHERE id >= ? AND series = ? AND ts >= ? ORDER BY ts DESC, id DESC LIMIT ?');
  const inSegment = db.prepare<[string, number, number, number, number], Row>(
    'SELECT ? AS agent_id, v.* FROM vitals_index x JOIN vitals v ON v.id = x.id WHERE x.seg = ? AND x.series = ? AND x.ts >= ? ORDER BY x.ts DESC, x.id DESC LIMIT ?',
  );
  const newestInOpen = db.prepare<[number], { series: number; ts: number; id: number }>('SELECT series, max(ts) AS ts, id FROM vitals WHERE id >= ? GROUP BY series');
  const newestInSegment = db.prepare<[number], { series: number; ts: number; id: number }>('SELECT series, max(ts) AS ts, id FROM vitals_index WHERE seg = ? GROUP BY series');
  const byId = db.prepare<[string, number], Row>('SELECT ? AS agent_id, * FROM vitals WHERE id = ?');
  const countOpen = db.prepare<[number, number], number>('SELECT count(*) FROM vitals WHERE id >= ? AND series = ?').pluck();
  const countSealed = db.prepare<[number], number>('SELECT count(*) FROM vitals_index WHERE seg IN (SELECT seg FROM segments) AND series = ?').pluck();
  const countRunOpen = db.prepare<[number, number], number>('SELECT count(*) FROM vitals WHERE id >= ? AND series IN (SELECT id FROM series WHERE run = ?)').pluck();
  const countRunSealed = db.prepare<[number], number>('SELECT count(*) FROM vitals_index WHERE seg IN (SELECT seg FROM segments) AND series IN (SELECT id FROM series WHERE run = ?)').pluck();

  /** One agent's samples at or after `cutoff`, at most `limit` of them (the newest; Infinity for all), newest first. */
  const recent = db.transaction((agentId: string, series: number, cutoff: number, limit: number): Row[] => {
    const sqlLimit = Number.isFinite(limit) ? limit : -1;
    let rows = inOpen.all(agentId, openFrom.get() ?? 0, series, cutoff, sqlLimit);
    for (const { seg, max_ts } of segmentsFrom.all(cutoff)) {
      // Segments come by their newest timestamp: once `limit` rows newer than all of this one are in hand, none later can displace them.
      if (rows.length >= limit && max_ts < rows[limit - 1].ts) break;
      const found = inSegment.all(agentId, seg, series, cutoff, sqlLimit);
      if (found.length === 0) continue;
      rows = rows.concat(found).sort(newestFirst);
      if (rows.length > limit) rows.length = limit;
    }
    return rows;
  });

  /** The newest sample of each of the given series (by timestamp, then arrival). */
  const latest = db.transaction((agentOf: ReadonlyMap<number, string>): Row[] => {
    const best = new Map<number, { ts: number; id: number }>();
    const note = (r: { series: number; ts: number; id: number }) => {
      if (!agentOf.has(r.series)) return;
      const b = best.get(r.series);
      if (!b || r.ts > b.ts || (r.ts === b.ts && r.id > b.id)) best.set(r.series, { ts: r.ts, id: r.id });
    };
    for (const r of newestInOpen.all(openFrom.get() ?? 0)) note(r);
    for (const { seg, max_ts } of segmentsFrom.all(-Infinity)) {
      if (best.size === agentOf.size) {
        let oldestBest = Infinity;
        for (const b of best.values()) if (b.ts < oldestBest) oldestBest = b.ts;
        if (max_ts < oldestBest) break;
      }
      for (const r of newestInSegment.all(seg)) note(r);
    }
    return [...best].map(([series, b]) => byId.get(agentOf.get(series)!, b.id)!);
  });

  const count = db.transaction((series: number): number => countOpen.get(openFrom.get() ?? 0, series)! + countSealed.get(series)!);
  const countRun = db.transaction((run: number): number => countRunOpen.get(openFrom.get() ?? 0, run)! + countRunSealed.get(run)!);

  return { recent, latest, count, countRun };
}
