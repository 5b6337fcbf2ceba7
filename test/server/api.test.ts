import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_KEY, OPERATOR_TOKEN, startProduct, vitalsFor } from '../support/product.js';

type Server = Awaited<ReturnType<typeof startProduct>>;
let s: Server;

beforeAll(async () => {
  s = await startProduct({ BODY_LIMIT_BYTES: String(64 * 1024) });
});
afterAll(async () => {
  await s.stop();
});

/** Brings an agent to a ready baseline, then makes it sick enough to need approval. */
async function makePending(id: string): Promise<void> {
  const next = vitalsFor(id, id.length);
  const batch = Array.from({ length: 20 }, () => next());
  expect((await s.ingest(batch)).status).toBe(200);
  for (let i = 0; i < 5; i++) {
    const r = await s.ingest(next({ tools: 10, input: 10 }));
    if (r.json.status === 'pending_approval') return;
  }
  throw new Error(`${id} did not reach pending_approval`);
}

async function statusOf(id: string): Promise<string> {
  return (await s.op('GET', `/api/v1/agents/${id}`)).json.agent.status;
}

describe('health', () => {
  it('liveness and readiness answer without credentials', async () => {
    expect((await s.call('GET', '/healthz')).json).toEqual({ ok: true });
    const ready = await s.call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.store).toMatchObject({ ok: true, kind: 'memory' });
  });
});

describe('ingest', () => {
  it('accepts one record and answers with the agent status', async () => {
    const r = await s.ingest(vitalsFor('ing-1')());
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ ok: true, accepted: 1, agent_id: 'ing-1', status: 'learning', directive: null });
  });

  it.each([
    ['missing', {}, 'missing X-API-KEY'],
    ['wrong', { 'x-api-key': 'nope' }, 'wrong X-API-KEY'],
  ])('rejects a %s key with 401', async (_n, headers, msg) => {
    const r = await s.call('POST', '/api/v1/ingest', { body: vitalsFor('x')(), headers });
    expect(r.status).toBe(401);
    expect(r.json).toMatchObject({ ok: false, code: 'IMM_ERR_UNAUTHORIZED' });
    expect(r.json.error).toContain(msg);
  });

  it('checks the key of every request on a keep-alive connection, not only the first', async () => {
    // One socket for all three requests: a key verified on a connection must not let a wrong one through it.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (key: string) =>
      new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
        const body = JSON.stringify(vitalsFor('keepalive')());
        const req = http.request(`${s.base}/api/v1/ingest`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'x-api-key': key } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const first = await post(INGEST_KEY);
      const wrong = await post(`${INGEST_KEY.slice(0, -1)}x`);
      const again = await post(INGEST_KEY);
      expect([first.status, wrong.status, again.status]).toEqual([200, 401, 200]);
      expect(wrong.socket).toBe(first.socket);
      expect(again.socket).toBe(first.socket);
    } finally {
      agent.destroy();
    }
  });

  it('rejects malformed JSON', async () => {
    const r = await s.call('POST', '/api/v1/ingest', { raw: '{"agent_id": "a",', headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('IMM_ERR_MALFORMED_JSON');
  });

  it.each([
    [{ agent_id: 'a', latency_ms: 'fast' }, 'latency_ms'],
    [{ agent_id: 'a', latency_ms: -5 }, 'latency_ms'],
    [{ agent_id: 'a', tool_calls: 2.5 }, 'tool_calls'],
    [{ latency_ms: 3 }, 'agent_id'],
    [{ agent_id: 'bad id!' }, 'agent_id'],
  ])('rejects %j naming the field', async (body, field) => {
    const r = await s.ingest(body);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ ok: false, code: 'IMM_ERR_VALIDATION', field });
  });

  it('rejects non-finite numbers (1e999 parses to Infinity)', async () => {
    const r = await s.call('POST', '/api/v1/ingest', { raw: '{"agent_id":"inf","cost":1e999}', headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.json.error).toContain('finite');
  });

  it('rejects timestamps too old or in the future with 422', async () => {
    const old = await s.ingest({ ...vitalsFor('ts')(), timestamp: Date.now() / 1000 - 7200 });
    expect(old.status).toBe(422);
    expect(old.json).toMatchObject({ code: 'IMM_ERR_TIMESTAMP_RANGE', field: 'timestamp' });
    const future = await s.ingest({ ...vitalsFor('ts')(), timestamp: Date.now() / 1000 + 3600 });
    expect(future.status).toBe(422);
  });

  it('rejects oversize bodies with 413', async () => {
    const r = await s.ingest({ agent_id: 'big', pad: 'x'.repeat(70 * 1024) });
    expect(r.status).toBe(413);
    expect(r.json.code).toBe('IMM_ERR_BODY_TOO_LARGE');
  });

  it('rejects other content types with 415', async () => {
    const r = await s.call('POST', '/api/v1/ingest', { raw: 'agent_id=a', headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(415);
    expect(r.json.code).toBe('IMM_ERR_UNSUPPORTED_MEDIA');
  });

  it('rejects a batch with one bad record whole, naming its index', async () => {
    const before = (await s.op('GET', '/api/v1/overview')).json.stats.total_executions;
    const next = vitalsFor('batch-1');
    const batch = [next(), next(), { ...next(), latency_ms: -1 }, next()];
    const r = await s.ingest(batch);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'IMM_ERR_VALIDATION', index: 2, field: 'latency_ms' });
    expect(r.json.error).toMatch(/^record 2: /);
    const after = (await s.op('GET', '/api/v1/overview')).json.stats.total_executions;
    expect(after).toBe(before);
    expect((await s.op('GET', '/api/v1/agents/batch-1')).status).toBe(404);
  });

  it('accepts JSON arrays and NDJSON batches', async () => {
    const next = vitalsFor('nd-1');
    const arr = await s.ingest([next(), next()]);
    expect(arr.json).toMatchObject({ ok: true, accepted: 2, agents: { 'nd-1': { status: 'learning', directive: null } } });
    const nd = await s.call('POST', '/api/v1/ingest', { raw: `${JSON.stringify(next())}\n\n${JSON.stringify(next())}\n`, headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/x-ndjson' } });
    expect(nd.json).toMatchObject({ ok: true, accepted: 2 });
    const bad = await s.call('POST', '/api/v1/ingest', { raw: `${JSON.stringify(next())}\n{oops\n`, headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/x-ndjson' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'IMM_ERR_MALFORMED_JSON', line: 2 });
    const empty = await s.ingest([]);
    expect(empty.status).toBe(400);
  });

  it('registers agents and reports re-registration', async () => {
    const reg = (body: unknown, key = INGEST_KEY) => s.call('POST', '/api/v1/agents/register', { body, headers: { 'x-api-key': key } });
    expect((await reg({ agent_id: 'reg-1', agent_type: 'Data', model: 'GPT-4o', mcp_servers: ['github'] })).json).toEqual({ ok: true, status: 'registered', agent_id: 'reg-1' });
    expect((await reg({ agent_id: 'reg-1', agent_type: 'Data', model: 'GPT-4o', mcp_servers: ['github'] })).json.status).toBe('already_registered');
    expect((await reg({ agent_id: 'reg-1', control_url: 'http://127.0.0.1:1/control' })).json.status).toBe('updated');
    expect((await reg({ agent_id: 'reg 1' })).status).toBe(400);
    expect((await reg({ agent_id: 'reg-2', control_url: 'ftp://x' })).status).toBe(400);
    expect((await reg({ agent_id: 'reg-2' }, 'bad')).status).toBe(401);
    const detail = await s.op('GET', '/api/v1/agents/reg-1');
    expect(detail.json.agent).toMatchObject({ id: 'reg-1', type: 'Data', model: 'GPT-4o', mcp_servers: ['github'], status: 'learning' });
  });
});

describe('credentials', () => {
  it.each(['/api/v1/overview', '/api/v1/agents', '/api/v1/events', '/api/status', '/api/agents', '/api/stats', '/api/healings', '/api/pending-approvals', '/api/rejected-approvals', '/api/infections', '/api/v1/session'])('GET %s needs a credential', async (path) => {
    expect((await s.call('GET', path)).status).toBe(401);
    expect((await s.call('GET', path, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await s.call('GET', path, { headers: { authorization: 'Basic abc' } })).status).toBe(401);
    expect((await s.viewer('GET', path)).status).toBe(200);
    expect((await s.op('GET', path)).status).toBe(200);
  });

  it('viewers cannot change anything', async () => {
    await s.ingest(vitalsFor('view-1')());
    for (const [path, body] of [
      ['/api/v1/agents/view-1/quarantine', {}],
      ['/api/v1/approvals/approve-all', {}],
      ['/api/approve-healing', { agent_id: 'view-1', approved: true }],
      ['/api/heal-all-rejected', {}],
    ] as const) {
      const r = await s.viewer('POST', path, body);
      expect(r.status).toBe(403);
      expect(r.json.code).toBe('IMM_ERR_FORBIDDEN');
    }
    expect(await statusOf('view-1')).toBe('learning');
  });

  it('the ingest key is not an operator credential, nor the reverse', async () => {
    expect((await s.call('GET', '/api/v1/overview', { headers: { 'x-api-key': INGEST_KEY } })).status).toBe(401);
    expect((await s.call('POST', '/api/v1/ingest', { body: vitalsFor('z')(), headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).status).toBe(401);
  });

  it('sends no CORS headers unless configured', async () => {
    const r = await s.call('GET', '/healthz', { headers: { origin: 'https://evil.example' } });
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('approval workflow over HTTP', () => {
  it('severe infection → pending → approve → directive → ack → probation → healthy', async () => {
    await makePending('wf-1');
    const pending = (await s.op('GET', '/api/v1/overview')).json.pending;
    const item = pending.find((p: any) => p.agent_id === 'wf-1');
    expect(item.max_deviation).toBeGreaterThanOrEqual(5);
    expect(item.reasoning.length).toBeGreaterThan(10);
    const seedPending = (await s.op('GET', '/api/pending-approvals')).json;
    expect(seedPending.map((p: any) => p.agent_id)).toContain('wf-1');

    const approved = await s.op('POST', '/api/v1/agents/wf-1/approve', {});
    expect(approved.status).toBe(200);
    expect(approved.json.agent.status).toBe('healing');
    const twice = await s.op('POST', '/api/v1/agents/wf-1/approve', {});
    expect(twice.status).toBe(409);
    expect(twice.json.code).toBe('IMM_ERR_NOT_PENDING');

    const next = vitalsFor('wf-1', 99);
    const r = await s.ingest(next());
    expect(r.json.status).toBe('healing');
    const d = r.json.directive;
    expect(d).toMatchObject({ action: expect.any(String), diagnosis: expect.any(String), id: expect.any(String) });
    const badAck = await s.call('POST', `/api/v1/agents/wf-1/directives/nope/ack`, { body: { ok: true }, headers: { 'x-api-key': INGEST_KEY } });
    expect(badAck.status).toBe(404);
    const poll = await s.call('GET', '/api/v1/agents/wf-1/directive', { headers: { 'x-api-key': INGEST_KEY } });
    expect(poll.json.directive.id).toBe(d.id);
    const ack = await s.call('POST', `/api/v1/agents/wf-1/directives/${encodeURIComponent(d.id)}/ack`, { body: { ok: true, detail: 'done' }, headers: { 'x-api-key': INGEST_KEY } });
    expect(ack.status).toBe(200);
    expect(ack.json.agent.status).toBe('probation');
    for (let i = 0; i < 5; i++) await s.ingest(next());
    expect(await statusOf('wf-1')).toBe('healthy');

    const log = (await s.op('GET', '/api/v1/events?agent_id=wf-1&limit=100')).json.events;
    const approvedEvent = log.find((e: any) => e.type === 'approved');
    expect(approvedEvent.actor).toBe('operator');
    expect(log.map((e: any) => e.type)).toEqual(expect.arrayContaining(['infection_detected', 'approval_requested', 'approved', 'action_started', 'action_applied', 'probation_passed']));
  });

  it('reject keeps the agent quarantined until heal now', async () => {
    await makePending('wf-2');
    const r = await s.call('POST', '/api/approve-healing', { body: { agent_id: 'wf-2', approved: false }, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    expect(r.json).toEqual({ ok: true, approved: false });
    expect(await statusOf('wf-2')).toBe('rejected');
    const next = vitalsFor('wf-2', 5);
    for (let i = 0; i < 5; i++) expect((await s.ingest(next({ tools: 10, input: 10 }))).json.status).toBe('rejected');
    expect((await s.op('GET', '/api/rejected-approvals')).json.map((x: any) => x.agent_id)).toContain('wf-2');
    const heal = await s.op('POST', '/api/heal-explicitly', { agent_id: 'wf-2' });
    expect(heal.json).toEqual({ ok: true });
    expect(await statusOf('wf-2')).toBe('healing');
    const again = await s.op('POST', '/api/v1/agents/wf-2/heal', {});
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('IMM_ERR_NOT_REJECTED');
  });

  it('bulk approve / reject / heal all', async () => {
    await makePending('bulk-1');
    await makePending('bulk-22');
    const rej = await s.op('POST', '/api/v1/approvals/reject-all', {});
    expect(rej.json.rejected_count).toBeGreaterThanOrEqual(2);
    expect(await statusOf('bulk-1')).toBe('rejected');
    const all = await s.op('POST', '/api/heal-all-rejected', {});
    expect(all.json.healed_count).toBeGreaterThanOrEqual(2);
    expect(await statusOf('bulk-22')).toBe('healing');
    await makePending('bulk-333');
    const appr = await s.op('POST', '/api/approve-all', { approved: true });
    expect(appr.json).toMatchObject({ ok: true, approved_count: 1, rejected_count: 0 });
  });

  it('unknown agents are 404 on agent routes', async () => {
    for (const path of ['/api/v1/agents/ghost', '/api/v1/agents/ghost/approve', '/api/v1/agents/ghost/release']) {
      const r = path.endsWith('ghost') ? await s.op('GET', path) : await s.op('POST', path, {});
      expect(r.status).toBe(404);
      expect(r.json.code).toBe('IMM_ERR_UNKNOWN_AGENT');
    }
    expect((await s.op('POST', '/api/approve-healing', { agent_id: 'ghost', approved: true })).status).toBe(404);
    expect((await s.op('POST', '/api/approve-healing', {})).status).toBe(400);
  });

  it('manual quarantine, release, accept-baseline and feedback record who did it', async () => {
    const next = vitalsFor('man-1');
    await s.ingest(Array.from({ length: 16 }, () => next()));
    expect((await s.op('POST', '/api/v1/agents/man-1/quarantine', { reason: 'suspicious tool use' })).json.agent.status).toBe('quarantined');
    expect((await s.ingest(next())).json.status).toBe('quarantined');
    expect((await s.op('POST', '/api/v1/agents/man-1/feedback', { diagnosis: 'not_a_diagnosis' })).status).toBe(400);
    expect((await s.op('POST', '/api/v1/agents/man-1/feedback', { diagnosis: 'prompt_injection', note: 'saw it in the logs' })).status).toBe(200);
    expect((await s.op('POST', '/api/v1/agents/man-1/release', {})).json.agent.status).toBe('healthy');
    expect((await s.op('POST', '/api/v1/agents/man-1/accept-baseline', { reason: 'new prompt v2' })).json.agent.status).toBe('learning');
    const log = (await s.op('GET', '/api/v1/events?agent_id=man-1&type=quarantined,released,diagnosis_feedback,baseline_accepted')).json.events;
    expect(log.map((e: any) => [e.type, e.actor])).toEqual([
      ['baseline_accepted', 'operator'],
      ['released', 'operator'],
      ['diagnosis_feedback', 'operator'],
      ['quarantined', 'operator'],
    ]);
    expect((await s.op('POST', '/api/v1/agents/man-1/quarantine', { reason: 7 })).status).toBe(400);
  });
});

describe('event log', () => {
  it('pages backwards by seq and filters', async () => {
    const first = (await s.op('GET', '/api/v1/events?limit=3')).json;
    expect(first.events.length).toBe(3);
    expect(first.events[0].seq).toBeGreaterThan(first.events[2].seq);
    const second = (await s.op('GET', `/api/v1/events?limit=3&before_seq=${first.next_before_seq}`)).json;
    expect(second.events[0].seq).toBeLessThan(first.events[2].seq);
    expect((await s.op('GET', '/api/v1/events?limit=0')).status).toBe(400);
    expect((await s.op('GET', '/api/v1/events?limit=abc')).status).toBe(400);
    expect((await s.op('GET', '/api/v1/events?bogus=1')).status).toBe(400);
  });
});

describe('browser session', () => {
  it('one-time login link sets an HttpOnly SameSite cookie and works once', async () => {
    const token = s.product.auth.rotateLoginToken();
    const r = await s.call('GET', `/login?token=${token}`);
    expect(r.status).toBe(302);
    const cookie = r.headers.get('set-cookie')!;
    expect(cookie).toMatch(/immune_session=.+; Path=\/; HttpOnly; SameSite=Strict/);
    const again = await s.call('GET', `/login?token=${token}`);
    expect(again.headers.get('set-cookie')).toBeNull();
    expect(again.headers.get('location')).toContain('login-expired');

    const jar = cookie.split(';')[0];
    const session = await s.call('GET', '/api/v1/session', { headers: { cookie: jar } });
    expect(session.json.role).toBe('operator');
    const csrf = session.json.csrf_token as string;
    await s.ingest(vitalsFor('sess-1')());
    const noCsrf = await s.call('POST', '/api/v1/agents/sess-1/quarantine', { body: {}, headers: { cookie: jar } });
    expect(noCsrf.status).toBe(403);
    const wrongCsrf = await s.call('POST', '/api/v1/agents/sess-1/quarantine', { body: {}, headers: { cookie: jar, 'x-csrf-token': 'x' } });
    expect(wrongCsrf.status).toBe(403);
    const ok = await s.call('POST', '/api/v1/agents/sess-1/quarantine', { body: {}, headers: { cookie: jar, 'x-csrf-token': csrf } });
    expect(ok.status).toBe(200);
    const forged = await s.call('GET', '/api/v1/session', { headers: { cookie: jar.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) } });
    expect(forged.status).toBe(401);
  });

  it('a pasted viewer token logs in read-only', async () => {
    const r = await s.call('POST', '/api/v1/session', { body: { token: 'wrong' } });
    expect(r.status).toBe(401);
    const v = await s.call('POST', '/api/v1/session', { body: { token: process.env.X ?? 'test-viewer-token-0123456789' } });
    expect(v.json).toEqual({ ok: true, role: 'viewer' });
  });
});

describe('server-sent events', () => {
  it('pushes a state change within a second', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${s.base}/api/v1/stream`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` }, signal: ctrl.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    const waitFor = async (pattern: RegExp, ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), until - Date.now()))]);
        if (!chunk || chunk.done) break;
        buf += dec.decode(chunk.value);
        if (pattern.test(buf)) return true;
      }
      return false;
    };
    expect(await waitFor(/event: hello/, 2000)).toBe(true);
    await s.ingest(vitalsFor('sse-1')());
    const t0 = Date.now();
    await s.op('POST', '/api/v1/agents/sse-1/quarantine', {});
    expect(await waitFor(/"type":"quarantined"[^\n]*"agent_id":"sse-1"|"agent_id":"sse-1"[^\n]*"type":"quarantined"/, 1500)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    ctrl.abort();
  });
});

describe('integrations mounted on the server', () => {
  it('serves Prometheus metrics to operators and viewers only', async () => {
    expect((await s.call('GET', '/metrics')).status).toBe(401);
    const m = await s.viewer('GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toContain('text/plain');
    expect(m.text).toMatch(/immune_agent_executions_total\{[^}]*\} [1-9]/);
  });

  it('receives OTLP traces with the ingest key only', async () => {
    const body = JSON.stringify({ resourceSpans: [] });
    expect((await s.call('POST', '/v1/traces', { raw: body, headers: { 'content-type': 'application/json' } })).status).toBe(401);
    const ok = await s.call('POST', '/v1/traces', { raw: body, headers: { 'content-type': 'application/json', 'x-api-key': INGEST_KEY } });
    expect(ok.status).toBe(200);
    const m = await s.viewer('GET', '/metrics');
    expect(m.text).toMatch(/immune_otlp_exports_total [1-9]/);
  });
});

describe('OpenAPI', () => {
  it('documents every route with its schemas', async () => {
    const doc = (await s.call('GET', '/api/v1/openapi.json')).json;
    const paths = Object.keys(doc.paths);
    for (const p of ['/api/v1/ingest', '/api/v1/agents/register', '/api/v1/agents/{id}/approve', '/api/v1/events', '/api/v1/stream', '/api/approve-healing', '/readyz', '/api/v1/agents/{id}/feedback']) {
      expect(paths).toContain(p);
    }
    expect(JSON.stringify(doc.paths['/api/v1/agents/{id}/feedback'].post.requestBody)).toContain('prompt_injection');
    expect(JSON.stringify(doc.paths['/api/v1/ingest'].post.requestBody)).toContain('#/components/schemas/VitalsInput');
    expect(Object.keys(doc.components.schemas.VitalsInput.properties)).toEqual(expect.arrayContaining(['agent_id', 'latency_ms', 'input_tokens', 'prompt_hash']));
  });
});
