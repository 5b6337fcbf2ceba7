import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ImmuneReporter, ImmuneSdkError, QuarantinedError, type ImmuneReporterOptions } from '../../sdk/typescript/src/index.js';
import { startScriptedServer, until, type RecordedRequest, type ScriptedHandler, type ScriptedServer } from '../support/scripted-http.js';

/*
 * The reporter against a real loopback HTTP server whose answers each test
 * scripts (outages, refusals, hangs, directives): the real control plane
 * cannot be made to fail on demand. test/sdk/control-plane.test.ts runs the
 * same reporter against the real control plane.
 */

const AGENT = 'sdk-agent';
const KEY = 'k-123';

type Answer = { status?: string; directive?: { id: string; action: string; diagnosis: string } | null };

/** A control plane stand-in: accepts ingest (answering `state()`), registration, acks and polls. */
function controlPlane(state: () => Answer = () => ({ status: 'healthy' })): ScriptedHandler {
  return (req) => {
    if (req.path === '/api/v1/agents/register') return { body: { ok: true, status: 'registered', agent_id: AGENT } };
    if (req.path === '/api/v1/ingest') {
      const n = Array.isArray(req.body) ? req.body.length : 1;
      const s = state();
      return { body: { ok: true, accepted: n, agents: { [AGENT]: { status: s.status ?? 'healthy', directive: s.directive ?? null } } } };
    }
    if (req.path.endsWith('/ack')) return { body: { ok: true, agent: { id: AGENT, status: 'probation' } } };
    if (req.path.endsWith('/directive')) {
      const s = state();
      return { body: { ok: true, agent_id: AGENT, status: s.status ?? 'healthy', directive: s.directive ?? null } };
    }
    return { status: 404, body: { ok: false, code: 'IMM_ERR_NOT_FOUND', error: 'no route' } };
  };
}

const ingested = (reqs: RecordedRequest[]) => reqs.filter((r) => r.path === '/api/v1/ingest');
const records = (reqs: RecordedRequest[]) => ingested(reqs).flatMap((r) => r.body as Array<Record<string, unknown>>);

let server: ScriptedServer | null = null;
const reporters: ImmuneReporter[] = [];

async function setup(handler: ScriptedHandler, opts: Partial<ImmuneReporterOptions> = {}) {
  server = await startScriptedServer(handler);
  const errors: ImmuneSdkError[] = [];
  const r = new ImmuneReporter({
    agent_id: AGENT,
    base_url: server.url,
    api_key: KEY,
    flush_interval: 0.05,
    poll_interval: 0.1,
    retry_backoff: 0.05,
    max_backoff: 0.2,
    timeout: 1,
    random: () => 1,
    flush_on_exit: false,
    on_error: (e) => errors.push(e),
    ...opts,
  });
  reporters.push(r);
  return { r, errors, s: server };
}

afterEach(async () => {
  for (const r of reporters.splice(0)) await r.close(0.2);
  await server?.close();
  server = null;
});

describe('ImmuneReporter: batching', () => {
  it('registers once, then sends queued records as JSON arrays of at most batch_size, in order, with the key', async () => {
    const { r, s } = await setup(controlPlane(), { batch_size: 100, agent_type: 'Research', model: 'gpt-4o', control_url: 'http://127.0.0.1:9/ctl' });
    for (let i = 0; i < 250; i++) expect(r.report({ latency_ms: i, input_tokens: 10, output_tokens: 5 })).toBe(true);
    expect(await r.flush(5)).toBe(true);

    expect(s.requests[0].path).toBe('/api/v1/agents/register');
    expect(s.requests[0].body).toEqual({ agent_id: AGENT, agent_type: 'Research', model: 'gpt-4o', control_url: 'http://127.0.0.1:9/ctl' });
    expect(s.requests.filter((q) => q.path === '/api/v1/agents/register')).toHaveLength(1);
    const batches = ingested(s.requests);
    expect(batches.map((b) => (b.body as unknown[]).length)).toEqual([100, 100, 50]);
    expect(batches.every((b) => b.headers['x-api-key'] === KEY && b.headers['content-type'] === 'application/json')).toBe(true);
    const got = records(s.requests);
    expect(got.map((x) => x.latency_ms)).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(got[0]).toMatchObject({ agent_id: AGENT, agent_type: 'Research', model: 'gpt-4o', input_tokens: 10, output_tokens: 5 });
    expect(Math.abs((got[0].timestamp as number) - Date.now() / 1000)).toBeLessThan(10);
    expect(r.stats()).toEqual({ sent: 250, dropped: 0, failed: 0, buffered: 0, directives: 0 });
  });

  it('sends in the background without flush() once the interval passes', async () => {
    const { r, s } = await setup(controlPlane());
    r.report({ latency_ms: 1 });
    r.report({ latency_ms: 2 });
    await until(() => r.stats().sent === 2, 'both records to be accepted');
    expect(ingested(s.requests)).toHaveLength(1);
    expect(records(s.requests)).toHaveLength(2);
  });

  it('refuses an invalid report locally (it would sink its whole batch), naming the field', async () => {
    const { r, errors, s } = await setup(controlPlane());
    expect(r.report({ latency_ms: -1 })).toBe(false);
    expect(r.report({ input_tokens: 1.5 })).toBe(false);
    expect(r.report({ cost: Number.NaN })).toBe(false);
    expect(r.report({ latency_ms: 5 })).toBe(true);
    await r.flush(5);
    expect(errors.map((e) => e.kind)).toEqual(['invalid', 'invalid', 'invalid']);
    expect(errors[0].message).toContain("field 'latency_ms'");
    expect(errors[1].message).toContain("field 'input_tokens'");
    expect(records(s.requests)).toHaveLength(1);
    expect(r.stats()).toMatchObject({ sent: 1, dropped: 3 });
  });

  it('rejects bad options at construction with a clear error', () => {
    expect(() => new ImmuneReporter({ agent_id: 'has space' })).toThrow(/agent_id must be/);
    expect(() => new ImmuneReporter({ agent_id: 'a', base_url: 'ftp://x' })).toThrow(/base_url must be an http\(s\) URL/);
    expect(() => new ImmuneReporter({ agent_id: 'a', batch_size: 0 })).toThrow(/batch_size/);
    expect(() => new ImmuneReporter({ agent_id: 'a', timeout: -1 })).toThrow(/timeout/);
  });
});

describe('ImmuneReporter: outages and refusals', () => {
  it('retries 500s with growing backoff and delivers every record exactly once', async () => {
    let fails = 2;
    const ok = controlPlane();
    const { r, errors, s } = await setup((req) => (req.path === '/api/v1/ingest' && fails-- > 0 ? { status: 500, body: { ok: false, error: 'boom' } } : ok(req)));
    for (let i = 0; i < 5; i++) r.report({ latency_ms: i });
    expect(await r.flush(5)).toBe(true);
    const tries = ingested(s.requests);
    expect(tries).toHaveLength(3);
    // random() = 1: the backoff is exactly base, then 2 × base.
    expect(tries[1].at - tries[0].at).toBeGreaterThanOrEqual(45);
    expect(tries[2].at - tries[1].at).toBeGreaterThanOrEqual(95);
    expect(records(s.requests).slice(-5).map((x) => x.latency_ms)).toEqual([0, 1, 2, 3, 4]);
    expect(r.stats()).toMatchObject({ sent: 5, failed: 2, dropped: 0, buffered: 0 });
    // One error per outage, not one per retry.
    expect(errors.map((e) => e.kind)).toEqual(['unavailable']);
    expect(errors[0].status).toBe(500);
  });

  it('honours Retry-After on 429', async () => {
    let limited = true;
    const ok = controlPlane();
    const { r, s } = await setup((req) => {
      if (req.path === '/api/v1/ingest' && limited) {
        limited = false;
        return { status: 429, body: { ok: false, error: 'slow down' }, headers: { 'retry-after': '1' } };
      }
      return ok(req);
    });
    r.report({ latency_ms: 1 });
    expect(await r.flush(5)).toBe(true);
    const tries = ingested(s.requests);
    expect(tries).toHaveLength(2);
    expect(tries[1].at - tries[0].at).toBeGreaterThanOrEqual(950);
  });

  it('treats a request that times out as an outage and retries it', async () => {
    let hang = true;
    const ok = controlPlane();
    const { r, s } = await setup(
      (req) => {
        if (req.path === '/api/v1/ingest' && hang) {
          hang = false;
          return 'hang';
        }
        return ok(req);
      },
      { timeout: 0.2 },
    );
    r.report({ latency_ms: 7 });
    expect(await r.flush(5)).toBe(true);
    expect(ingested(s.requests)).toHaveLength(2);
    expect(r.stats()).toMatchObject({ sent: 1, failed: 1 });
  });

  it('keeps records while the control plane is unreachable and sends them when it is back', async () => {
    const down = await startScriptedServer(controlPlane());
    const url = down.url;
    await down.close(); // nothing listens on this port now
    const errors: ImmuneSdkError[] = [];
    const r = new ImmuneReporter({ agent_id: AGENT, base_url: url, flush_interval: 0.05, retry_backoff: 0.02, max_backoff: 0.05, random: () => 1, flush_on_exit: false, on_error: (e) => errors.push(e) });
    reporters.push(r);
    r.report({ latency_ms: 1 });
    await until(() => r.stats().failed >= 2, 'a few failed attempts');
    expect(r.stats()).toMatchObject({ sent: 0, buffered: 1, dropped: 0 });
    expect(errors[0].kind).toBe('unavailable');
    expect(errors[0].message).toContain('cannot reach');
  });

  it('drops a refused batch (4xx) once, tells on_error, and does not retry it', async () => {
    const { r, errors, s } = await setup((req) => (req.path === '/api/v1/ingest' ? { status: 401, body: { ok: false, code: 'IMM_ERR_UNAUTHORIZED', error: 'wrong X-API-KEY' } } : controlPlane()(req)));
    for (let i = 0; i < 3; i++) r.report({ latency_ms: i });
    expect(await r.flush(5)).toBe(true);
    await new Promise((res) => setTimeout(res, 150)); // several flush intervals: nothing is resent
    expect(ingested(s.requests)).toHaveLength(1);
    expect(r.stats()).toMatchObject({ sent: 0, dropped: 3, failed: 0, buffered: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: 'rejected', status: 401, code: 'IMM_ERR_UNAUTHORIZED', records: 3 });
    expect(errors[0].message).toContain('wrong X-API-KEY');
  });

  it('drops only the record a 400 names and resends the rest of the batch', async () => {
    const ok = controlPlane();
    const { r, errors, s } = await setup((req) => {
      if (req.path === '/api/v1/ingest') {
        const batch = req.body as Array<{ latency_ms: number }>;
        const bad = batch.findIndex((x) => x.latency_ms === 2);
        if (bad >= 0) return { status: 400, body: { ok: false, code: 'IMM_ERR_VALIDATION', error: `record ${bad}: field 'latency_ms' is odd`, index: bad, field: 'latency_ms' } };
      }
      return ok(req);
    });
    for (let i = 0; i < 5; i++) r.report({ latency_ms: i });
    expect(await r.flush(5)).toBe(true);
    expect(ingested(s.requests).map((q) => (q.body as unknown[]).length)).toEqual([5, 4]);
    expect((ingested(s.requests)[1].body as Array<{ latency_ms: number }>).map((x) => x.latency_ms)).toEqual([0, 1, 3, 4]);
    expect(r.stats()).toMatchObject({ sent: 4, dropped: 1 });
    expect(errors).toMatchObject([{ kind: 'rejected', status: 400, records: 1 }]);
  });

  it('halves the batch when the body is too large (413) instead of dropping records', async () => {
    const ok = controlPlane();
    const { r, s } = await setup((req) => (req.path === '/api/v1/ingest' && (req.body as unknown[]).length > 3 ? { status: 413, body: { ok: false, code: 'IMM_ERR_BODY_TOO_LARGE', error: 'too large' } } : ok(req)), { batch_size: 8 });
    for (let i = 0; i < 8; i++) r.report({ latency_ms: i });
    expect(await r.flush(5)).toBe(true);
    expect(ingested(s.requests).map((q) => (q.body as unknown[]).length)).toEqual([8, 4, 2, 2, 2, 2]);
    expect(records(s.requests).slice(-8).map((x) => x.latency_ms)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.stats()).toMatchObject({ sent: 8, dropped: 0 });
  });

  it('bounds the buffer: the oldest records are dropped and counted, the newest are delivered', async () => {
    const { r, errors, s } = await setup(controlPlane(), { batch_size: 5, max_buffer: 10 });
    for (let i = 0; i < 30; i++) r.report({ latency_ms: i });
    expect(await r.flush(5)).toBe(true);
    expect(records(s.requests).map((x) => x.latency_ms)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    expect(r.stats()).toMatchObject({ sent: 10, dropped: 20, buffered: 0 });
    expect(errors.filter((e) => e.kind === 'overflow')).toHaveLength(1);
  });

  it('accounts for every record through an outage with a full buffer: sent + dropped = reported', async () => {
    let up = false;
    const ok = controlPlane();
    const delivered: number[] = [];
    const { r } = await setup(
      (req) => {
        if (req.path !== '/api/v1/ingest') return ok(req);
        if (!up) return { status: 503, body: { ok: false, error: 'store down' } };
        delivered.push(...(req.body as Array<{ latency_ms: number }>).map((x) => x.latency_ms));
        return ok(req);
      },
      { batch_size: 4, max_buffer: 6 },
    );
    for (let i = 0; i < 25; i++) {
      r.report({ latency_ms: i });
      if (i % 5 === 4) await until(() => r.stats().failed >= (i + 1) / 5, 'another failed attempt');
    }
    up = true;
    expect(await r.flush(5)).toBe(true);
    const st = r.stats();
    expect(st.sent + st.dropped).toBe(25);
    expect(st.dropped).toBeGreaterThan(0);
    expect(delivered).toHaveLength(st.sent);
    expect(delivered).toEqual([...delivered].sort((a, b) => a - b));
    expect(delivered.at(-1)).toBe(24);
  });
});

describe('ImmuneReporter: status, directives and guard', () => {
  it('follows the status in answers; guard() throws QuarantinedError while contained', async () => {
    let status = 'healthy';
    const statuses: string[] = [];
    const { r } = await setup(controlPlane(() => ({ status })), { on_status: (st) => statuses.push(st) });
    expect(r.status).toBeNull();
    r.report({ latency_ms: 1 });
    await r.flush(5);
    expect(r.status).toBe('healthy');
    expect(() => r.guard()).not.toThrow();

    status = 'quarantined';
    r.report({ latency_ms: 2 });
    await r.flush(5);
    expect(r.quarantined).toBe(true);
    let caught: unknown;
    try {
      r.guard();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(QuarantinedError);
    expect((caught as QuarantinedError).message).toContain(`agent '${AGENT}' is quarantined`);
    expect(caught).toMatchObject({ agentId: AGENT, status: 'quarantined' });

    status = 'probation'; // healed: runs normally while being watched
    r.report({ latency_ms: 3 });
    await r.flush(5);
    expect(r.quarantined).toBe(false);
    expect(() => r.guard()).not.toThrow();
    expect(statuses).toEqual(['healthy', 'quarantined', 'probation']);
  });

  it('calls on_directive once per directive and acknowledges the outcome; the ack answer updates the status', async () => {
    const directive = { id: `${AGENT}:17`, action: 'revoke_tools', diagnosis: 'prompt_injection' };
    const seen: unknown[] = [];
    const { r, s } = await setup(controlPlane(() => ({ status: 'healing', directive })), {
      on_directive: async (d) => {
        seen.push(d);
        return { ok: true, detail: 'tools revoked: web-fetch' };
      },
    });
    r.report({ latency_ms: 1 });
    await r.flush(5);
    r.report({ latency_ms: 2 }); // the same directive again in the next answer
    await r.flush(5);
    expect(seen).toEqual([directive]);
    const acks = s.requests.filter((q) => q.path.endsWith('/ack'));
    expect(acks).toHaveLength(1);
    expect(acks[0].path).toBe(`/api/v1/agents/${AGENT}/directives/${encodeURIComponent(directive.id)}/ack`);
    expect(acks[0].body).toEqual({ ok: true, detail: 'tools revoked: web-fetch' });
    expect(acks[0].headers['x-api-key']).toBe(KEY);
    expect(r.stats().directives).toBe(1);
  });

  it.each([
    ['returns false', () => false, { ok: false }],
    ['returns a string', () => 'done', { ok: true, detail: 'done' }],
    ['returns nothing', () => undefined, { ok: true }],
  ])('acknowledges a handler that %s', async (_name, handler, expected) => {
    const { r, s } = await setup(controlPlane(() => ({ status: 'healing', directive: { id: 'd1', action: 'reset_memory', diagnosis: 'memory_corruption' } })), { on_directive: handler });
    r.report({ latency_ms: 1 });
    await r.flush(5);
    expect(s.requests.find((q) => q.path.endsWith('/ack'))?.body).toEqual(expected);
  });

  it('acknowledges a throwing handler as not applied, with the reason, and tells on_error', async () => {
    const { r, errors, s } = await setup(controlPlane(() => ({ status: 'healing', directive: { id: 'd2', action: 'rollback_prompt', diagnosis: 'prompt_drift' } })), {
      on_directive: () => {
        throw new Error('no previous prompt to roll back to');
      },
    });
    r.report({ latency_ms: 1 });
    await r.flush(5);
    expect(s.requests.find((q) => q.path.endsWith('/ack'))?.body).toEqual({ ok: false, detail: 'on_directive failed: no previous prompt to roll back to' });
    expect(errors.map((e) => e.kind)).toEqual(['directive']);
  });

  it('reports a refused acknowledgement (unknown or stale directive) through on_error without retrying', async () => {
    const ok = controlPlane(() => ({ status: 'healing', directive: { id: 'stale', action: 'reset_agent', diagnosis: 'unknown' } }));
    const { r, errors, s } = await setup((req) => (req.path.endsWith('/ack') ? { status: 404, body: { ok: false, code: 'IMM_ERR_NOT_FOUND', error: "agent 'sdk-agent' has no pending directive 'stale'" } } : ok(req)), { on_directive: () => true });
    r.report({ latency_ms: 1 });
    await r.flush(5);
    expect(s.requests.filter((q) => q.path.endsWith('/ack'))).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: 'ack', status: 404, code: 'IMM_ERR_NOT_FOUND' });
    expect(errors[0].message).toContain('no longer pending');
  });

  it('retries an acknowledgement the control plane could not take (503)', async () => {
    let fail = 1;
    const ok = controlPlane(() => ({ status: 'healing', directive: { id: 'd3', action: 'reduce_autonomy', diagnosis: 'infinite_loop' } }));
    const { r, errors, s } = await setup((req) => (req.path.endsWith('/ack') && fail-- > 0 ? { status: 503, body: { ok: false, error: 'busy' } } : ok(req)), { on_directive: () => true });
    r.report({ latency_ms: 1 });
    await r.flush(5);
    expect(s.requests.filter((q) => q.path.endsWith('/ack'))).toHaveLength(2);
    expect(errors).toEqual([]);
    expect(r.status).toBe('probation');
  });

  it('polls for its directive while contained and silent, and stops polling when released', async () => {
    let answer: Answer = { status: 'quarantined', directive: null };
    const got: string[] = [];
    const { r, s } = await setup(
      controlPlane(() => answer),
      {
        on_directive: (d) => {
          got.push(d.action);
          answer = { status: 'probation', directive: null };
          return true;
        },
      },
    );
    r.report({ latency_ms: 1 });
    await r.flush(5);
    expect(r.quarantined).toBe(true);
    // The agent stops reporting (guard() would throw); the SDK keeps asking.
    await until(() => s.requests.filter((q) => q.path.endsWith('/directive')).length >= 2, 'two polls');
    const polls = s.requests.filter((q) => q.path.endsWith('/directive'));
    expect(polls[0].method).toBe('GET');
    expect(polls[0].path).toBe(`/api/v1/agents/${AGENT}/directive`);
    expect(polls[0].headers['x-api-key']).toBe(KEY);

    answer = { status: 'healing', directive: { id: 'p1', action: 'reset_memory', diagnosis: 'memory_corruption' } };
    await until(() => r.status === 'probation', 'the polled directive to be applied and acknowledged');
    expect(got).toEqual(['reset_memory']);
    const n = s.requests.filter((q) => q.path.endsWith('/directive')).length;
    await new Promise((res) => setTimeout(res, 300)); // three poll intervals
    expect(s.requests.filter((q) => q.path.endsWith('/directive')).length).toBe(n);
  });
});

describe('ImmuneReporter: flush and close', () => {
  it('close() flushes, then refuses further reports (counted)', async () => {
    const { r, errors, s } = await setup(controlPlane(), { flush_interval: 60 });
    r.report({ latency_ms: 1 });
    r.report({ latency_ms: 2 });
    await r.close();
    expect(records(s.requests)).toHaveLength(2);
    expect(r.report({ latency_ms: 3 })).toBe(false);
    expect(r.stats()).toMatchObject({ sent: 2, dropped: 1, buffered: 0 });
    expect(errors.map((e) => e.kind)).toEqual(['closed']);
    await r.close(); // twice is fine
  });

  it('close() gives up after its timeout when the control plane hangs, counting what was not sent', async () => {
    const { r, errors } = await setup(() => 'hang', { timeout: 5 });
    r.report({ latency_ms: 1 });
    const t0 = Date.now();
    await r.close(0.3);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.stats()).toMatchObject({ sent: 0, dropped: 1 });
    expect(errors.some((e) => e.message.includes('could not be sent in time'))).toBe(true);
  });

  it('flush(timeout) answers false while the control plane is down and keeps the records', async () => {
    const { r } = await setup(() => ({ status: 503, body: { ok: false, error: 'down' } }));
    r.report({ latency_ms: 1 });
    expect(await r.flush(0.3)).toBe(false);
    expect(r.stats().buffered).toBe(1);
  });
});

describe('ImmuneReporter: process exit', () => {
  const script = (base: string, tail: string) => `
    import { ImmuneReporter } from ${JSON.stringify(new URL('../../sdk/typescript/src/index.ts', import.meta.url).pathname)};
    const r = new ImmuneReporter({ agent_id: ${JSON.stringify(AGENT)}, base_url: ${JSON.stringify(base)}, flush_interval: 60 });
    for (let i = 0; i < 3; i++) r.report({ latency_ms: i });
    ${tail}
  `;
  const run = (code: string) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    return { child, exited, output: () => out };
  };

  it('sends what is buffered when the script simply ends, and does not keep it alive', async () => {
    const { s } = await setup(controlPlane());
    const p = run(script(s.url, "console.log('done');"));
    const { code } = await p.exited;
    expect(p.output()).toContain('done');
    expect(code).toBe(0);
    expect(records(s.requests).map((x) => x.latency_ms)).toEqual([0, 1, 2]);
  });

  it('flushes on SIGTERM, then ends the process as SIGTERM would have', async () => {
    const { s } = await setup(controlPlane());
    const p = run(script(s.url, "setInterval(() => {}, 1000); console.log('ready');"));
    await until(() => p.output().includes('ready'), 'the child to start', 20_000);
    p.child.kill('SIGTERM');
    const { signal } = await p.exited;
    expect(signal).toBe('SIGTERM');
    expect(records(s.requests).map((x) => x.latency_ms)).toEqual([0, 1, 2]);
  });
});
