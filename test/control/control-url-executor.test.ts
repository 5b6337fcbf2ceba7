import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../sdk/typescript/src/index.js';
import type { ControlPlane } from '../../src/control/control-plane.js';
import { ControlUrlExecutor } from '../../src/control/control-url-executor.js';
import type { AgentRuntime, Effect } from '../../src/engine/engine.js';
import { silentLogger } from '../../src/log.js';
import { INGEST_KEY, startProduct, vitalsFor } from '../support/product.js';
import { startScriptedServer, until, type ScriptedHandler, type ScriptedServer } from '../support/scripted-http.js';

const SECRET = 'control-secret-0123456789';

const servers: ScriptedServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function agentServer(h: ScriptedHandler): Promise<ScriptedServer> {
  const s = await startScriptedServer(h);
  servers.push(s);
  return s;
}

/*
 * Delivery semantics against real loopback servers. The outcomes go to a
 * recorder standing in for ControlPlane.completeAction (the executor's whole
 * contract with it); the last suite runs the executor inside the real product.
 */
function executor(opts: { timeoutMs?: number; attempts?: number } = {}) {
  const outcomes: Array<{ agentId: string; attemptId: string; ok: boolean; detail: string }> = [];
  const cp = { completeAction: (agentId: string, attemptId: string, ok: boolean, detail: string) => outcomes.push({ agentId, attemptId, ok, detail }) } as unknown as ControlPlane;
  const ex = new ControlUrlExecutor({ cp: () => cp, secret: SECRET, log: silentLogger(), timeoutMs: opts.timeoutMs ?? 1000, attempts: opts.attempts ?? 3, backoffMs: 20 });
  const run = (url: string | undefined, action: Effect['action'] = 'revoke_tools') => {
    const effect: Effect = { type: 'execute_action', agent_id: 'ctl-1', attempt_id: 'ctl-1:42', action, diagnosis: 'prompt_injection', trigger: 'auto' };
    ex.execute(effect, { id: 'ctl-1', meta: { agent_type: 'x', model: '', provider: '', mcp_servers: [], control_url: url, source: 'external' } } as unknown as AgentRuntime);
  };
  return { ex, outcomes, run };
}

describe('ControlUrlExecutor', () => {
  it('POSTs the directive signed with the webhook secret; 2xx is applied with the agent’s detail', async () => {
    const s = await agentServer(() => ({ status: 200, body: { ok: true, detail: 'revoked web-fetch and shell' } }));
    const { run, outcomes, ex } = executor();
    run(`${s.url}/immune/control`);
    await until(() => outcomes.length === 1, 'the outcome');
    expect(outcomes[0]).toEqual({ agentId: 'ctl-1', attemptId: 'ctl-1:42', ok: true, detail: 'revoked web-fetch and shell' });
    const req = s.requests[0];
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/immune/control');
    expect(req.body).toMatchObject({ directive_id: 'ctl-1:42', agent_id: 'ctl-1', action: 'revoke_tools', diagnosis: 'prompt_injection', trigger: 'auto' });
    expect(Math.abs((req.body as { issued_at: number }).issued_at - Date.now() / 1000)).toBeLessThan(10);
    expect(req.headers['x-immune-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    // The agent-side helper of the SDK accepts it; a different secret or a changed body does not.
    expect(verifySignature(SECRET, req.raw, req.headers)).toBe(true);
    expect(verifySignature('other-secret', req.raw, req.headers)).toBe(false);
    expect(verifySignature(SECRET, req.raw.replace('revoke_tools', 'reset_agent'), req.headers)).toBe(false);
    expect(verifySignature(SECRET, req.raw, req.headers, { nowSeconds: Date.now() / 1000 + 3600 })).toBe(false);
    expect(ex.counters).toMatchObject({ applied: 1, refused: 0, failed: 0 });
  });

  it('retries a 500 and records the later 2xx; each attempt is signed afresh', async () => {
    let n = 0;
    const s = await agentServer(() => (++n === 1 ? { status: 500, body: 'oops' } : { status: 204 }));
    const { run, outcomes, ex } = executor();
    run(s.url);
    await until(() => outcomes.length === 1, 'the outcome');
    expect(outcomes[0].ok).toBe(true);
    expect(outcomes[0].detail).toContain('HTTP 204');
    expect(s.requests).toHaveLength(2);
    expect(s.requests.every((r) => verifySignature(SECRET, r.raw, r.headers))).toBe(true);
    expect(ex.counters.retries).toBe(1);
  });

  it('gives up after the attempts when the URL keeps answering 500, with a clear detail', async () => {
    const s = await agentServer(() => ({ status: 500, body: { error: 'agent crashed' } }));
    const { run, outcomes, ex } = executor({ attempts: 3 });
    run(s.url);
    await until(() => outcomes.length === 1, 'the outcome');
    expect(s.requests).toHaveLength(3);
    expect(outcomes[0].ok).toBe(false);
    expect(outcomes[0].detail).toMatch(/^control URL failed after 3 attempts: HTTP 500/);
    expect(ex.counters.failed).toBe(1);
  });

  it('times out a URL that never answers, per attempt, and records the failure', async () => {
    const s = await agentServer(() => 'hang');
    const { run, outcomes } = executor({ timeoutMs: 150, attempts: 2 });
    const t0 = Date.now();
    run(s.url);
    await until(() => outcomes.length === 1, 'the outcome', 5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(s.requests).toHaveLength(2);
    expect(outcomes[0]).toMatchObject({ ok: false, detail: 'control URL failed after 2 attempts: no answer within 150 ms' });
  });

  it('times out a hanging URL even when garbage collection runs meanwhile', async () => {
    // AbortSignal.any([AbortSignal.timeout(…)]) holds the timeout weakly in Node 20: a collection during
    // the wait dropped it and the delivery hung for good (nodejs/node#57736), flaky under CI load.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const s = await agentServer(() => 'hang');
    const { run, outcomes } = executor({ timeoutMs: 150, attempts: 2 });
    const collecting = setInterval(gc, 5);
    try {
      run(s.url);
      await until(() => outcomes.length === 1, 'the outcome', 3000);
    } finally {
      clearInterval(collecting);
    }
    expect(outcomes[0]).toMatchObject({ ok: false, detail: 'control URL failed after 2 attempts: no answer within 150 ms' });
  });

  it('does not retry a 4xx: the agent refused it', async () => {
    const s = await agentServer(() => ({ status: 403, body: { error: 'bad signature' } }));
    const { run, outcomes, ex } = executor();
    run(s.url);
    await until(() => outcomes.length === 1, 'the outcome');
    expect(s.requests).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ ok: false });
    expect(outcomes[0].detail).toContain('control URL refused the directive: HTTP 403');
    expect(outcomes[0].detail).toContain('bad signature');
    expect(ex.counters.refused).toBe(1);
  });

  it('records {ok:false} in a 2xx answer as not applied', async () => {
    const s = await agentServer(() => ({ status: 200, body: { ok: false, detail: 'no previous prompt to roll back to' } }));
    const { run, outcomes } = executor();
    run(s.url, 'rollback_prompt');
    await until(() => outcomes.length === 1, 'the outcome');
    expect(outcomes[0]).toMatchObject({ ok: false, detail: 'the agent could not apply it: no previous prompt to roll back to' });
  });

  it('records a refused connection after its retries, without throwing', async () => {
    const s = await startScriptedServer(() => ({}));
    await s.close();
    const { run, outcomes } = executor({ attempts: 2 });
    run(s.url);
    await until(() => outcomes.length === 1, 'the outcome');
    expect(outcomes[0].ok).toBe(false);
    expect(outcomes[0].detail).toContain('ECONNREFUSED');
  });

  it('close() ends deliveries in flight promptly', async () => {
    const s = await agentServer(() => 'hang');
    const { run, outcomes, ex } = executor({ timeoutMs: 60_000 });
    run(s.url);
    await until(() => s.requests.length === 1, 'the request to arrive');
    ex.close();
    await until(() => outcomes.length === 1, 'the outcome', 2000);
    expect(outcomes[0].ok).toBe(false);
  });
});

describe('ControlUrlExecutor in the product', () => {
  /** Registers an agent with a control URL, learns its baseline, then makes it sick enough to need approval. */
  async function sickAgent(s: Awaited<ReturnType<typeof startProduct>>, id: string, controlUrl: string) {
    const reg = await s.call('POST', '/api/v1/agents/register', { body: { agent_id: id, agent_type: 'Research', control_url: controlUrl }, headers: { 'x-api-key': INGEST_KEY } });
    expect(reg.json).toMatchObject({ ok: true, status: 'registered' });
    const next = vitalsFor(id, 3);
    expect((await s.ingest(Array.from({ length: 20 }, () => next()))).status).toBe(200);
    for (let i = 0; i < 6; i++) {
      const r = await s.ingest(next({ tools: 10, input: 10 }));
      if (r.json.status === 'pending_approval') return next;
    }
    throw new Error(`${id} did not reach pending_approval`);
  }

  it('routes an agent with a control URL to it: the directive is not in the ingest answer, the outcome is recorded, probation follows', async () => {
    const s = await startProduct({ WEBHOOK_SECRET: SECRET });
    try {
      const agent = await agentServer((req) => ({ status: 200, body: { ok: true, detail: `applied ${(req.body as { action: string }).action}` } }));
      const next = await sickAgent(s, 'cu-agent', `${agent.url}/control`);
      expect((await s.op('POST', '/api/v1/agents/cu-agent/approve', {})).status).toBe(200);
      await until(async () => (await s.op('GET', '/api/v1/agents/cu-agent')).json.agent.status === 'probation', 'probation after the control URL applied the action');
      expect(agent.requests).toHaveLength(1);
      expect(verifySignature(SECRET, agent.requests[0].raw, agent.requests[0].headers)).toBe(true);
      const action = (agent.requests[0].body as { action: string }).action;
      const history = (await s.op('GET', '/api/v1/agents/cu-agent')).json.history as Array<{ type: string; detail?: string }>;
      expect(history.find((e) => e.type === 'action_applied')?.detail).toBe(`applied ${action}`);
      // Healed behaviour: probation passes on fresh normal vitals.
      const r = await s.ingest(next());
      expect(r.json.directive).toBeNull();
      for (let i = 0; i < 6; i++) await s.ingest(next());
      expect((await s.op('GET', '/api/v1/agents/cu-agent')).json.agent.status).toBe('healthy');
    } finally {
      await s.stop();
    }
  });

  it('a control URL that hangs does not stall detection or ingest for anyone', async () => {
    const s = await startProduct({ WEBHOOK_SECRET: SECRET });
    try {
      const hanging = await agentServer(() => 'hang');
      await sickAgent(s, 'cu-hang', hanging.url);
      await s.op('POST', '/api/v1/agents/cu-hang/approve', {});
      await until(() => hanging.requests.length === 1, 'the directive to reach the hanging URL');

      // While that POST hangs, another agent is judged and quarantined as usual, and ingest answers at once.
      const t0 = performance.now();
      const next = vitalsFor('cu-other', 9);
      expect((await s.ingest(Array.from({ length: 20 }, () => next()))).status).toBe(200);
      let status = '';
      for (let i = 0; i < 6 && status !== 'pending_approval'; i++) status = (await s.ingest(next({ tools: 10, input: 10 }))).json.status;
      expect(status).toBe('pending_approval');
      expect(performance.now() - t0).toBeLessThan(2000);
      expect((await s.op('GET', '/api/v1/agents/cu-hang')).json.agent.status).toBe('healing');
    } finally {
      await s.stop();
    }
  });
});
