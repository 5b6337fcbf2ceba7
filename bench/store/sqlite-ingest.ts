/**
 * Durable batched ingest into the embedded SQLite store (target ≥ 100,000
 * vitals/s, DESIGN §4) and its size on disk per million vitals.
 *
 *   node --import tsx bench/store/sqlite-ingest.ts
 *
 * "Durable" = every appendVitals promise resolved, i.e. its transaction
 * committed: with synchronous=NORMAL (the default) it survives a crash or
 * kill -9 of the process, with FULL (fsync per commit) also power loss. Also
 * reports the worst event-loop delay seen meanwhile: writes run in the writer
 * worker, not on this thread.
 *
 * Then the sustained rate: one file grown to BENCH_GROW vitals (default 3 M)
 * by the default write path, the rate reported per slice, because index
 * maintenance costs more as a file grows (see sqlite-segments.ts).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { silentLogger } from '../../src/log.js';
import { ResilientStore } from '../../src/store/resilient.js';
import { configure, migrate, writer, type WriteOp } from '../../src/store/sqlite-schema.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { drive, fmt, median } from './common.js';

const TOTAL = Number(process.env.BENCH_VITALS ?? 300_000);
const GROW = Number(process.env.BENCH_GROW ?? 3_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const AGENTS = 10_000;
const T0 = 1_700_000_000;

async function withStore<T>(wrap: boolean, f: (s: Store, path: string) => Promise<T>, sync: 'normal' | 'full' = 'normal'): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'immune-bench-sqlite-'));
  const path = join(dir, 'immune.sqlite');
  const inner = new SqliteStore({ path, sync });
  const s: Store = wrap ? new ResilientStore(inner, { spillDir: join(dir, 'spill'), maxQueued: 1_000_000, log: silentLogger() }) : inner;
  await s.open();
  try {
    return await f(s, path);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const configs: Array<{ name: string; wrap: boolean; batch: number; concurrency: number; sync?: 'full' }> = [
  { name: 'SqliteStore, 5000/batch, 1 in flight (as the control loop writes)', wrap: false, batch: 5000, concurrency: 1 },
  { name: 'SqliteStore, synchronous=FULL, 5000/batch, 1 in flight', wrap: false, batch: 5000, concurrency: 1, sync: 'full' },
  { name: 'SqliteStore, 1000/batch, 4 in flight (group commit)', wrap: false, batch: 1000, concurrency: 4 },
  { name: 'SqliteStore, 1000/batch, 1 in flight', wrap: false, batch: 1000, concurrency: 1 },
  { name: 'SqliteStore, 100/batch, 16 in flight (group commit)', wrap: false, batch: 100, concurrency: 16 },
  { name: 'openStore default (resilient queue → SQLite), 5000/batch, 1 in flight', wrap: true, batch: 5000, concurrency: 1 },
];

/**
 * The machine's own limit for this schema, measured side by side: the same
 * inserts straight into better-sqlite3 on one thread, 4000 rows per
 * transaction, no worker, no messages. The adapter's figures read as a
 * fraction of it, which stays meaningful when other processes load the box.
 */
async function rawLimit(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'immune-bench-raw-'));
  const db = new Database(join(dir, 'raw.sqlite'));
  try {
    configure(db);
    migrate(db);
    const w = writer(db, () => Date.now() / 1000);
    const commit = db.transaction((ops: WriteOp[]) => w.apply(ops));
    return await drive(async (b) => commit([{ k: 'vitals', run: 'raw', rows: b }]), { total: TOTAL, batch: 4000, concurrency: 1, agents: AGENTS, t0: T0 });
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Record<string, unknown> = { total_per_round: TOTAL, rounds: ROUNDS, agents: AGENTS, load_average_at_start: (await import('node:os')).loadavg()[0], configs: [] as unknown[] };
// Rounds interleave the configurations so machine noise hits them alike.
const rates: number[][] = configs.map(() => []);
const delays: number[][] = configs.map(() => []);
const raw: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  raw.push(await rawLimit());
  for (const [i, c] of configs.entries()) {
    await withStore(c.wrap, async (s) => {
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      rates[i].push(await drive((b) => s.appendVitals('bench', b), { total: TOTAL, batch: c.batch, concurrency: c.concurrency, agents: AGENTS, t0: T0 }));
      h.disable();
      delays[i].push(h.max / 1e6);
    }, c.sync);
  }
}
results.raw_sqlite_limit = { vitals_per_s_median: Math.round(median(raw)), runs: raw.map(Math.round) };
console.log(`${'raw better-sqlite3, same schema, one thread, 4000 rows/txn (machine limit)'.padEnd(75)} ${fmt(median(raw)).padStart(9)} vitals/s (runs ${raw.map(fmt).join(', ')})`);
for (const [i, c] of configs.entries()) {
  (results.configs as unknown[]).push({ name: c.name, vitals_per_s_median: Math.round(median(rates[i])), ratio_to_raw: Math.round((median(rates[i]) / median(raw)) * 100) / 100, runs: rates[i].map(Math.round), max_event_loop_delay_ms_median: Math.round(median(delays[i]) * 10) / 10 });
  console.log(`${c.name.padEnd(75)} ${fmt(median(rates[i])).padStart(9)} vitals/s (runs ${rates[i].map(fmt).join(', ')}); max event-loop delay ${median(delays[i]).toFixed(1)} ms`);
}

// Sustained: one file grown slice by slice through the default path (resilient queue → SQLite, 5000/batch, 1 in flight).
{
  const slice = 500_000;
  const slices: Array<{ rows_before: number; vitals_per_s: number }> = [];
  let reads: Record<string, number> = {};
  await withStore(true, async (s) => {
    for (let done = 0; done < GROW; done += slice) {
      const rate = await drive((b) => s.appendVitals('grow', b), { total: slice, batch: 5000, concurrency: 1, agents: AGENTS, t0: T0 + done / 1000 });
      slices.push({ rows_before: done, vitals_per_s: Math.round(rate) });
      console.log(`growing file, ${fmt(done)} → ${fmt(done + slice)} rows: ${fmt(rate)} vitals/s`);
    }
    // What reading one agent costs on the grown file (the dashboard's detail view, the server API's recent/count).
    const time = async (f: () => Promise<unknown>) => {
      const xs: number[] = [];
      for (let k = 0; k < 21; k++) {
        const t0 = performance.now();
        await f();
        xs.push(performance.now() - t0);
      }
      return Math.round(median(xs) * 100) / 100;
    };
    const end = T0 + GROW / 1000;
    reads = {
      recent_200_of_one_agent_ms: await time(() => s.recentVitals('grow', 'bench-agent-4242', { limit: 200 })),
      recent_60s_window_of_one_agent_ms: await time(() => s.recentVitals('grow', 'bench-agent-4242', { windowSeconds: 60, now: end })),
      count_of_one_agent_ms: await time(() => s.vitalsCount('grow', 'bench-agent-4242')),
      latest_of_every_agent_ms: await time(() => s.latestVitals('grow')),
    };
    console.log(`reads on the grown file (median of 21): ${JSON.stringify(reads)}`);
  });
  results.growing_file = { agents: AGENTS, slice, slices, reads };
}

// Size on disk: one million vitals from 10,000 agents, WAL checkpointed into the main file.
await withStore(false, async (s, path) => {
  await drive((b) => s.appendVitals('size', b), { total: 1_000_000, batch: 5000, concurrency: 2, agents: AGENTS, t0: T0 });
  await s.close();
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const bytes = statSync(path).size;
  results.size = { vitals: 1_000_000, bytes, bytes_per_vital: Math.round(bytes / 1_000_000), mib_per_million: Math.round((bytes / 1_048_576) * 10) / 10 };
  console.log(`size on disk: ${(bytes / 1_048_576).toFixed(1)} MiB per million vitals (${Math.round(bytes / 1e6)} bytes/vital, one index included)`);
});

writeFileSync(join(import.meta.dirname, 'results-sqlite.json'), JSON.stringify(results, null, 2) + '\n');
