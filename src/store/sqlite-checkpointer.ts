import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { configure } from './sqlite-schema.js';

/**
 * Copies the WAL into the database file on its own connection and thread, so
 * the writer's commits never wait for it. SQLite's automatic checkpoint runs
 * inside the COMMIT that crosses the threshold: with 64 MB of WAL that commit
 * took 110–145 ms, and every ingest acknowledgement waiting on it as long.
 * A PASSIVE checkpoint here takes no lock the writer needs. It can never
 * finish the WAL while commits keep coming, so the writer itself checkpoints
 * the short remainder between two transactions now and then (WAL_TAIL_MS in
 * sqlite-writer.ts), after which its next transaction starts the WAL over.
 * The writer keeps its automatic checkpoint as a safety net: should this
 * thread stop, the WAL stays bounded as before.
 *
 * Every 50 ms, so that the writer's own checkpoint finds at most ~50 ms of
 * frames left to copy and few dirty pages to fsync: at 15,000 single-record
 * requests/s it then stalled the writer 3.1 ms at the median and 9.7 ms at
 * worst, against 7 and 20 ms with a checkpoint every 250 ms, for ~1 % more
 * of a core (2.1 % against 0.9 %).
 */
export const CHECKPOINT_EVERY_MS = 50;

/**
 * What the thread tells the store, with the SQLite error code (SQLITE_IOERR_WRITE…): `warn`, a checkpoint
 * failed (once per distinct code and message until one succeeds); `fatal`, its connection could not be
 * opened, and the thread ends (the store restarts it after a back-off, sqlite.ts); `closed`, it was asked to.
 */
export type CheckpointerReport = { t: 'warn' | 'fatal'; code: string; message: string } | { t: 'closed' };

const port = parentPort!;
const { path, sync } = workerData as { path: string; sync?: 'normal' | 'full' };

/** The code and message of a SqliteError (or of anything thrown). */
function reason(err: unknown): { code: string; message: string } {
  const { code = '', message = String(err) } = err as { code?: string; message?: string };
  return { code, message };
}

let db: Database.Database;
try {
  db = new Database(path);
  configure(db, sync);
} catch (err) {
  // Said in a message: a SqliteError thrown out of a thread reaches the 'error' event without its message.
  port.postMessage({ t: 'fatal', ...reason(err) } satisfies CheckpointerReport);
  process.exit(1);
}

let lastError = '';
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    lastError = '';
  } catch (err) {
    // Reported once per distinct error (code and message: SQLite says 'disk I/O error' for every kind), not on every attempt.
    const r = reason(err);
    const key = `${r.code} ${r.message}`;
    if (key !== lastError) port.postMessage({ t: 'warn', ...r } satisfies CheckpointerReport);
    lastError = key;
  }
}, CHECKPOINT_EVERY_MS);

port.on('message', (m: { t: 'close' }) => {
  if (m.t !== 'close') return;
  clearInterval(timer);
  db.close();
  port.postMessage({ t: 'closed' } satisfies CheckpointerReport);
  port.close();
});
