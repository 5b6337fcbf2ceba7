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
 */
export const CHECKPOINT_EVERY_MS = 250;

const port = parentPort!;
const { path, sync } = workerData as { path: string; sync?: 'normal' | 'full' };
const db = new Database(path);
configure(db, sync);

let lastError = '';
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    lastError = '';
  } catch (err) {
    // Reported once per distinct error, not every 250 ms.
    const message = (err as Error).message;
    if (message !== lastError) port.postMessage({ t: 'warn', message });
    lastError = message;
  }
}, CHECKPOINT_EVERY_MS);

port.on('message', (m: { t: 'close' }) => {
  if (m.t !== 'close') return;
  clearInterval(timer);
  db.close();
  port.postMessage({ t: 'closed' });
  port.close();
});
