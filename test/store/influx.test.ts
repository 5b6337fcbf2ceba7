import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxStore } from '../../src/store/influx.js';
import { findInfluxd, startInfluxd, type Influxd } from '../support/influxd.js';
import { runStoreContract, vitals } from './contract.js';

const bin = findInfluxd();
let server: Influxd | null = null;

if ('skip' in bin) {
  // Said out loud so a green run without InfluxDB is never mistaken for a tested adapter.
  console.warn(`InfluxDB contract suite skipped: ${bin.skip}`);
} else {
  runStoreContract('influx (real influxd 1.x)', {
    open: async () => {
      server = await startInfluxd(bin.path);
      const s = new InfluxStore({ url: server.url, database: 'immune_test' });
      await s.open();
      return s;
    },
    reopen: async () => {
      const s = new InfluxStore({ url: server!.url, database: 'immune_test' });
      await s.open();
      return s;
    },
    cleanup: async () => server?.destroy(),
  });
}

describe.skipIf('skip' in bin)('influx store with authentication on (1.x: user:password as Basic auth)', () => {
  let secured: Influxd;
  beforeAll(async () => {
    secured = await startInfluxd((bin as { path: string }).path, { auth: true });
    // With no user yet, 1.x lets anyone create the first admin.
    const r = await fetch(`${secured.url}/query`, { method: 'POST', body: new URLSearchParams({ q: "CREATE USER admin WITH PASSWORD 's3cret' WITH ALL PRIVILEGES" }) });
    expect(r.status).toBe(200);
  });
  afterAll(async () => secured?.destroy());

  it('writes and reads with the right credentials', async () => {
    const s = new InfluxStore({ url: secured.url, token: 'admin:s3cret', database: 'auth_test' });
    await s.open();
    await s.appendVitals('r', [vitals('a', 1_700_000_000), vitals('a', 1_700_000_001)]);
    expect(await s.vitalsCount('r')).toBe(2);
    expect(await s.health()).toMatchObject({ ok: true, kind: 'influx' });
  });

  it('works for a user who may write and read but not create databases', async () => {
    const q = (stmt: string) => fetch(`${secured.url}/query`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` }, body: new URLSearchParams({ q: stmt }) });
    expect((await q('CREATE DATABASE "limited_db"')).status).toBe(200);
    expect((await q("CREATE USER writer WITH PASSWORD 'w'")).status).toBe(200);
    expect((await q('GRANT ALL ON "limited_db" TO writer')).status).toBe(200);
    const s = new InfluxStore({ url: secured.url, token: 'writer:w', database: 'limited_db' });
    await s.open();
    await s.appendVitals('r', [vitals('w', 1_700_000_000)]);
    expect(await s.vitalsCount('r')).toBe(1);
  });

  it('reports wrong credentials clearly and keeps them retryable (data is queued, not dropped)', async () => {
    const s = new InfluxStore({ url: secured.url, token: 'admin:wrong', database: 'auth_test' });
    const h = await s.health();
    expect(h.ok).toBe(false);
    expect(h.detail).toMatch(/401/);
    await expect(s.appendVitals('r', [vitals('a', 1_700_000_002)])).rejects.toMatchObject({ code: 'IMM_ERR_STORE_UNAVAILABLE', retryable: true, message: expect.stringMatching(/401/) });
  });
});
