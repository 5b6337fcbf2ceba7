import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite-schema.js';
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
