import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECENT_HIGH, RECENT_LOW, SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite-schema.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { runStoreContract, vitals } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'immune-sqlite-'));
const path = join(dir, 'immune.sqlite');

runStoreContract('sqlite (real database file)', {
  open: async () => {
    const s = new SqliteStore({ path });
    await s.open();
    return s;
  },
  reopen: async () => {
    const s = new SqliteStore({ path });
    await s.open();
    return s;
  },
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});

describe('sqlite store: damaged and foreign files', () => {
  it('moves a corrupt database aside, says so, and starts with an empty one', async () => {
    const d = mkdtempSync(join(tmpdir(), 'immune-sqlite-corrupt-'));
    const p = join(d, 'immune.sqlite');
    writeFileSync(p, 'this is not a database, just garbage '.repeat(200));
    const s = new SqliteStore({ path: p });
    try {
      await s.open();
      expect(s.warnings[0]).toMatch(/corrupt.*moved to/);
      const h = await s.health();
      expect(h.ok).toBe(true);
      expect(h.detail).toMatch(/corrupt/);
      expect(readdirSync(d).some((f) => f.startsWith('immune.sqlite.corrupt-'))).toBe(true);
      await s.appendVitals('r', [vitals('a', 1)]);
      expect(await s.vitalsCount('r')).toBe(1);
    } finally {
      await s.close();
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('refuses a database written by a newer version instead of discarding it', async () => {
    const d = mkdtempSync(join(tmpdir(), 'immune-sqlite-newer-'));
    const p = join(d, 'immune.sqlite');
    const db = new Database(p);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    const s = new SqliteStore({ path: p });
    await expect(s.open()).rejects.toMatchObject({ code: 'IMM_ERR_CONFIG', message: expect.stringMatching(/newer/) });
    expect(readdirSync(d)).toEqual(['immune.sqlite']);
    rmSync(d, { recursive: true, force: true });
  });
});

describe('sqlite store: retention does not stall ingest', () => {
  it('commits a write that arrives during a long prune before the prune has finished', async () => {
    const d = mkdtempSync(join(tmpdir(), 'immune-sqlite-prune-'));
    const s = new SqliteStore({ path: join(d, 'immune.sqlite') });
    await s.open();
    try {
      const old = Array.from({ length: 60_000 }, (_, i) => vitals(`a${i % 50}`, 1000 + i / 100));
      for (let i = 0; i < old.length; i += 10_000) await s.appendVitals('r', old.slice(i, i + 10_000));
      const order: string[] = [];
      // The prune is split into 5000-row steps; the write is committed between two of them.
      const prune = s.pruneVitals(1_000_000).then((n) => {
        order.push('prune');
        return n;
      });
      const write = s.appendVitals('r', [vitals('fresh', 2_000_000)]).then(() => order.push('write'));
      expect(await prune).toBe(60_000);
      await write;
      expect(order).toEqual(['write', 'prune']);
      expect(await s.vitalsCount('r')).toBe(1);
    } finally {
      await s.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('sqlite store: recent vitals move into the main table', () => {
  /** Rows per table, read through a second connection (the writer moves rows in its own thread). */
  const tables = (p: string) => {
    const db = new Database(p, { readonly: true });
    try {
      const n = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
      return { main: n('vitals'), recent: n('vitals_recent') };
    } finally {
      db.close();
    }
  };

  it('answers every vitals query the same before and after the move, out-of-order timestamps included', async () => {
    const d = mkdtempSync(join(tmpdir(), 'immune-sqlite-move-'));
    const p = join(d, 'immune.sqlite');
    const s = new SqliteStore({ path: p });
    await s.open();
    try {
      const total = RECENT_HIGH + 10_000;
      const rows = Array.from({ length: total }, (_, i) => vitals(`a${i % 40}`, 1000 + i, { latency_ms: i }));
      for (let i = 0; i < rows.length; i += 10_000) await s.appendVitals('r', rows.slice(i, i + 10_000));
      // Written last but older than everything a7 has: it must not show up as a7's latest.
      await s.appendVitals('r', [vitals('a7', 500, { latency_ms: -1 })]);
      const before = { recent: await s.recentVitals('r', 'a7', { limit: 5 }), window: await s.recentVitals('r', 'a7', { windowSeconds: 400, now: 1000 + total }), latest: await s.latestVitals('r') };

      for (let t = Date.now(); tables(p).recent > RECENT_LOW; ) {
        if (Date.now() - t > 20_000) throw new Error(`rows not moved: ${JSON.stringify(tables(p))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(tables(p).main + tables(p).recent).toBe(total + 1);
      expect(tables(p).main).toBeGreaterThanOrEqual(total + 1 - RECENT_LOW);

      expect(await s.vitalsCount('r')).toBe(total + 1);
      expect(await s.vitalsCount('r', 'a7')).toBe(total / 40 + 1);
      expect(await s.recentVitals('r', 'a7', { limit: 5 })).toEqual(before.recent);
      expect(before.recent.map((v) => v.timestamp)).toEqual([1000 + total - 193, 1000 + total - 153, 1000 + total - 113, 1000 + total - 73, 1000 + total - 33]);
      expect(await s.recentVitals('r', 'a7', { windowSeconds: 400, now: 1000 + total })).toEqual(before.window);
      expect(before.window).toHaveLength(10);
      const latest = await s.latestVitals('r');
      expect(latest).toEqual(before.latest);
      expect(latest).toHaveLength(40);
      expect(latest.find((v) => v.agent_id === 'a7')!.timestamp).toBe(1000 + total - 33);
      expect((await s.recentVitals('r', 'a7', {}))[0]).toMatchObject({ timestamp: 500, latency_ms: -1 });
    } finally {
      await s.close();
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('opens a database of schema 1 (no recent table) and keeps its vitals', async () => {
    const d = mkdtempSync(join(tmpdir(), 'immune-sqlite-v1-'));
    const p = join(d, 'immune.sqlite');
    const s1 = new SqliteStore({ path: p });
    await s1.open();
    await s1.appendVitals('r', [vitals('a', 1), vitals('a', 2)]);
    await s1.close();
    // Turn it into what schema 1 wrote: the rows in vitals, no vitals_recent.
    const db = new Database(p);
    db.exec('INSERT INTO vitals SELECT * FROM vitals_recent; DROP TABLE vitals_recent;');
    db.pragma('user_version = 1');
    db.close();
    const s = new SqliteStore({ path: p });
    await s.open();
    try {
      await s.appendVitals('r', [vitals('a', 3)]);
      expect((await s.recentVitals('r', 'a', {})).map((v) => v.timestamp)).toEqual([1, 2, 3]);
    } finally {
      await s.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});
