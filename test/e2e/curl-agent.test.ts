import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImmune, type ImmuneProcess } from '../support/immune-process.js';

const run = promisify(execFile);
const KEY = 'curl-e2e-ingest-key-0000000';
const OP = 'curl-e2e-operator-token-0000';

/** What the README tells a user to type: curl with the documented key against `immune serve`. */
async function curl(url: string, args: string[]): Promise<any> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...args, url]);
  return JSON.parse(stdout);
}

let p: ImmuneProcess;
beforeAll(async () => {
  p = await startImmune({
    args: ['serve'],
    env: { INGEST_API_KEY: KEY, OPERATOR_TOKEN: OP, IMMUNE_STORE: 'memory', HEALING_STEP_DELAY_SECONDS: '0.2', DIRECTIVE_TIMEOUT_SECONDS: '1', TICK_INTERVAL_SECONDS: '0.2' },
  });
});
afterAll(async () => {
  await p?.stop();
});

function sample(i: number, fault = 1) {
  return JSON.stringify({
    agent_id: 'billing-bot',
    agent_type: 'Support',
    model: 'gpt-4o',
    latency_ms: 800 + ((i * 37) % 120),
    input_tokens: Math.round((1200 + ((i * 53) % 150)) * fault),
    output_tokens: 300 + ((i * 17) % 40),
    cost: 0.004 * fault,
    tool_calls: 2,
    retries: 0,
    success: true,
    prompt_hash: '9f2c1a',
  });
}

describe('an external agent reporting with curl', () => {
  it('registers, is detected, quarantined and healed like a simulated agent', async () => {
    const ingest = (body: string) => curl(`${p.url}/api/v1/ingest`, ['-H', `X-API-KEY: ${KEY}`, '-H', 'content-type: application/json', '-d', body]);
    const reg = await curl(`${p.url}/api/v1/agents/register`, ['-H', `X-API-KEY: ${KEY}`, '-H', 'content-type: application/json', '-d', '{"agent_id":"billing-bot","agent_type":"Support","model":"gpt-4o","mcp_servers":["postgres"]}']);
    expect(reg).toEqual({ ok: true, status: 'registered', agent_id: 'billing-bot' });
    const wrong = await curl(`${p.url}/api/v1/ingest`, ['-H', 'X-API-KEY: nope', '-H', 'content-type: application/json', '-d', sample(0)]);
    expect(wrong).toMatchObject({ ok: false, code: 'IMM_ERR_UNAUTHORIZED' });

    let i = 0;
    for (; i < 20; i++) await ingest(sample(i));
    expect((await ingest(sample(i++))).status).toBe('healthy');

    // A moderate context blow-up (mild: healed without approval).
    let status = 'healthy';
    for (let k = 0; k < 10 && status === 'healthy'; k++) status = (await ingest(sample(i++, 1.6))).status;
    expect(['quarantined', 'healing', 'pending_approval']).toContain(status);
    const detail = await curl(`${p.url}/api/v1/agents/billing-bot`, ['-H', `Authorization: Bearer ${OP}`]);
    expect(detail.agent.infection.anomalies).toContain('input_token_spike');
    if (detail.agent.status === 'pending_approval') {
      await curl(`${p.url}/api/v1/agents/billing-bot/approve`, ['-H', `Authorization: Bearer ${OP}`, '-H', 'content-type: application/json', '-d', '{}']);
    }

    // The agent (fixed by its owner) reports normally again; curl ignores the directive, so it times out
    // into probation and the fresh vitals release the agent.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && status !== 'healthy') {
      status = (await ingest(sample(i++))).status;
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(status).toBe('healthy');
    const log = await curl(`${p.url}/api/v1/events?agent_id=billing-bot&limit=50`, ['-H', `Authorization: Bearer ${OP}`]);
    expect(log.events.map((e: any) => e.type)).toEqual(expect.arrayContaining(['agent_registered', 'baseline_ready', 'infection_detected', 'action_started', 'action_applied', 'probation_passed']));
  }, 90_000);
});
