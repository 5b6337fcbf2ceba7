import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { vitals } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'immune-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite store: the WAL is checkpointed off the writer', () => {
  it('copies committed vitals into the database file long before the writer’s own 64 MB threshold', async () => {
    const path = join(dir, 'immune.sqlite');
    const s = new SqliteStore({ path });
    await s.open();
    try {
      const before = statSync(path).size;
      // ~12 MB of WAL in small commits, as single-record ingest writes them: far below the writer's automatic checkpoint.
      for (let b = 0; b < 200; b++) {
        await s.appendVitals('r', Array.from({ length: 400 }, (_, i) => vitals(`a${i % 50}`, 1000 + b * 400 + i)));
      }
      const deadline = Date.now() + 5000;
      while (statSync(path).size < before + 8_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(statSync(path).size - before).toBeGreaterThan(8_000_000);
      expect(await s.vitalsCount('r')).toBe(80_000);
    } finally {
      await s.close();
    }
  });
});
