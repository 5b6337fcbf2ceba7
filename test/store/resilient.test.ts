import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { silentLogger } from '../../src/log.js';
import { parseConfig } from '../../src/config.js';
import { startServerApi } from '../../src/server-api/start.js';
import { ApiStore } from '../../src/store/api.js';
import { InfluxStore } from '../../src/store/influx.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { MemoryStore } from '../../src/store/memory.js';
import { ResilientStore } from '../../src/store/resilient.js';
import { findInfluxd, startInfluxd, type Influxd } from '../support/influxd.js';
import { snapshot, vitals } from './contract.js';

const T0 = 1_700_000_000;
const bin = findInfluxd();
if ('skip' in bin) console.warn(`resilient-store outage tests skipped: ${bin.skip}`);

function events(from: number, n: number, agent = 'a'): ImmuneEvent[] {
  return Array.from({ length: n }, (_, i) => ({ seq: from + i, ts: T0 + from + i, agent_id: agent, actor: 'system', reason: 'r', type: 'baseline_ready' }) as ImmuneEvent);
}

describe.skipIf('skip' in bin)('resilient store against a real influxd that goes away', () => {
  let server: Influxd;
  let dir: string;
  beforeAll(async () => {
    server = await startInfluxd((bin as { path: string }).path);
    dir = mkdtempSync(join(tmpdir(), 'immune-resilient-'));
  });
  afterAll(async () => {
    await server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  // The automatic retry is set far out: the tests call recover() when the server is back, instead of sleeping.
  const wrap = (db: string, spill: string, maxQueued = 100_000) =>
    new ResilientStore(new InfluxStore({ url: server.url, database: db, timeoutMs: 2000 }), { spillDir: join(dir, spill), maxQueued, log: silentLogger(), initialBackoffMs: 600_000, random: () => 0.5 });

  it('keeps accepting while InfluxDB is down, reports degraded, and stores every accepted record once it is back', async () => {
    const s = wrap('outage', 'spill-a');
    await s.open();
    await s.appendVitals('r1', [vitals('a', T0), vitals('a', T0 + 1)]);
    await s.appendEvents('r1', events(1, 3));
    expect((await s.health()).ok).toBe(true);

    await server.stop();
    for (let i = 0; i < 10; i++) await s.appendVitals('r1', Array.from({ length: 50 }, (_, k) => vitals('a', T0 + 10 + i * 50 + k)));
    await s.appendEvents('r1', events(4, 5));
    await s.saveSnapshot('r1', snapshot(5, 8));
    await s.upsertAgent('r1', { agent_id: 'a', meta: { agent_type: 't', model: 'm', provider: 'p', mcp_servers: [], source: 'external' } });
    const h = await s.health();
    expect(h.ok).toBe(false);
    expect(h.queue).toMatchObject({ degraded: true, queued: 506, spilled: 506, dropped: 0 });
    expect(h.detail).toMatch(/degraded: .*unreachable/);
    expect(existsSync(join(dir, 'spill-a', 'queue.ndjson'))).toBe(true);

    await server.start();
    await s.recover();
    expect(s.queueStats()).toMatchObject({ degraded: false, queued: 0 });
    expect(existsSync(join(dir, 'spill-a', 'queue.ndjson'))).toBe(false);
    expect(await s.vitalsCount('r1')).toBe(502);
    expect((await s.readEvents('r1')).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await s.loadSnapshot('r1')).toEqual(snapshot(5, 8));
    expect(await s.agents('r1')).toHaveLength(1);
    // Writes go straight through again.
    await s.appendEvents('r1', events(9, 1));
    expect((await s.readEvents('r1', { afterSeq: 8 })).map((e) => e.seq)).toEqual([9]);
    await s.close();
  });

  it('counts vitals beyond the bound as dropped, never events, and says so in health', async () => {
    const s = wrap('bound', 'spill-b', 1000);
    await s.open();
    await server.stop();
    await s.appendVitals('r2', Array.from({ length: 1500 }, (_, k) => vitals('b', T0 + k)));
    await s.appendEvents('r2', events(1, 20, 'b'));
    await s.appendVitals('r2', [vitals('b', T0 + 5000)]);
    const h = await s.health();
    expect(h.queue).toMatchObject({ degraded: true, dropped: 501, queued: 1020 });
    expect(h.queue!.last_error).toMatch(/queue full/);
    await server.start();
    await s.recover();
    expect(await s.vitalsCount('r2')).toBe(1000);
    expect(await s.readEvents('r2')).toHaveLength(20);
    expect(s.queueStats().dropped).toBe(501);
    await s.close();
  });

  it('survives its own restart while degraded: the spill left on disk is delivered by the next process', async () => {
    const first = wrap('restart', 'spill-c');
    await first.open();
    await server.stop();
    await first.appendEvents('r3', events(1, 4, 'c'));
    await first.appendVitals('r3', [vitals('c', T0), vitals('c', T0 + 1), vitals('c', T0 + 2)]);
    await first.close();

    await server.start();
    const second = wrap('restart', 'spill-c');
    await second.open(); // finds the spill and delivers it before returning
    expect(second.queueStats()).toMatchObject({ degraded: false, queued: 0 });
    expect((await second.readEvents('r3')).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(await second.vitalsCount('r3')).toBe(3);
    await second.close();
  });

  it('starts degraded when InfluxDB is down at start, and catches up later', async () => {
    await server.stop();
    const s = wrap('late', 'spill-d');
    await s.open();
    expect(s.queueStats().degraded).toBe(true);
    await s.appendEvents('r4', events(1, 2, 'd'));
    await server.start();
    await s.recover();
    expect((await s.readEvents('r4')).map((e) => e.seq)).toEqual([1, 2]);
    await s.close();
  });
});

describe('resilient store: a write the store refuses as invalid', () => {
  it('is counted as rejected and logged, and does not block later writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'immune-resilient-bad-'));
    const inner = new MemoryStore();
    let refuse = true;
    const orig = inner.appendVitals.bind(inner);
    // The one stand-in here: a backend that refuses a batch as malformed (no real backend refuses valid Vitals on demand).
    inner.appendVitals = async (run, batch) => {
      if (refuse) throw new Error('field type conflict');
      return orig(run, batch);
    };
    const s = new ResilientStore(inner, { spillDir: dir, maxQueued: 1000, log: silentLogger() });
    await s.open();
    await s.appendVitals('r', [vitals('x', T0), vitals('x', T0 + 1)]);
    refuse = false;
    await s.appendVitals('r', [vitals('x', T0 + 2)]);
    expect(s.queueStats()).toMatchObject({ rejected: 2, dropped: 0, degraded: false });
    expect(s.queueStats().last_error).toMatch(/field type conflict/);
    expect(await s.vitalsCount('r')).toBe(1);
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('resilient store against a real immune server-api that goes away', () => {
  it('spills while the server API is down and delivers everything when it is back on the same address', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'immune-resilient-api-'));
    const backing = new SqliteStore({ path: join(dir, 'server.sqlite') });
    await backing.open();
    const config = parseConfig({}, { serverApiKey: 'k' });
    let server = await startServerApi({ config, log: silentLogger(), store: backing, port: 0, host: '127.0.0.1' });
    const port = Number(new URL(server.url).port);
    const s = new ResilientStore(new ApiStore({ baseUrl: server.url, apiKey: 'k', timeoutMs: 2000 }), { spillDir: join(dir, 'spill'), maxQueued: 10_000, log: silentLogger(), initialBackoffMs: 600_000 });
    try {
      await s.open();
      await s.appendEvents('r', events(1, 2, 'z'));
      await server.close();
      await s.appendEvents('r', events(3, 3, 'z'));
      await s.appendVitals('r', [vitals('z', T0), vitals('z', T0 + 1)]);
      expect((await s.health()).queue).toMatchObject({ degraded: true, queued: 5 });
      server = await startServerApi({ config, log: silentLogger(), store: backing, port, host: '127.0.0.1' });
      await s.recover();
      expect(s.queueStats()).toMatchObject({ degraded: false, queued: 0, dropped: 0 });
      expect((await backing.readEvents('r')).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(await backing.vitalsCount('r')).toBe(2);
    } finally {
      await s.close();
      await server.close();
      await backing.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
