import type Database from 'better-sqlite3';

/**
 * Detection snapshots in SQLite, written a part per write transaction. A
 * 10,000-agent snapshot is 11 MB of JSON; written in one transaction it held
 * the writer ~150 ms, and every ingest acknowledgement waiting on it as long
 * (the p99 of single-record ingest at 15,000 req/s went from ~10 to ~155 ms
 * in each round that had a checkpoint). Parts of SNAPSHOT_PART_BYTES go in
 * between the vitals commits; the `snapshots` row points to a complete set of
 * parts only once the last one is in, so a reader (or a crash) never sees
 * half of one. Parts of replaced snapshots are deleted a part per transaction
 * afterwards.
 */
export const SNAPSHOT_PARTS_DDL = `
CREATE TABLE IF NOT EXISTS snapshot_parts (gen INTEGER NOT NULL, part INTEGER NOT NULL, run INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (gen, part));
`;

/** Bytes per part (16 pages, well under a millisecond to write: each part delays the vitals commit it shares a turn with). */
export const SNAPSHOT_PART_BYTES = 64 * 1024;

/** What `snapshots.data` holds for a snapshot stored in parts (a JSON snapshot never starts with '@'). */
const POINTER = /^@parts:(\d+):(\d+)$/;

export interface SnapshotJob {
  run: number;
  seq: number;
  data: Buffer;
  /** Parts written so far. */
  written: number;
  /** This snapshot's generation (its parts' key), assigned with its first part. */
  gen: number | null;
}

/** The writer's side: one step writes one part (or moves the pointer, or drops one stale part). */
export function snapshotPartsWriter(db: Database.Database, now: () => number) {
  const nextGen = db.prepare<[], number>('SELECT coalesce(max(gen), 0) + 1 FROM snapshot_parts').pluck();
  const putPart = db.prepare('INSERT INTO snapshot_parts (gen, part, run, data) VALUES (?, ?, ?, ?)');
  const point = db.prepare('INSERT INTO snapshots (run, seq, saved_at, data) VALUES (?, ?, ?, ?) ON CONFLICT(run) DO UPDATE SET seq = excluded.seq, saved_at = excluded.saved_at, data = excluded.data');
  // A part is stale when no run's pointer names its generation ('@parts:G:N' → G).
  const stalePart = db.prepare<[], { gen: number; part: number }>(
    "SELECT gen, part FROM snapshot_parts WHERE gen NOT IN (SELECT CAST(substr(data, 8, instr(substr(data, 8), ':') - 1) AS INTEGER) FROM snapshots WHERE data LIKE '@parts:%') LIMIT 1",
  );
  const dropPart = db.prepare('DELETE FROM snapshot_parts WHERE gen = ? AND part = ?');

  return {
    /** Writes the job's next part, or, when all are in, points its run at them. True when the job is done. */
    step(job: SnapshotJob): boolean {
      const parts = Math.max(1, Math.ceil(job.data.length / SNAPSHOT_PART_BYTES));
      job.gen ??= nextGen.get()!;
      if (job.written < parts) {
        const from = job.written * SNAPSHOT_PART_BYTES;
        putPart.run(job.gen, job.written, job.run, job.data.subarray(from, from + SNAPSHOT_PART_BYTES));
        job.written += 1;
        return false;
      }
      point.run(job.run, job.seq, now(), `@parts:${job.gen}:${parts}`);
      return true;
    },
    /**
     * Deletes one part that no run points to (replaced, or left by a snapshot that was never finished).
     * Only while no snapshot is being written: its parts have no pointer yet. False when there was none.
     */
    dropStale(): boolean {
      const p = stalePart.get();
      if (!p) return false;
      dropPart.run(p.gen, p.part);
      return true;
    },
  };
}

/** Reads a run's snapshot JSON from its `snapshots.data` (inline, or the parts it points to). */
export function readSnapshotText(db: Database.Database, data: string): string {
  const m = POINTER.exec(data);
  if (!m) return data;
  const parts = db.prepare<[number], { data: Buffer }>('SELECT data FROM snapshot_parts WHERE gen = ? ORDER BY part').all(Number(m[1]));
  if (parts.length !== Number(m[2])) throw new Error(`snapshot parts missing: ${parts.length} of ${m[2]}`);
  return Buffer.concat(parts.map((p) => p.data)).toString('utf8');
}
