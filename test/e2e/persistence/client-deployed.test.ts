import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findInfluxd, startInfluxd, type Influxd } from '../../support/influxd.js';
import { client, sample, startProc, until, type Proc } from './process.js';

/**
 * Client-deployed architecture (issue 5): `immune serve` with
 * SERVER_API_BASE_URL keeps no database; `immune server-api` (its own
 * process) fronts SQLite or a real InfluxDB. The server API is also stopped
 * mid-run and started again: nothing accepted is lost.
 */
const KEYS = { ingest: 'e2e-client-ingest-key-0123456789', operator: 'e2e-client-operator-token-0123456789' };
const SERVER_KEY = 'e2e-server-api-key-0123456789';
const bin = findInfluxd();
const dirs: string[] = [];
const procs: Proc[] = [];
let influx: Influxd | null = null;

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  await influx?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const tmp = (label: string) => {
  const d = mkdtempSync(join(tmpdir(), `immune-e2e-${label}-`));
  dirs.push(d);
  return d;
};

async function serverApi(env: Record<string, string>, port?: number) {
  const p = await startProc(['server-api'], { SERVER_API_KEY: SERVER_KEY, ...env }, async (url) => (await fetch(`${url}/api/v1/health`)).ok, port);
  procs.push(p);
  return p;
}

async function seed(url: string, path: string, runId: string) {
  const r = await fetch(url + path, { headers: { 'x-api-key': SERVER_KEY, 'x-run-id': runId } });
  expect(r.status).toBe(200);
  return r.json() as Promise<any>;
}

for (const backing of ['sqlite', 'influx'] as const) {
  // Real processes on a shared 2-core machine: generous time per test.
  describe.skipIf(backing === 'influx' && 'skip' in bin)(`immune serve → immune server-api → ${backing}`, { timeout: 180_000 }, () => {
    it('persists through the server API, survives the server API going away, and answers the seed endpoints', async () => {
      const backingEnv: Record<string, string> = { IMMUNE_CACHE_DIR: tmp('server') };
      if (backing === 'influx') {
        influx ??= await startInfluxd((bin as { path: string }).path);
        backingEnv.INFLUXDB_URL = influx.url;
        backingEnv.INFLUXDB_BUCKET = 'immune_client_deployed';
      }
      let server = await serverApi(backingEnv);
      const controlCache = tmp('control');
      const env = { IMMUNE_CACHE_DIR: controlCache, INGEST_API_KEY: KEYS.ingest, OPERATOR_TOKEN: KEYS.operator, SERVER_API_BASE_URL: server.url, SERVER_API_KEY: SERVER_KEY, HEALING_STEP_DELAY_SECONDS: '0' };
      const cp = await startProc(['serve'], env, async (url) => (await fetch(`${url}/readyz`)).ok);
      procs.push(cp);
      const api = client(cp.url, KEYS);
      const t0 = Math.floor(Date.now() / 1000) - 1800;
      const agents = ['c1', 'c2', 'c3'];
      let accepted = 0;
      const send = async (records: Array<Record<string, unknown>>) => {
        const r = await api.ingest(records);
        accepted += r.accepted;
        return r;
      };
      for (let i = 0; i < 20; i++) await send(agents.map((a) => sample(a, t0 + i * 5, i)));
      for (let k = 0; k < 4; k++) await send([sample('c3', t0 + 200 + k, k, true)]);
      const runId = (await api.operator('GET', '/api/v1/overview')).run_id as string;
      // The seed's own endpoints see what our control plane decided (views over the event log).
      const pending = await until('c3 pending at the server API', async () => ((await seed(server.url, '/api/v1/approvals/pending', runId)) as Array<{ agent_id: string }>).find((p) => p.agent_id === 'c3'));
      expect(pending).toMatchObject({ agent_id: 'c3', requested_at: expect.any(Number) });
      expect(await until('every accepted record at the server API', async () => ((await seed(server.url, '/api/v1/vitals/total-executions', runId)).total === accepted ? true : null))).toBe(true);

      // The server API goes away mid-run; the control plane queues, reports degraded, and catches up.
      const port = server.port;
      await server.kill9();
      for (let i = 20; i < 25; i++) await send(agents.map((a) => sample(a, t0 + i * 5, i)));
      await api.operator('POST', '/api/v1/agents/c3/reject', {});
      await until('readyz to report the outage', async () => (await fetch(`${cp.url}/readyz`)).status === 503);
      server = await serverApi(backingEnv, port);
      await until('readyz to recover', async () => (await fetch(`${cp.url}/readyz`)).ok, 60_000);
      expect(await until('every accepted record after the outage', async () => ((await seed(server.url, '/api/v1/vitals/total-executions', runId)).total === accepted ? true : null), 90_000)).toBe(true);
      const rejected = (await seed(server.url, '/api/v1/approvals/rejected', runId)) as Array<{ agent_id: string }>;
      expect(rejected.map((r) => r.agent_id)).toEqual(['c3']);
      await cp.stop();
      await server.stop();
    });
  });
}
