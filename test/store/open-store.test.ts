import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createStore, openStore, selectStoreKind } from '../../src/store/open-store.js';
import { RetentionPruner } from '../../src/store/retention.js';
import { vitals } from './contract.js';

describe('store selection (seed rules)', () => {
  it.each([
    [{}, 'sqlite'],
    [{ INFLUXDB_URL: 'http://127.0.0.1:8086', INFLUXDB_TOKEN: 't' }, 'influx'],
    [{ SERVER_API_BASE_URL: 'http://127.0.0.1:8000', INFLUXDB_URL: 'http://127.0.0.1:8086' }, 'api'],
    [{ IMMUNE_STORE: 'memory', SERVER_API_BASE_URL: 'http://127.0.0.1:8000' }, 'memory'],
    [{ IMMUNE_STORE: 'sqlite', INFLUXDB_URL: 'http://127.0.0.1:8086' }, 'sqlite'],
  ])('%o → %s', (env, kind) => {
    expect(selectStoreKind(parseConfig(env))).toBe(kind);
  });

  it('names the missing setting when a store is forced without its URL', () => {
    expect(() => createStore(parseConfig({ IMMUNE_STORE: 'influx' }), silentLogger())).toThrow(/IMMUNE_STORE=influx needs INFLUXDB_URL/);
    expect(() => createStore(parseConfig({ IMMUNE_STORE: 'api' }), silentLogger())).toThrow(/needs SERVER_API_BASE_URL/);
  });

  it('opens the embedded database inside the cache directory, behind the resilient queue', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'immune-open-'));
    const s = await openStore(parseConfig({ IMMUNE_CACHE_DIR: dir }), silentLogger());
    try {
      expect(s.kind).toBe('sqlite');
      await s.appendVitals('r', [vitals('a', 1)]);
      const h = await s.health();
      expect(h).toMatchObject({ ok: true, kind: 'sqlite', queue: { queued: 0, dropped: 0, degraded: false } });
      expect(h.detail).toContain(join(dir, 'immune.sqlite'));
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('retention', () => {
  it('deletes vitals older than the retention from the real database and keeps the rest and the events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'immune-retention-'));
    const s = await openStore(parseConfig({ IMMUNE_CACHE_DIR: dir }), silentLogger());
    const now = 1_700_000_000;
    const day = 86_400;
    try {
      await s.appendVitals('r', Array.from({ length: 12_000 }, (_, i) => vitals('a', now - 9 * day + i)));
      await s.appendVitals('r', [vitals('a', now - 6 * day), vitals('a', now - 1)]);
      await s.appendEvents('r', [{ seq: 1, ts: now - 30 * day, agent_id: 'a', actor: 'system', reason: '', type: 'baseline_ready' }]);
      const pruner = new RetentionPruner(s, { retentionDays: 7, log: silentLogger(), now: () => now });
      // More than one 5000-row chunk: the pass is split into short transactions.
      expect(await pruner.runOnce()).toBe(12_000);
      expect(await s.vitalsCount('r')).toBe(2);
      expect(await s.readEvents('r')).toHaveLength(1);
      expect(await pruner.runOnce()).toBe(0);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
