import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SNAPSHOT_PART_BYTES } from '../../src/store/sqlite-snapshots.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { snapshot, vitals } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'immune-snap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const partsIn = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare<[], { gen: number; n: number }>('SELECT gen, count(*) AS n FROM snapshot_parts GROUP BY gen ORDER BY gen').all();
  } finally {
    db.close();
  }
};

describe('sqlite store: snapshots are written a part per write transaction', () => {
  it('stores a multi-part snapshot whole, replaces it, drops the old parts, and lets vitals through meanwhile', async () => {
    const path = join(dir, 'immune.sqlite');
    const s = new SqliteStore({ path });
    await s.open();
    try {
      const big = snapshot(3000, 10); // ~2 MB of JSON: several parts
      const bytes = Buffer.from(JSON.stringify(big));
      expect(bytes.length).toBeGreaterThan(4 * SNAPSHOT_PART_BYTES);
      // Vitals written one after another while the snapshot is being stored are acknowledged in between
      // its parts, not after all of them.
      let done = false;
      const saving = s.saveSnapshot('r', big, bytes).then(() => (done = true));
      let acksMeanwhile = 0;
      for (let i = 0; !done && i < 1000; i++) {
        await s.appendVitals('r', [vitals('a', 1000 + i)]);
        if (!done) acksMeanwhile += 1;
      }
      await saving;
      expect(acksMeanwhile).toBeGreaterThanOrEqual(3);
      expect(await s.loadSnapshot('r')).toEqual(big);
      const first = partsIn(path);
      expect(first).toEqual([{ gen: first[0].gen, n: Math.ceil(bytes.length / SNAPSHOT_PART_BYTES) }]);

      const small = snapshot(20, 11, 1);
      await s.saveSnapshot('r', small, Buffer.from(JSON.stringify(small)));
      expect(await s.loadSnapshot('r')).toEqual(small);
      // The replaced snapshot's parts are deleted in the turns that follow.
      const deadline = Date.now() + 5000;
      while (partsIn(path).length > 1 && Date.now() < deadline) {
        await s.appendVitals('r', [vitals('a', 5000)]);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(partsIn(path)).toEqual([{ gen: first[0].gen + 1, n: 1 }]);
    } finally {
      await s.close();
    }
    // And after a restart.
    const again = new SqliteStore({ path });
    await again.open();
    try {
      expect((await again.loadSnapshot('r'))?.seq).toBe(11);
      // A part gone missing is an error naming it, not a truncated snapshot.
      const db = new Database(path);
      db.prepare('DELETE FROM snapshot_parts').run();
      db.close();
      await expect(again.loadSnapshot('r')).rejects.toThrow(/snapshot parts missing: 0 of 1/);
    } finally {
      await again.close();
    }
  });
});
