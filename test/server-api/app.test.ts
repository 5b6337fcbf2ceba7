import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { silentLogger } from '../../src/log.js';
import { startServerApi, type RunningServerApi } from '../../src/server-api/start.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { snapshot, vitals } from '../store/contract.js';

const KEY = 'k-123456';
let api: RunningServerApi;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'immune-server-api-'));
  const store = new SqliteStore({ path: join(dir, 'immune.sqlite') });
  await store.open();
  api = await startServerApi({ config: parseConfig({}, { serverApiKey: KEY }), log: silentLogger(), store, port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await api.close();
  await api.store.close();
  rmSync(dir, { recursive: true, force: true });
});

let runN = 0;
const newRun = () => `run-t${++runN}`;

async function call(method: string, path: string, o: { run?: string; body?: unknown; raw?: string; headers?: Record<string, string>; auth?: 'key' | 'bearer' | 'none' } = {}) {
  const headers: Record<string, string> = { ...o.headers };
  if (o.auth !== 'none') {
    if (o.auth === 'bearer') headers.authorization = `Bearer ${KEY}`;
    else headers['x-api-key'] = KEY;
  }
  if (o.run) headers['x-run-id'] = o.run;
  if (o.body !== undefined || o.raw !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(api.url + path, { method, headers, body: o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body)) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : (JSON.parse(text) as any) };
}

describe('immune server-api: the seed contract', () => {
  it('answers health without a key and everything else only with one (X-API-Key or Bearer)', async () => {
    expect(await call('GET', '/api/v1/health', { auth: 'none' })).toMatchObject({ status: 200, body: { status: 'healthy', store: 'sqlite' } });
    const denied = await call('GET', '/api/v1/vitals/total-executions', { auth: 'none' });
    expect(denied).toMatchObject({ status: 401, body: { ok: false, code: 'IMM_ERR_UNAUTHORIZED' } });
    expect((await call('GET', '/api/v1/vitals/total-executions', { headers: { 'x-api-key': 'wrong' }, auth: 'none' })).status).toBe(401);
    expect((await call('GET', '/api/v1/vitals/total-executions', { auth: 'bearer' })).status).toBe(200);
    expect((await call('GET', '/api/v1/vitals/total-executions')).status).toBe(200);
  });

  it('creates runs and scopes every read to the run (X-Run-Id or ?run_id)', async () => {
    const { body } = await call('POST', '/api/v1/run');
    expect(body.run_id).toMatch(/^run-[0-9a-f]{12}$/);
    expect((await call('GET', '/api/v1/runs/latest')).body).toEqual({ run_id: body.run_id });
    expect((await call('POST', '/api/v1/vitals', { run: body.run_id, body: { agent_id: 'a1', latency_ms: 10, timestamp: 1000 } })).status).toBe(204);
    expect((await call('GET', `/api/v1/vitals/total-executions?run_id=${body.run_id}`)).body).toEqual({ total: 1 });
    expect((await call('GET', '/api/v1/vitals/total-executions', { run: newRun() })).body).toEqual({ total: 0 });
  });

  it('stores seed-shaped vitals and answers recent/all/latest/counts in the seed shapes', async () => {
    const run = newRun();
    const now = Date.now() / 1000;
    for (const [i, ts] of [now - 100, now - 10, now - 1].entries()) {
      expect((await call('POST', '/api/v1/vitals', { run, body: { agent_id: 'a1', agent_type: 'Research', latency_ms: 100 + i, input_tokens: 5, output_tokens: 6, tool_calls: 1, retries: 0, success: true, timestamp: ts } })).status).toBe(204);
    }
    const recent = await call('GET', '/api/v1/vitals/recent?agent_id=a1&window_seconds=30', { run });
    expect(recent.body.map((v: { latency_ms: number }) => v.latency_ms)).toEqual([101, 102]);
    expect(recent.body[0]).toMatchObject({ agent_id: 'a1', token_count: 11, success: true, agent_type: 'Research' });
    expect((await call('GET', '/api/v1/vitals/all?agent_id=a1', { run })).body).toHaveLength(3);
    expect((await call('GET', '/api/v1/vitals/latest?agent_id=a1', { run })).body.latency_ms).toBe(102);
    expect((await call('GET', '/api/v1/vitals/latest?agent_id=nobody', { run })).status).toBe(404);
    expect((await call('GET', '/api/v1/vitals/execution-count?agent_id=a1', { run })).body).toEqual({ count: 3 });
    expect((await call('GET', '/api/v1/vitals/total-executions', { run })).body).toEqual({ total: 3 });
  });

  it('keeps a seed client\'s approval, healing and action-log writes and answers the seed\'s queries from them', async () => {
    const run = newRun();
    const post = (path: string, body: unknown) => call('POST', path, { run, body });
    expect((await post('/api/v1/events/infection', { agent_id: 'a', severity: 6.04, anomalies: ['token_spike'], deviations: { tokens: 6.04 }, diagnosis_type: 'prompt_injection' })).status).toBe(204);
    expect((await post('/api/v1/events/quarantine', { agent_id: 'a', action: 'quarantine' })).status).toBe(204);
    await post('/api/v1/approvals', { agent_id: 'a', decision: 'pending', severity: 6.04, anomalies: ['token_spike'], diagnosis_type: 'prompt_injection', reasoning: 'tokens up' });
    await post('/api/v1/approvals', { agent_id: 'b', decision: 'pending', severity: 7 });
    await post('/api/v1/approvals', { agent_id: 'b', decision: 'rejected', severity: 7 });
    const pending = (await call('GET', '/api/v1/approvals/pending', { run })).body;
    expect(pending).toEqual([{ agent_id: 'a', severity: 6, anomalies: ['token_spike'], diagnosis_type: 'prompt_injection', reasoning: 'tokens up', requested_at: expect.any(Number) }]);
    expect((await call('GET', '/api/v1/approvals/rejected', { run })).body.map((r: { agent_id: string }) => r.agent_id)).toEqual(['b']);
    expect((await call('GET', '/api/v1/approvals/latest?agent_id=b', { run })).body).toMatchObject({ agent_id: 'b', decision: 'rejected' });
    expect((await call('GET', '/api/v1/approvals/latest?agent_id=zzz', { run })).body).toEqual({});
    expect(Object.keys((await call('GET', '/api/v1/approvals/latest', { run })).body).sort()).toEqual(['a', 'b']);

    await post('/api/v1/healing/events', { agent_id: 'a', diagnosis_type: 'prompt_injection', healing_action: 'reset_memory', success: true, validation_passed: false });
    await post('/api/v1/healing/events', { agent_id: 'a', diagnosis_type: 'prompt_injection', healing_action: 'rollback_prompt', success: true, validation_passed: true });
    await post('/api/v1/healing/events', { agent_id: 'c', diagnosis_type: 'prompt_injection', healing_action: 'rollback_prompt', success: true, validation_passed: true });
    expect((await call('GET', '/api/v1/healing/failed-actions?agent_id=a&diagnosis_type=prompt_injection', { run })).body).toEqual({ actions: ['reset_memory'] });
    expect((await call('GET', '/api/v1/healing/total', { run })).body).toEqual({ total: 3 });
    expect((await call('GET', '/api/v1/healing/success-rate', { run })).body.rate).toBeCloseTo(2 / 3);
    expect((await call('GET', '/api/v1/healing/pattern-summary', { run })).body).toEqual({ prompt_injection: { best_action: 'rollback_prompt', success_count: 2 } });

    for (let i = 0; i < 3; i++) await post('/api/v1/action-log', { action_type: `t${i}`, agent_id: 'a', payload: { action: 'reset_memory', success: i % 2 === 0 } });
    const log = (await call('GET', '/api/v1/action-log/recent?limit=2', { run })).body;
    expect(log.map((r: { type: string }) => r.type)).toEqual(['t1', 't2']);
    expect(log[1]).toMatchObject({ agent_id: 'a', action: 'reset_memory', success: true });
  });

  it('answers the same seed queries from our own event log (views over the events)', async () => {
    const run = newRun();
    const inf = { agent_id: 'x', timestamp: T(3), max_deviation: 8.2, anomalies: ['cost_spike'], deviations: { cost: 8.2 }, severity: 'severe' };
    const log: ImmuneEvent[] = [
      { seq: 1, ts: T(1), agent_id: 'x', actor: 'system', reason: 'ready', type: 'baseline_ready' },
      { seq: 2, ts: T(3), agent_id: 'x', actor: 'system', reason: 'sick', type: 'infection_detected', infection: inf, diagnosis: { agent_id: 'x', hypotheses: [{ diagnosis: 'cost_overrun', confidence: 0.7, reasoning: 'cost' }] } },
      { seq: 3, ts: T(3), agent_id: 'x', actor: 'system', reason: 'needs a human', type: 'approval_requested' },
      { seq: 4, ts: T(4), agent_id: 'x', actor: 'operator:ann', reason: 'ok', type: 'approved' },
      { seq: 5, ts: T(5), agent_id: 'x', actor: 'system', reason: 'go', type: 'action_started', attempt_id: 'x:5', action: 'reduce_autonomy', diagnosis: 'cost_overrun', trigger: 'after_approval' },
      { seq: 6, ts: T(6), agent_id: 'x', actor: 'system', reason: 'no', type: 'action_failed', attempt_id: 'x:5', action: 'reduce_autonomy', diagnosis: 'cost_overrun', detail: 'agent unreachable' },
    ] as ImmuneEvent[];
    expect((await call('POST', '/api/v1/events/batch', { run, body: { events: log.slice(0, 3) } })).body).toEqual({ ok: true, accepted: 3 });
    expect((await call('GET', '/api/v1/approvals/pending', { run })).body).toEqual([{ agent_id: 'x', severity: 8.2, anomalies: ['cost_spike'], diagnosis_type: 'cost_overrun', reasoning: 'cost', requested_at: T(3) }]);
    await call('POST', '/api/v1/events/batch', { run, body: { events: log.slice(3) } });
    expect((await call('GET', '/api/v1/approvals/pending', { run })).body).toEqual([]);
    expect((await call('GET', '/api/v1/healing/failed-actions?agent_id=x&diagnosis_type=cost_overrun', { run })).body).toEqual({ actions: ['reduce_autonomy'] });
    const actions = (await call('GET', '/api/v1/action-log/recent?limit=3', { run })).body;
    expect(actions.map((a: { type: string }) => a.type)).toEqual(['approved', 'action_started', 'action_failed']);
    expect(actions[1]).toMatchObject({ action: 'reduce_autonomy', trigger: 'after_approval' });
    expect((await call('GET', '/api/v1/events?after_seq=4&types=action_failed', { run })).body.map((e: ImmuneEvent) => e.seq)).toEqual([6]);
  });

  it('serves baselines from a seed client\'s profile or from our snapshot', async () => {
    const run = newRun();
    expect((await call('GET', '/api/v1/baselines/a', { run })).status).toBe(404);
    expect((await call('PUT', '/api/v1/snapshot', { run, body: snapshot(3, 9) })).status).toBe(204);
    const mine = (await call('GET', '/api/v1/baselines/agent-1', { run })).body;
    expect(mine).toMatchObject({ agent_id: 'agent-1', sample_size: 41 });
    expect(mine.latency_mean).toBeGreaterThan(0);
    expect((await call('POST', '/api/v1/baselines', { run, body: { agent_id: 'seedy', latency_mean: 100, latency_stddev: 5, latency_p95: 110, sample_size: 20 } })).status).toBe(204);
    expect((await call('GET', '/api/v1/baselines/seedy', { run })).body).toEqual({ agent_id: 'seedy', latency_mean: 100, latency_stddev: 5, latency_p95: 110, sample_size: 20 });
    expect((await call('GET', '/api/v1/baselines/count', { run })).body).toEqual({ count: 4 });
    expect((await call('GET', '/api/v1/snapshot', { run })).body).toEqual(snapshot(3, 9));
  });
});

const T = (k: number) => 1_700_000_000 + k;

describe('immune server-api: bad input gets a clear 4xx and changes nothing', () => {
  it.each([
    ['malformed JSON', 'POST', '/api/v1/vitals', { raw: '{"agent_id": "a",' }, 400, 'IMM_ERR_MALFORMED_JSON', /not valid JSON/],
    ['empty body', 'POST', '/api/v1/vitals', { raw: '' }, 400, 'IMM_ERR_MALFORMED_JSON', /empty/],
    ['wrong content type', 'POST', '/api/v1/vitals', { raw: 'agent_id=a', headers: { 'content-type': 'text/csv' } }, 415, 'IMM_ERR_UNSUPPORTED_MEDIA', /Content-Type/],
    ['missing agent_id', 'POST', '/api/v1/vitals', { body: { latency_ms: 5 } }, 400, 'IMM_ERR_VALIDATION', /'agent_id' is required/],
    ['negative latency', 'POST', '/api/v1/vitals', { body: { agent_id: 'a', latency_ms: -1 } }, 400, 'IMM_ERR_VALIDATION', /latency_ms/],
    ['string tokens', 'POST', '/api/v1/vitals', { body: { agent_id: 'a', input_tokens: 'many' } }, 400, 'IMM_ERR_VALIDATION', /input_tokens/],
    ['approval without decision', 'POST', '/api/v1/approvals', { body: { agent_id: 'a' } }, 400, 'IMM_ERR_VALIDATION', /decision/],
    ['healing event with a numeric action', 'POST', '/api/v1/healing/events', { body: { agent_id: 'a', diagnosis_type: 'x', healing_action: 5 } }, 400, 'IMM_ERR_VALIDATION', /healing_action/],
    ['infection with a bad agent id', 'POST', '/api/v1/events/infection', { body: { agent_id: 'has space' } }, 400, 'IMM_ERR_VALIDATION', /agent_id/],
    ['recent without agent_id', 'GET', '/api/v1/vitals/recent', {}, 400, 'IMM_ERR_VALIDATION', /agent_id/],
    ['negative window', 'GET', '/api/v1/vitals/recent?agent_id=a&window_seconds=-5', {}, 400, 'IMM_ERR_VALIDATION', /window_seconds/],
    ['limit not a number', 'GET', '/api/v1/action-log/recent?limit=lots', {}, 400, 'IMM_ERR_VALIDATION', /limit/],
    ['a run id with spaces', 'GET', '/api/v1/vitals/total-executions', { headers: { 'x-run-id': 'run 1' } }, 400, 'IMM_ERR_VALIDATION', /run id/],
    ['event without seq', 'POST', '/api/v1/events/batch', { body: { events: [{ ts: 1, agent_id: 'a', type: 'baseline_ready', actor: 's', reason: '' }] } }, 400, 'IMM_ERR_VALIDATION', /seq/],
    ['an event of an unknown type', 'POST', '/api/v1/events/batch', { body: { events: [{ seq: 1, ts: 1, agent_id: 'a', type: 'made_up', actor: 's', reason: '' }] } }, 400, 'IMM_ERR_VALIDATION', /type/],
    ['snapshot without agents', 'PUT', '/api/v1/snapshot', { body: { seq: 1 } }, 400, 'IMM_ERR_VALIDATION', /agents/],
    ['unknown record measurement', 'GET', '/api/v1/records?measurement=passwords', {}, 400, 'IMM_ERR_VALIDATION', /measurement/],
    ['unknown route', 'GET', '/api/v1/nope', {}, 404, 'IMM_ERR_NOT_FOUND', /no route/],
  ] as const)('%s', async (_name, method, path, o, status, code, message) => {
    const r = await call(method, path, o as Parameters<typeof call>[2]);
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ ok: false, code });
    expect(r.body.error).toMatch(message);
    expect((await call('GET', '/api/v1/vitals/total-executions', { run: 'default' })).body).toEqual({ total: 0 });
  });

  it('rejects a vitals batch with one bad record whole, naming its index', async () => {
    const run = newRun();
    const r = await call('POST', '/api/v1/vitals/batch', { run, body: { vitals: [vitals('a', T(1)), vitals('a', T(2)), { agent_id: 'a', cost: Number.MAX_VALUE * 10 }] } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'IMM_ERR_VALIDATION', index: 2 });
    expect(r.body.error).toMatch(/record 2/);
    expect((await call('GET', '/api/v1/vitals/total-executions', { run })).body).toEqual({ total: 0 });
    expect((await call('POST', '/api/v1/vitals/batch', { run, body: [vitals('a', T(1)), vitals('a', T(2))] })).body).toEqual({ ok: true, accepted: 2 });
  });

  it('refuses bodies over the limit with 413', async () => {
    // A dedicated server with a small limit: the default (64 MiB) is sized for fleet snapshots.
    const { buildServerApi } = await import('../../src/server-api/app.js');
    const app = await buildServerApi({ store: api.store, log: silentLogger(), apiKey: '', bodyLimit: 1024 });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const res = await fetch(`${url}/api/v1/vitals/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vitals: Array.from({ length: 20 }, (_, i) => vitals('a', T(i))) }) });
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ ok: false, code: 'IMM_ERR_BODY_TOO_LARGE' });
    } finally {
      await app.close();
    }
  });
});

describe('immune server-api in front of a store that is down', () => {
  it('answers 503 with Retry-After (so clients queue and retry) and reports itself unhealthy', async () => {
    const { freePort } = await import('../support/influxd.js');
    const dead = `http://127.0.0.1:${await freePort()}`;
    // Started while its InfluxDB is down (compose, Kubernetes): it comes up anyway and answers 503 until the database is back.
    const app = await startServerApi({ config: parseConfig({ INFLUXDB_URL: dead }, { serverApiKey: '' }), log: silentLogger(), port: 0, host: '127.0.0.1' });
    try {
      const w = await fetch(`${app.url}/api/v1/vitals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent_id: 'a', latency_ms: 1 }) });
      expect(w.status).toBe(503);
      expect(w.headers.get('retry-after')).toBe('1');
      expect(await w.json()).toMatchObject({ ok: false, code: 'IMM_ERR_STORE_UNAVAILABLE' });
      const h = await fetch(`${app.url}/api/v1/health`);
      expect(h.status).toBe(503);
      expect(await h.json()).toMatchObject({ status: 'unhealthy', store: 'influx' });
    } finally {
      await app.close();
    }
  });
});
