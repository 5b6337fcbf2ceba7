import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { configure, writer, type PackedVitals, type WriteOp } from './sqlite-schema.js';
import { snapshotPartsWriter, type SnapshotJob } from './sqlite-snapshots.js';

/**
 * The only writer of the embedded database, in a worker thread so that
 * commits (and their fsync) never block the control plane's event loop.
 * Group commit: every write that arrived while the previous transaction ran
 * is applied in the next single transaction.
 */

/**
 * Vitals travel packed (a moved Float64Array and a small string dictionary);
 * other writes, which are few, as one JSON string.
 */
export type WriterRequest =
  | { t: 'vitals'; id: number; run: string; packed: PackedVitals }
  | { t: 'write'; id: number; ops: string }
  | { t: 'snapshot'; id: number; run: string; seq: number; data: Uint8Array }
  | { t: 'prune'; id: number; olderThan: number; chunk: number }
  | { t: 'close'; id: number };

export type WriterReply = { t: 'ack'; id: number; n?: number } | { t: 'err'; id: number; message: string; sqliteCode: string } | { t: 'ready' } | { t: 'fatal'; message: string };

const port = parentPort!;
const { path, sync } = workerData as { path: string; sync?: 'normal' | 'full' };

let db: Database.Database;
try {
  db = new Database(path);
  configure(db, sync);
} catch (err) {
  port.postMessage({ t: 'fatal', message: (err as Error).message } satisfies WriterReply);
  throw err;
}

const w = writer(db, () => Date.now() / 1000);
const parts = snapshotPartsWriter(db, () => Date.now() / 1000);
/** Snapshots being written a part per turn (sqlite-snapshots.ts), oldest first. */
const snapshotJobs: Array<SnapshotJob & { id: number }> = [];
/** Parts of replaced or unfinished snapshots may remain (true at start: a crash can leave some). */
let cleaning = true;
const commit = db.transaction((ops: WriteOp[]) => w.apply(ops));

let writes: Array<{ id: number; ops: WriteOp[] }> = [];
const prunes: Array<Extract<WriterRequest, { t: 'prune' }> & { deleted: number; cursor: number }> = [];
let scheduled = false;
let closing: Extract<WriterRequest, { t: 'close' }> | null = null;

/**
 * How often the writer checkpoints the WAL's remainder itself, between two transactions (see
 * sqlite-checkpointer.ts): the checkpointer thread has copied all but the last ~50 ms of it, so this
 * takes a few ms, and with no commit in between the WAL is complete and the next transaction restarts it.
 */
const WAL_TAIL_MS = 2000;
let tailAt = performance.now();

const reply = (m: WriterReply) => port.postMessage(m);
const fail = (id: number, err: unknown) => {
  const e = err as { message?: string; code?: string };
  reply({ t: 'err', id, message: e.message ?? String(err), sqliteCode: e.code ?? '' });
};

function flushWrites(): void {
  const batch = writes;
  writes = [];
  if (batch.length === 0) return;
  try {
    commit(batch.flatMap((b) => b.ops));
    for (const b of batch) reply({ t: 'ack', id: b.id });
  } catch {
    // One bad request must not fail the others that shared its transaction: retry each alone.
    w.forget();
    for (const b of batch) {
      try {
        commit(b.ops);
        reply({ t: 'ack', id: b.id });
      } catch (err) {
        w.forget();
        fail(b.id, err);
      }
    }
  }
}

function checkpointTail(): void {
  if (performance.now() - tailAt < WAL_TAIL_MS) return;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    // While the checkpointer thread holds the checkpoint lock this is refused at once: try again after the next transaction.
    if (r.busy === 0 && r.checkpointed === r.log) tailAt = performance.now();
  } catch {
    // Failing: the checkpointer thread and the automatic checkpoint still bound the WAL.
    tailAt = performance.now();
  }
}

/**
 * One part of the oldest snapshot per turn, between write transactions (all of them once closing: the
 * process waits for the last checkpoint); with none to write, one stale part is deleted.
 */
function snapshotStep(): void {
  do {
    const job = snapshotJobs[0];
    if (!job) break;
    try {
      if (db.transaction(() => parts.step(job))()) {
        snapshotJobs.shift();
        cleaning = true;
        reply({ t: 'ack', id: job.id });
      }
    } catch (err) {
      snapshotJobs.shift();
      cleaning = true;
      fail(job.id, err);
    }
  } while (closing);
  if (snapshotJobs.length === 0 && cleaning && !closing) {
    try {
      cleaning = db.transaction(() => parts.dropStale())();
    } catch {
      cleaning = false; // tried again after the next snapshot
    }
  }
}

function step(): void {
  scheduled = false;
  flushWrites();
  checkpointTail();
  if (closing) for (const p of prunes.splice(0)) reply({ t: 'ack', id: p.id, n: p.deleted });
  // One prune chunk per turn, between write transactions, so retention never stalls ingest.
  const p = prunes[0];
  if (p) {
    try {
      const step = db.transaction(() => w.prune(p.olderThan, p.cursor, p.chunk))();
      p.deleted += step.deleted;
      if (step.cursor === null) {
        prunes.shift();
        reply({ t: 'ack', id: p.id, n: p.deleted });
      } else p.cursor = step.cursor;
    } catch (err) {
      prunes.shift();
      fail(p.id, err);
    }
  }
  snapshotStep();
  if (writes.length > 0 || prunes.length > 0 || snapshotJobs.length > 0 || (cleaning && !closing)) schedule();
  else if (closing) {
    db.close();
    reply({ t: 'ack', id: closing.id });
    port.close();
  }
}

function schedule(): void {
  if (!scheduled) {
    scheduled = true;
    setImmediate(step);
  }
}

port.on('message', (m: WriterRequest) => {
  if (m.t === 'vitals') writes.push({ id: m.id, ops: [{ k: 'packed', run: m.run, packed: m.packed }] });
  else if (m.t === 'write') writes.push({ id: m.id, ops: JSON.parse(m.ops) as WriteOp[] });
  else if (m.t === 'snapshot') snapshotJobs.push({ id: m.id, run: w.runKey(m.run), seq: m.seq, data: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength), written: 0, gen: null });
  else if (m.t === 'prune') prunes.push({ ...m, deleted: 0, cursor: 0 });
  else closing = m;
  schedule();
});

reply({ t: 'ready' });
