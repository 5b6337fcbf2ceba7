import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureHeaders } from '../../src/integrations/webhooks.js';
import { INGEST_KEY, startProduct } from '../support/product.js';
import { startScriptedServer, type ScriptedHandler } from '../support/scripted-http.js';

/*
 * sdk/python/immune_sdk.py run by the machine's python3 in a child process
 * with -S (no site-packages: proof that it needs the standard library only):
 * against the real control plane for the contract, and against a scripted
 * loopback server for outages and refusals.
 */

const SDK_DIR = fileURLToPath(new URL('../../sdk/python/', import.meta.url));

const PRELUDE = `
import json, os, random, sys, time
from immune_sdk import ImmuneReporter, ImmuneSdkError, QuarantinedError, verify_signature
BASE = os.environ.get("BASE", "")
KEY = os.environ.get("KEY") or None
errors = []
def on_error(e):
    errors.append({"kind": e.kind, "status": e.status, "code": e.code, "records": e.records, "message": str(e)})
def out(**kw):
    print(json.dumps(kw), flush=True)
def reporter(agent_id, **kw):
    opts = dict(base_url=BASE, api_key=KEY, on_error=on_error, flush_interval=0.05, poll_interval=0.1, retry_backoff=0.02, max_backoff=0.1, timeout=2)
    opts.update(kw)
    return ImmuneReporter(agent_id, **opts)
`;

interface PyRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last JSON line printed. */
  result: any;
}

function python(body: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<PyRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-S', '-c', PRELUDE + body], { env: { ...process.env, PYTHONPATH: SDK_DIR, PYTHONDONTWRITEBYTECODE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`python3 did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
      let result: unknown = null;
      try {
        result = last ? JSON.parse(last) : null;
      } catch {
        result = null;
      }
      resolve({ code, stdout, stderr, result });
    });
  });
}

function expectClean(r: PyRun): void {
  if (r.code !== 0) throw new Error(`python3 exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

describe('immune_sdk.py against the real control plane', () => {
  let s: Awaited<ReturnType<typeof startProduct>>;
  beforeAll(async () => {
    // Severe deviations heal automatically here, so an agent can go through the whole cycle without an operator.
    // The healing step waits half a second, so the agent sees itself contained before the directive comes.
    s = await startProduct({ DEVIATION_REQUIRING_APPROVAL: '1000', PROBATION_SAMPLES: '3', HEALING_STEP_DELAY_SECONDS: '0.5' });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('registers and reports in batches; the control plane sees every record and the SDK its status', async () => {
    const r = await python(
      `
r = reporter("py-batch", agent_type="Research", model="gpt-4o", batch_size=10, mcp_servers=["postgres"])
for i in range(25):
    assert r.report(input_tokens=800 + i, output_tokens=400, latency_ms=300.5, tool_calls=3, cost=0.0036, prompt_hash="p1")
ok = r.flush(10)
out(flushed=ok, stats=r.stats(), status=r.status, quarantined=r.quarantined, errors=errors)
r.close()
`,
      { BASE: s.base, KEY: INGEST_KEY },
    );
    expectClean(r);
    // 25 samples are more than BASELINE_MIN_SAMPLES (15): the baseline is learned and the agent judged healthy.
    expect(r.result).toMatchObject({ flushed: true, stats: { sent: 25, dropped: 0, failed: 0, buffered: 0 }, status: 'healthy', quarantined: false, errors: [] });
    const detail = (await s.op('GET', '/api/v1/agents/py-batch')).json;
    expect(detail.agent).toMatchObject({ executions: 25, type: 'Research', model: 'gpt-4o', mcp_servers: ['postgres'] });
    expect(detail.agent.latest).toMatchObject({ input_tokens: 824, output_tokens: 400, tools: 3 });
  });

  it('refuses invalid values locally and reports a wrong key as a refusal, without raising', async () => {
    const r = await python(
      `
r = reporter("py-bad")
results = [r.report(latency_ms=-5), r.report(input_tokens=1.5), r.report(cost=float("nan")), r.report(model="x" * 200)]
r.flush(5)
w = reporter("py-wrong-key", api_key="not-the-key")
w.report(latency_ms=1)
w.flush(5)
refused = []
for args, kw in [(("has space",), {}), (("ok", "ftp://x"), {}), (("ok", BASE, "T", "m", 5.0), {}), (("ok", BASE), {"batch_size": 0})]:
    try:
        ImmuneReporter(*args, **kw)
    except ImmuneSdkError as e:
        refused.append(str(e))
out(results=results, stats=r.stats(), wrong=w.stats(), errors=errors, refused=refused)
`,
      { BASE: s.base, KEY: INGEST_KEY },
    );
    expectClean(r);
    expect(r.result.results).toEqual([false, false, false, false]);
    expect(r.result.stats).toMatchObject({ sent: 0, dropped: 4 });
    expect(r.result.errors.slice(0, 4).map((e: { kind: string }) => e.kind)).toEqual(['invalid', 'invalid', 'invalid', 'invalid']);
    expect(r.result.errors[0].message).toContain("field 'latency_ms'");
    expect(r.result.errors[3].message).toContain("field 'model'");
    expect(r.result.wrong).toMatchObject({ sent: 0, dropped: 1 });
    expect(r.result.errors.filter((e: { kind: string; status: number }) => e.kind === 'rejected' && e.status === 401).length).toBeGreaterThanOrEqual(1);
    expect((await s.op('GET', '/api/v1/agents/py-wrong-key')).status).toBe(404);
    // Bad construction is a clear error at start (including the seed's positional timeout, now in api_key's place).
    expect(r.result.refused).toHaveLength(4);
    expect(r.result.refused[0]).toContain('agent_id must be');
    expect(r.result.refused[1]).toContain('base_url must be an http(s) URL');
    expect(r.result.refused[2]).toContain('api_key must be a string');
    expect(r.result.refused[3]).toContain('batch_size');
  });

  it('goes through quarantine, directive, acknowledgement and probation back to healthy', async () => {
    const r = await python(
      `
rnd = random.Random(5)
state = {"sick": False, "applied": []}
def on_directive(d):
    state["applied"].append(d["action"])
    state["sick"] = False  # this agent's fault is cured by any action
    return {"ok": True, "detail": "python agent applied " + d["action"]}
statuses = []
r = reporter("py-cycle", agent_type="Research", model="gpt-4o", on_directive=on_directive, on_status=lambda st, prev: statuses.append(st))
def task():
    k = 10 if state["sick"] else 1
    r.report(input_tokens=int(800 * rnd.lognormvariate(0, 0.1) * k), output_tokens=int(400 * rnd.lognormvariate(0, 0.1)),
             latency_ms=300 * rnd.lognormvariate(0, 0.1), tool_calls=3 * k, model="gpt-4o", prompt_hash="p1")
    r.flush(5)
for _ in range(20):
    task()
state["sick"] = True
guarded = None
for _ in range(10):
    try:
        r.guard()
    except QuarantinedError as e:
        guarded = str(e)
        break
    task()
# Contained: the agent stops working; the SDK polls for the directive, which cures it and puts it on probation.
deadline = time.time() + 15
while r.quarantined and time.time() < deadline:
    time.sleep(0.05)
released_to = r.status
while r.status != "healthy" and time.time() < deadline:
    task()
out(guarded=guarded, released_to=released_to, final=r.status, applied=state["applied"], statuses=statuses, stats=r.stats(), errors=errors)
r.close()
`,
      { BASE: s.base, KEY: INGEST_KEY },
    );
    expectClean(r);
    expect(r.result.guarded).toMatch(/^agent 'py-cycle' is (healing|quarantined) by Agent Immune/);
    expect(r.result.statuses).toEqual(['learning', 'healthy', 'healing', 'probation', 'healthy']);
    expect(r.result.released_to).toBe('probation');
    expect(r.result.final).toBe('healthy');
    expect(r.result.applied).toHaveLength(1);
    expect(r.result.errors).toEqual([]);
    expect(r.result.stats.directives).toBe(1);
    const history = (await s.op('GET', '/api/v1/agents/py-cycle')).json.history as Array<{ type: string; actor: string; detail?: string }>;
    const applied = history.find((e) => e.type === 'action_applied');
    expect(applied).toMatchObject({ actor: 'agent', detail: `python agent applied ${r.result.applied[0]}` });
    expect(history.some((e) => e.type === 'probation_passed')).toBe(true);
  });

  it('flushes at interpreter exit without close()', async () => {
    const r = await python(
      `
r = reporter("py-atexit", flush_interval=60)
for i in range(3):
    r.report(latency_ms=100 + i)
out(buffered=r.stats()["buffered"])
`,
      { BASE: s.base, KEY: INGEST_KEY },
    );
    expectClean(r);
    expect(r.result.buffered).toBe(3);
    expect((await s.op('GET', '/api/v1/agents/py-atexit')).json.agent.executions).toBe(3);
  });

  it('gets a 404 for an unknown directive acknowledgement from the real control plane and tells on_error', async () => {
    const r = await python(
      `
r = reporter("py-ack", on_directive=lambda d: True)
r.report(latency_ms=1)
r.flush(5)
r._acknowledge({"id": "py-ack:999", "action": "reset_agent"}, {"ok": True})
out(errors=errors)
r.close()
`,
      { BASE: s.base, KEY: INGEST_KEY },
    );
    expectClean(r);
    expect(r.result.errors).toHaveLength(1);
    expect(r.result.errors[0]).toMatchObject({ kind: 'ack', status: 404, code: 'IMM_ERR_NOT_FOUND' });
    expect(r.result.errors[0].message).toContain('no longer pending');
  });
});

describe('immune_sdk.py against a scripted server (outages and refusals)', () => {
  const ok = (status = 'healthy', directive: unknown = null): ScriptedHandler => (req) => {
    if (req.path === '/api/v1/agents/register') return { body: { ok: true, status: 'registered' } };
    if (req.path.endsWith('/ack')) return { body: { ok: true, agent: { status: 'probation' } } };
    if (req.path.endsWith('/directive')) return { body: { ok: true, status, directive } };
    return { body: { ok: true, accepted: (req.body as unknown[]).length, agents: { 'py-s': { status, directive } } } };
  };

  async function withServer(h: ScriptedHandler, body: string) {
    const srv = await startScriptedServer(h);
    try {
      const r = await python(body, { BASE: srv.url, KEY: 'k' });
      expectClean(r);
      return { r, srv };
    } finally {
      await srv.close();
    }
  }

  it('retries 500s with backoff and delivers each record once', async () => {
    let fails = 2;
    const { r, srv } = await withServer((req) => (req.path === '/api/v1/ingest' && fails-- > 0 ? { status: 500, body: { ok: false, error: 'boom' } } : ok()(req)), `
r = reporter("py-s")
for i in range(5):
    r.report(latency_ms=i)
out(flushed=r.flush(10), stats=r.stats(), kinds=[e["kind"] for e in errors])
r.close()
`);
    expect(r.result).toMatchObject({ flushed: true, stats: { sent: 5, failed: 2, dropped: 0 }, kinds: ['unavailable'] });
    const batches = srv.requests.filter((q) => q.path === '/api/v1/ingest');
    expect(batches).toHaveLength(3);
    expect((batches[2].body as Array<{ latency_ms: number }>).map((x) => x.latency_ms)).toEqual([0, 1, 2, 3, 4]);
    expect(batches.every((b) => b.headers['x-api-key'] === 'k')).toBe(true);
  });

  it('bounds the buffer: the oldest records are dropped and counted', async () => {
    // Registration answers slowly, so every report lands in the buffer before the first batch leaves.
    const { r, srv } = await withServer(
      async (req) => {
        if (req.path === '/api/v1/agents/register') await new Promise((res) => setTimeout(res, 300));
        return ok()(req);
      },
      `
r = reporter("py-s", batch_size=5, max_buffer=10)
for i in range(30):
    r.report(latency_ms=i)
out(flushed=r.flush(10), stats=r.stats(), kinds=[e["kind"] for e in errors])
r.close()
`,
    );
    expect(r.result).toMatchObject({ flushed: true, stats: { sent: 10, dropped: 20 }, kinds: ['overflow'] });
    const got = srv.requests.filter((q) => q.path === '/api/v1/ingest').flatMap((q) => (q.body as Array<{ latency_ms: number }>).map((x) => x.latency_ms));
    expect(got).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
  });

  it('drops only the record a 400 names, and a whole batch on 401', async () => {
    const { r } = await withServer((req) => {
      if (req.path === '/api/v1/ingest') {
        const batch = req.body as Array<{ latency_ms: number; agent_id: string }>;
        if (batch[0].agent_id === 'py-401') return { status: 401, body: { ok: false, code: 'IMM_ERR_UNAUTHORIZED', error: 'wrong X-API-KEY' } };
        const bad = batch.findIndex((x) => x.latency_ms === 2);
        if (bad >= 0) return { status: 400, body: { ok: false, code: 'IMM_ERR_VALIDATION', error: `record ${bad}: bad`, index: bad } };
      }
      return ok()(req);
    }, `
r = reporter("py-s")
for i in range(5):
    r.report(latency_ms=i)
r.flush(10)
u = reporter("py-401")
for i in range(3):
    u.report(latency_ms=i)
u.flush(10)
out(stats=r.stats(), u=u.stats(), errors=errors)
`);
    expect(r.result.stats).toMatchObject({ sent: 4, dropped: 1 });
    expect(r.result.u).toMatchObject({ sent: 0, dropped: 3 });
    expect(r.result.errors.map((e: { kind: string; status: number; records: number }) => [e.kind, e.status, e.records])).toEqual([
      ['rejected', 400, 1],
      ['rejected', 401, 3],
    ]);
  });

  it('polls for the directive while quarantined and acknowledges what on_directive returns', async () => {
    let polls = 0;
    const directive = { id: 'py-s:5', action: 'reduce_autonomy', diagnosis: 'infinite_loop' };
    const { r, srv } = await withServer((req) => {
      if (req.path.endsWith('/directive')) return ++polls < 3 ? ok('quarantined')(req) : ok('healing', directive)(req);
      return ok('quarantined')(req);
    }, `
got = []
def on_directive(d):
    got.append(d)
    return "autonomy reduced to 3 steps"
r = reporter("py-s", on_directive=on_directive)
r.report(latency_ms=1)
r.flush(5)
q = r.quarantined
deadline = time.time() + 10
while r.status != "probation" and time.time() < deadline:
    time.sleep(0.02)
out(quarantined_first=q, got=got, status=r.status, errors=errors)
r.close()
`);
    expect(r.result).toMatchObject({ quarantined_first: true, got: [directive], status: 'probation', errors: [] });
    expect(polls).toBeGreaterThanOrEqual(3);
    const ack = srv.requests.find((q) => q.path.endsWith('/ack'))!;
    expect(ack.path).toBe('/api/v1/agents/py-s/directives/py-s%3A5/ack');
    expect(ack.body).toEqual({ ok: true, detail: 'autonomy reduced to 3 steps' });
  });

  it('acknowledges a raising on_directive as not applied', async () => {
    const { r, srv } = await withServer(ok('healing', { id: 'd9', action: 'rollback_prompt', diagnosis: 'prompt_drift' }), `
def boom(d):
    raise RuntimeError("no previous prompt")
r = reporter("py-s", on_directive=boom)
r.report(latency_ms=1)
out(flushed=r.flush(5), kinds=[e["kind"] for e in errors])
r.close()
`);
    expect(r.result).toMatchObject({ flushed: true, kinds: ['directive'] });
    expect(srv.requests.find((q) => q.path.endsWith('/ack'))?.body).toEqual({ ok: false, detail: 'on_directive failed: no previous prompt' });
  });
});

describe('immune_sdk.verify_signature', () => {
  it('accepts what the control plane signs and refuses a changed body, another secret or an old timestamp', async () => {
    const body = JSON.stringify({ directive_id: 'a:1', agent_id: 'a', action: 'revoke_tools', diagnosis: 'prompt_injection', trigger: 'auto', issued_at: 1 });
    const headers = signatureHeaders('s3cret', body, Date.now() / 1000);
    const old = signatureHeaders('s3cret', body, Date.now() / 1000 - 3600);
    const r = await python(
      `
body = os.environ["BODY"]
h = json.loads(os.environ["HEADERS"])
old = json.loads(os.environ["OLD"])
out(good=verify_signature("s3cret", body.encode(), h), other=verify_signature("other", body, h),
    changed=verify_signature("s3cret", body.replace("revoke_tools", "reset_agent"), h), old=verify_signature("s3cret", body, old))
`,
      { BODY: body, HEADERS: JSON.stringify(headers), OLD: JSON.stringify(old) },
    );
    expectClean(r);
    expect(r.result).toEqual({ good: true, other: false, changed: false, old: false });
  });
});
