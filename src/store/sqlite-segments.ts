import type Database from 'better-sqlite3';
import type { VitalsRow } from './sqlite-schema.js';

/**
 * Vitals rows are grouped by arrival into segments of SEGMENT_ROWS
 * consecutive ids, and the one vitals index is (seg, series, ts).
 *
 * Why: with an index on (series, ts), every agent has its own insertion
 * point spread over the whole index, so once the file holds a few million
 * rows each commit dirties about one index page per row and the writer falls
 * from ~300k to ~35k rows/s (bench/store/sqlite-ingest.ts, growing file).
 * Keyed by segment first, all inserts land in the current segment's few
 * hundred index pages, and the rate stays flat however large the file grows.
 *
 * The price is on reads of one agent: one index seek per segment instead of
 * one in total. The `segments` table keeps each segment's timestamp range, so
 * a windowed or newest-N query visits only the segments that can hold an
 * answer, newest first, and retention drops old segments whole.
 */
export const SEGMENT_ROWS = 32_768;

export const SEGMENTS_DDL = `
CREATE TABLE IF NOT EXISTS segments (seg INTEGER PRIMARY KEY, min_ts REAL NOT NULL, max_ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS segments_by_max_ts ON segments(max_ts);
CREATE INDEX IF NOT EXISTS vitals_by_seg ON vitals(seg, series, ts);
`;

/**
 * Upgrade of a schema-1 file (index on (series, ts)) in place: its rows all
 * become segment 0, new rows go to the segments after the largest id.
 */
export const SEGMENTS_UPGRADE_FROM_1 = `
ALTER TABLE vitals ADD COLUMN seg INTEGER NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS vitals_by_series;
${SEGMENTS_DDL}
INSERT INTO segments (seg, min_ts, max_ts) SELECT 0, min(ts), max(ts) FROM vitals HAVING count(*) > 0;
`;

/**
 * The writer's side: hands out row ids (the writer is the only one, so it can
 * count them itself and know each row's segment before the insert) and
 * records each segment's timestamp range in the same transaction.
 */
export function segmentAllocator(db: Database.Database) {
  const lastId = db.prepare<[], number | null>('SELECT max(id) FROM vitals').pluck();
  const putRange = db.prepare(
    'INSERT INTO segments (seg, min_ts, max_ts) VALUES (?, ?, ?) ON CONFLICT(seg) DO UPDATE SET min_ts = min(min_ts, excluded.min_ts), max_ts = max(max_ts, excluded.max_ts)',
  );
  let nextId: number | null = null;
  // The range seen in this transaction for the segment being filled (a batch rarely spans two).
  let seg = -1;
  let lo = Infinity;
  let hi = -Infinity;

  const saveRange = () => {
    if (seg >= 0) putRange.run(seg, lo, hi);
    seg = -1;
    lo = Infinity;
    hi = -Infinity;
  };

  return {
    /** Id and segment for the next row; `out[0]` = id, `out[1]` = seg (no allocation per row). */
    place(ts: number, out: number[]): void {
      if (nextId === null) nextId = (lastId.get() ?? 0) + 1;
      const id = nextId++;
      const s = Math.floor(id / SEGMENT_ROWS);
      if (s !== seg) {
        saveRange();
        seg = s;
      }
      if (ts < lo) lo = ts;
      if (ts > hi) hi = ts;
      out[0] = id;
      out[1] = s;
    },
    /** Call before the transaction commits. */
    finish: saveRange,
    /** After a rollback: the counter and the pending range are stale. */
    forget(): void {
      nextId = null;
      seg = -1;
      lo = Infinity;
      hi = -Infinity;
    },
  };
}

/**
 * One short step of a retention pass: deletes at most `budget` rows older
 * than `olderThan`, visiting segments from `cursor` on. A segment with nothing
 * newer left is dropped from `segments`; otherwise its lower bound is raised so
 * the next pass skips it. Returns where to go on (null when the pass is done).
 */
export function segmentPruner(db: Database.Database) {
  const candidates = db.prepare<[number, number], { seg: number; max_ts: number }>('SELECT seg, max_ts FROM segments WHERE seg >= ? AND min_ts < ? ORDER BY seg LIMIT 64');
  const deleteOld = db.prepare('DELETE FROM vitals WHERE id IN (SELECT id FROM vitals WHERE seg = ? AND ts < ? LIMIT ?)');
  const dropSegment = db.prepare('DELETE FROM segments WHERE seg = ?');
  const raiseLow = db.prepare('UPDATE segments SET min_ts = max(min_ts, ?) WHERE seg = ?');

  return (olderThan: number, cursor: number, budget: number): { deleted: number; cursor: number | null } => {
    let deleted = 0;
    let at = cursor;
    for (;;) {
      const segs = candidates.all(at, olderThan);
      if (segs.length === 0) return { deleted, cursor: null };
      for (const { seg, max_ts } of segs) {
        const left = budget - deleted;
        const n = deleteOld.run(seg, olderThan, left).changes;
        deleted += n;
        if (n >= left) return { deleted, cursor: seg };
        if (max_ts < olderThan) dropSegment.run(seg);
        else raiseLow.run(olderThan, seg);
        at = seg + 1;
      }
    }
  };
}

type Row = VitalsRow & { id: number };

/** Newest first: by timestamp, then by arrival. */
const newestFirst = (a: Row, b: Row) => b.ts - a.ts || b.id - a.id;

/** The reading side (main thread): per-agent queries that visit only the segments that can hold an answer. */
export function segmentReader(db: Database.Database) {
  const segmentsFrom = db.prepare<[number], { seg: number; max_ts: number }>('SELECT seg, max_ts FROM segments WHERE max_ts >= ? ORDER BY max_ts DESC, seg DESC');
  const inSegment = db.prepare<[string, number, number, number, number], Row>(
    'SELECT ? AS agent_id, * FROM vitals WHERE seg = ? AND series = ? AND ts >= ? ORDER BY ts DESC, id DESC LIMIT ?',
  );
  const newestPerSeries = db.prepare<[number], { series: number; ts: number; id: number }>('SELECT series, max(ts) AS ts, id FROM vitals WHERE seg = ? GROUP BY series');
  const byId = db.prepare<[string, number], Row>('SELECT ? AS agent_id, * FROM vitals WHERE id = ?');
  const countSeries = db.prepare<[number], number>('SELECT count(*) FROM vitals WHERE seg IN (SELECT seg FROM segments) AND series = ?').pluck();

  return {
    /** One agent's samples at or after `cutoff`, at most `limit` of them (the newest; Infinity for all), newest first. */
    recent(agentId: string, series: number, cutoff: number, limit: number): Row[] {
      let rows: Row[] = [];
      const sqlLimit = Number.isFinite(limit) ? limit : -1;
      for (const { seg, max_ts } of segmentsFrom.all(cutoff)) {
        // Segments come by their newest timestamp: once `limit` rows newer than all of this one are in hand, none later can displace them.
        if (rows.length >= limit && max_ts < rows[limit - 1].ts) break;
        const found = inSegment.all(agentId, seg, series, cutoff, sqlLimit);
        if (found.length === 0) continue;
        rows = rows.concat(found).sort(newestFirst);
        if (rows.length > limit) rows.length = limit;
      }
      return rows;
    },

    /** The newest sample of each of the given series (by timestamp, then arrival). */
    latest(agentOf: ReadonlyMap<number, string>): Row[] {
      const best = new Map<number, { ts: number; id: number }>();
      for (const { seg, max_ts } of segmentsFrom.all(-Infinity)) {
        if (best.size === agentOf.size) {
          let oldestBest = Infinity;
          for (const b of best.values()) if (b.ts < oldestBest) oldestBest = b.ts;
          if (max_ts < oldestBest) break;
        }
        for (const r of newestPerSeries.all(seg)) {
          if (!agentOf.has(r.series)) continue;
          const b = best.get(r.series);
          if (!b || r.ts > b.ts || (r.ts === b.ts && r.id > b.id)) best.set(r.series, { ts: r.ts, id: r.id });
        }
      }
      return [...best].map(([series, b]) => byId.get(agentOf.get(series)!, b.id)!);
    },

    count(series: number): number {
      return countSeries.get(series) ?? 0;
    },
  };
}
