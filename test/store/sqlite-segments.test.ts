import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SEAL_PIECE_ROWS, SEGMENT_ROWS } from '../../src/store/sqlite-segments.js';
import { MemoryStore } from '../../src/store/memory.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { vitals } from './contract.js';

const dirs: string[] = [];
const tmp = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `immune-seg-${name}-`));
  dirs.push(d);
  return join(d, 'immune.sqlite');
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Deterministic pseudo-random numbers, so a failure reproduces. */
function rng(seed: number) {
  let x = seed;
  return () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

const key = (v: { agent_id: string; timestamp: number; latency_ms: number }) => `${v.agent_id}@${v.timestamp}/${v.latency_ms}`;

describe('sqlite store: vitals spread over many segments', () => {
  it('answers exactly as the in-memory store when agents interleave, arrive late, and fall silent', async () => {
    const sqlite = new SqliteStore({ path: tmp('diff'), now: () => 10_000 });
    const memory = new MemoryStore(() => 10_000);
    await sqlite.open();
    try {
      const r = rng(7);
      const total = SEGMENT_ROWS * 3 + 1234;
      const batch = [];
      for (let i = 0; i < total; i++) {
        // 40 agents; 'silent' reports only at the start (its newest row is segments back); 10 % of rows arrive up to 500 s late;
        // half the rows of 'straggler' arrive up to 6000 s late, so a newer segment holds rows older than an older one's.
        const straggler = i % 97 === 0;
        const agent = i < 50 ? 'silent' : straggler ? 'straggler' : `a${Math.floor(r() * 40)}`;
        const late = straggler ? (r() < 0.5 ? r() * 6000 : 0) : r() < 0.1 ? r() * 500 : 0;
        batch.push(vitals(agent, 1000 + i * 0.08 - late, { latency_ms: i }));
      }
      for (let i = 0; i < batch.length; i += 5000) {
        await sqlite.appendVitals('r', batch.slice(i, i + 5000));
        await memory.appendVitals('r', batch.slice(i, i + 5000));
      }
      for (const agent of ['a3', 'a17', 'straggler', 'silent', 'nobody']) {
        for (const q of [{}, { limit: 1 }, { limit: 5 }, { limit: 250 }, { windowSeconds: 60 }, { windowSeconds: 3000, limit: 40 }, { windowSeconds: 9000 }]) {
          const got = (await sqlite.recentVitals('r', agent, q)).map(key);
          const want = (await memory.recentVitals('r', agent, q)).map(key);
          expect(got.length, `${agent} ${JSON.stringify(q)}`).toBe(want.length);
          // Same rows, oldest first (rows with equal timestamps may come in either order).
          expect([...got].sort(), `${agent} ${JSON.stringify(q)}`).toEqual([...want].sort());
        }
        expect(await sqlite.vitalsCount('r', agent)).toBe(await memory.vitalsCount('r', agent));
      }
      const byAgent = (xs: Vitals[]) => [...xs].sort((a, b) => a.agent_id.localeCompare(b.agent_id));
      expect(byAgent(await sqlite.latestVitals('r')).map(key)).toEqual(byAgent(await memory.latestVitals('r')).map(key));
      expect(await sqlite.vitalsCount('r')).toBe(total);
    } finally {
      await sqlite.close();
    }
  });

  it('prunes whole old segments and keeps the rows that are still young', async () => {
    const path = tmp('prune');
    const s = new SqliteStore({ path });
    await s.open();
    try {
      const total = SEGMENT_ROWS * 4;
      const rows = Array.from({ length: total }, (_, i) => vitals(`a${i % 100}`, 1000 + i));
      for (let i = 0; i < total; i += 8192) await s.appendVitals('r', rows.slice(i, i + 8192));
      const cut = 1000 + SEGMENT_ROWS * 2.5;
      expect(await s.pruneVitals(cut)).toBe(SEGMENT_ROWS * 2.5);
      expect(await s.vitalsCount('r')).toBe(SEGMENT_ROWS * 1.5);
      const a7 = rows.filter((v) => v.agent_id === 'a7').map((v) => v.timestamp);
      expect((await s.recentVitals('r', 'a7', { limit: 2 })).map((v) => v.timestamp)).toEqual(a7.slice(-2));
      expect(await s.vitalsCount('r', 'a7')).toBe(a7.filter((ts) => ts >= cut).length);
      const db = new Database(path, { readonly: true });
      const segs = db.prepare<[], { seg: number; min_ts: number }>('SELECT seg, min_ts FROM segments ORDER BY seg').all();
      db.close();
      // Ids start at 1, so the last row opens segment 4. Segments 0 and 1 are dropped whole; the half-pruned
      // segment 2 no longer claims rows older than the cut; the open segment has no entry until it is sealed.
      expect(segs.map((x) => x.seg)).toEqual([2, 3]);
      expect(segs[0].min_ts).toBeGreaterThanOrEqual(cut);
      // A second pass finds nothing to do.
      expect(await s.pruneVitals(cut)).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe('sqlite store: a full segment is sealed a piece per write', () => {
  it('reads, counts, restarts and prunes correctly while a segment is half indexed', async () => {
    const path = tmp('pieces');
    const memory = new MemoryStore(() => 10_000);
    const piece = (db: Database.Database) => ({
      sealed: db.prepare('SELECT seg FROM segments ORDER BY seg').pluck().all(),
      entries: db.prepare('SELECT count(*) FROM vitals_index WHERE seg = 0').pluck().get(),
    });
    const check = async (s: SqliteStore, when: string) => {
      for (const agent of ['a0', 'a5', 'late']) {
        for (const q of [{}, { limit: 3 }, { windowSeconds: 500 }]) {
          const got = (await s.recentVitals('r', agent, q)).map(key).sort();
          expect(got, `${when}: ${agent} ${JSON.stringify(q)}`).toEqual((await memory.recentVitals('r', agent, q)).map(key).sort());
        }
        expect(await s.vitalsCount('r', agent), `${when}: count ${agent}`).toBe(await memory.vitalsCount('r', agent));
      }
      expect(await s.vitalsCount('r'), `${when}: count of the run`).toBe(await memory.vitalsCount('r'));
      const byAgent = (xs: Vitals[]) => xs.map(key).sort();
      expect(byAgent(await s.latestVitals('r')), `${when}: latest`).toEqual(byAgent(await memory.latestVitals('r')));
    };
    let i = 0;
    const write = async (s: SqliteStore, n: number) => {
      // 'late' reports rarely and an hour behind: its rows sit in the segment being sealed and in the open one.
      const rows = Array.from({ length: n }, () => (i++ % 1000 === 0 ? vitals('late', 1000 + i * 0.1 - 3600, { latency_ms: i }) : vitals(`a${i % 10}`, 1000 + i * 0.1, { latency_ms: i })));
      await s.appendVitals('r', rows);
      await memory.appendVitals('r', rows);
    };
    const s = new SqliteStore({ path, now: () => 10_000 });
    await s.open();
    // Ids start at 1 (id 0 never exists): after k pieces segment 0 has k × SEAL_PIECE_ROWS − 1 entries.
    const indexed = (k: number) => Math.min(k * SEAL_PIECE_ROWS, SEGMENT_ROWS) - 1;
    await write(s, SEGMENT_ROWS - 1); // fills segment 0; the same transaction indexes its first piece
    await write(s, 10); // the next one, its second
    let db = new Database(path, { readonly: true });
    expect(piece(db)).toEqual({ sealed: [], entries: indexed(2) });
    db.close();
    await check(s, 'after one piece');
    await write(s, 10);
    await s.close();

    // A restart in the middle goes on from the entries already in the file.
    const again = new SqliteStore({ path, now: () => 10_000 });
    await again.open();
    try {
      await check(again, 'after a restart');
      await write(again, 10);
      db = new Database(path, { readonly: true });
      expect(piece(db)).toEqual({ sealed: [], entries: indexed(4) });
      db.close();
      const pieces = Math.ceil(SEGMENT_ROWS / SEAL_PIECE_ROWS);
      for (let k = 4; k < pieces - 1; k++) await write(again, 10);
      await check(again, 'before the last piece');
      await write(again, 10);
      db = new Database(path, { readonly: true });
      expect(piece(db)).toEqual({ sealed: [0], entries: indexed(pieces) });
      db.close();
      await check(again, 'once sealed');

      // Retention while the next segment is half indexed: the pruner finishes sealing it first.
      await write(again, SEGMENT_ROWS);
      await write(again, 10);
      const cut = 1000 + SEGMENT_ROWS * 0.15;
      const pruned = await again.pruneVitals(cut);
      expect(pruned).toBe(await memory.pruneVitals(cut));
      expect(pruned).toBeGreaterThan(SEGMENT_ROWS);
      await check(again, 'after pruning');
      db = new Database(path, { readonly: true });
      expect(db.prepare('SELECT seg FROM segments ORDER BY seg').pluck().all()).toEqual([1]);
      db.close();
    } finally {
      await again.close();
    }
  });
});

describe('sqlite store: upgrade of a schema-1 file', () => {
  it('keeps the rows of a file indexed by (series, ts) and goes on writing segments after them', async () => {
    const path = tmp('upgrade');
    const db = new Database(path);
    // The vitals layout of schema 1, as earlier builds wrote it.
    db.exec(`
      CREATE TABLE runs (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, touched INTEGER NOT NULL);
      CREATE TABLE series (id INTEGER PRIMARY KEY, run INTEGER NOT NULL, agent_id TEXT NOT NULL, UNIQUE (run, agent_id));
      CREATE TABLE vitals (
        id INTEGER PRIMARY KEY, series INTEGER NOT NULL, ts REAL NOT NULL, agent_type TEXT NOT NULL,
        latency_ms REAL NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, token_count INTEGER NOT NULL,
        cost REAL NOT NULL, tool_calls INTEGER NOT NULL, retries INTEGER NOT NULL, success INTEGER NOT NULL,
        model TEXT NOT NULL, provider TEXT NOT NULL, error_type TEXT NOT NULL, prompt_hash TEXT NOT NULL,
        mcp_servers TEXT NOT NULL, tool_names TEXT NOT NULL);
      CREATE INDEX vitals_by_series ON vitals(series, ts);
      INSERT INTO runs VALUES (1, 'old-run', 1, 1);
      INSERT INTO series VALUES (1, 1, 'a'), (2, 1, 'b');
      PRAGMA user_version = 1;
    `);
    const ins = db.prepare(`INSERT INTO vitals (series, ts, agent_type, latency_ms, input_tokens, output_tokens, token_count, cost, tool_calls, retries, success, model, provider, error_type, prompt_hash, mcp_servers, tool_names)
      VALUES (?, ?, 'research', ?, 10, 5, 15, 0.01, 1, 0, 1, 'gpt-4o', 'openai', '', 'h', '', '')`);
    db.transaction(() => {
      for (let i = 0; i < 40_000; i++) ins.run(1 + (i % 2), 1000 + i, i);
    })();
    db.close();

    const s = new SqliteStore({ path });
    await s.open();
    try {
      expect(await s.vitalsCount('old-run')).toBe(40_000);
      expect((await s.recentVitals('old-run', 'b', { limit: 2 })).map((v) => v.latency_ms)).toEqual([39_997, 39_999]);
      await s.appendVitals('old-run', [vitals('a', 50_000, { latency_ms: 7 })]);
      expect((await s.latestVitals('old-run')).map((v) => [v.agent_id, v.latency_ms]).sort()).toEqual([
        ['a', 7],
        ['b', 39_999],
      ]);
      expect(await s.pruneVitals(1000 + 30_000)).toBe(30_000);
      expect(await s.vitalsCount('old-run', 'a')).toBe(5001);
    } finally {
      await s.close();
    }
    const after = new Database(path, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(2);
    // The old rows' full segment was indexed at the upgrade (ids 1..32767), minus what retention removed.
    expect(after.prepare('SELECT seg FROM segments').pluck().all()).toEqual([0]);
    expect(after.prepare('SELECT count(*) FROM vitals_index').pluck().get()).toBe(SEGMENT_ROWS - 1 - 30_000);
    expect(after.prepare('SELECT name FROM sqlite_master WHERE type = ? ORDER BY name').pluck().all('index')).not.toContain('vitals_by_series');
    after.close();
  });
});
