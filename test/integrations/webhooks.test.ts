import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ImmuneError } from '../../src/domain/errors.js';
import type { FleetIncident, ImmuneEvent } from '../../src/domain/events.js';
import { parseVitals } from '../../src/domain/vitals.js';
import { ImmuneEngine } from '../../src/engine/engine.js';
import { Notifier, notificationFor, redactUrl, slackMessage, verifySignature, type Notification, type NotifierOptions, type SlackMessage } from '../../src/integrations/webhooks.js';

const SECRET = 'test-secret-0123456789';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on loopback. `answer` decides each response; 'hang' never answers. */
interface Receiver {
  url: string;
  requests: Received[];
  received(n: number): Promise<void>;
  close(): Promise<void>;
}

type Answer = { status: number; headers?: Record<string, string> } | 'hang';

async function receiver(answer: (nth: number) => Answer = () => ({ status: 200 })): Promise<Receiver> {
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const hanging: ServerResponse[] = [];
  const r = { requests: [] as Received[] } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const a = answer(r.requests.length);
      if (a === 'hang') hanging.push(res);
      else res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers }).end(a.status < 300 ? 'ok' : 'nope');
      for (const w of waiters.filter((x) => r.requests.length >= x.n)) w.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T000/B000/secretpart`;
  r.received = (n) => (r.requests.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })));
  r.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return r;
}

/** Awaits a condition the code under test reaches asynchronously (checked every few ms, bounded). */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function rx(answer?: (nth: number) => Answer): Promise<Receiver> {
  const r = await receiver(answer);
  cleanup.push(() => r.close());
  return r;
}

function notifier(opts: Partial<NotifierOptions>): Notifier {
  const n = new Notifier({ webhookUrls: [], slackWebhookUrls: [], secret: SECRET, backoffBaseMs: 5, backoffMaxMs: 50, random: () => 0.5, ...opts });
  cleanup.push(() => n.close(200));
  return n;
}

/** The engine's own batch for a severe infection: [..., infection_detected, approval_requested]. */
function severeInfectionBatch(): ImmuneEvent[] {
  const engine = new ImmuneEngine({ healingStepDelaySeconds: 0 });
  const v = (t: number, over: Record<string, unknown> = {}) => parseVitals({ agent_id: 'billing-bot', agent_type: 'Support', model: 'gpt-4o', latency_ms: 900 + (t % 5) * 20, input_tokens: 400 + (t % 7) * 10, output_tokens: 200, tool_calls: 2, success: true, prompt_hash: 'p', ...over }, t);
  let t = 0;
  for (let i = 0; i < 30; i++) engine.observe(v(++t));
  for (let i = 0; i < 50; i++) {
    const out = engine.observe(v(++t, { input_tokens: 60_000, output_tokens: 20_000 }));
    if (out.events.some((e) => e.type === 'approval_requested')) return out.events;
  }
  throw new Error('the engine did not ask for approval');
}

const incident: FleetIncident = { id: 'inc-1', group: 'provider:openai', started_at: 100, agents: ['a1', 'a2', 'a3'], anomalies: ['latency_spike', 'error_rate_spike'], max_deviation: 6.2 };
const fleetStarted: ImmuneEvent = { seq: 40, ts: 100, agent_id: 'fleet:provider:openai', actor: 'system', reason: 'three agents on openai degraded together', type: 'fleet_incident_started', incident };
const fleetEnded: ImmuneEvent = { seq: 41, ts: 400, agent_id: 'fleet:provider:openai', actor: 'system', reason: 'quiet for 120 s', type: 'fleet_incident_ended', incident: { ...incident, ended_at: 400 } };
const exhausted: ImmuneEvent = { seq: 9, ts: 50, agent_id: 'a7', actor: 'system', reason: 'every action failed', type: 'exhausted' };

describe('Notifier (webhooks)', () => {
  it('signs each request with HMAC-SHA256 over "<timestamp>.<body>" and sends generic and Slack bodies for a pending approval', async () => {
    const generic = await rx();
    const slack = await rx();
    const n = notifier({ webhookUrls: [generic.url], slackWebhookUrls: [slack.url], now: () => 1_700_000_000_500, publicUrl: 'https://immune.example.com' });
    const batch = severeInfectionBatch();
    const infection = batch.find((e) => e.type === 'infection_detected');
    if (infection?.type !== 'infection_detected') throw new Error('no infection');
    n.onEvents(batch);
    await n.whenIdle();
    expect(n.stats()).toEqual({ sent: 2, failed: 0, dropped: 0, queued: 0, retrying: 0 });

    for (const req of [...generic.requests, ...slack.requests]) {
      const ts = req.headers['x-immune-timestamp'] as string;
      expect(ts).toBe('1700000000');
      // Computed here independently of the product's signing code.
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${req.body}`).digest('hex')}`;
      expect(req.headers['x-immune-signature']).toBe(expected);
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.headers['x-immune-event']).toBe('approval_pending');
      expect(verifySignature(SECRET, req.body, { timestamp: ts, signature: expected }, 1_700_000_010)).toBe(true);
      expect(verifySignature(SECRET, `${req.body} `, { timestamp: ts, signature: expected }, 1_700_000_010)).toBe(false);
      expect(verifySignature('other-secret', req.body, { timestamp: ts, signature: expected }, 1_700_000_010)).toBe(false);
      // A captured request replayed an hour later is refused.
      expect(verifySignature(SECRET, req.body, { timestamp: ts, signature: expected }, 1_700_003_600)).toBe(false);
    }

    const body = JSON.parse(generic.requests[0].body) as Notification;
    expect(body).toMatchObject({ version: 1, kind: 'approval_pending', severity: 'critical', agent_id: 'billing-bot', dashboard_url: 'https://immune.example.com/' });
    expect(body.infection?.max_deviation).toBe(infection.infection.max_deviation);
    expect(body.diagnosis?.hypotheses[0].diagnosis).toBe(infection.diagnosis.hypotheses[0].diagnosis);
    expect(body.title).toContain(infection.diagnosis.hypotheses[0].diagnosis);
    expect(generic.requests[0].headers['x-immune-delivery']).toBe(body.id);

    const s = JSON.parse(slack.requests[0].body) as SlackMessage;
    expect(s.text).toContain('Approval needed: agent billing-bot');
    expect(s.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    expect(JSON.stringify(s.blocks)).toContain('<https://immune.example.com/|Open dashboard>');
  });

  it('takes the agent context from the control loop when the batch does not carry the infection', async () => {
    const r = await rx();
    const batch = severeInfectionBatch();
    const inf = batch.find((e) => e.type === 'infection_detected');
    if (inf?.type !== 'infection_detected') throw new Error('no infection');
    const n = notifier({ webhookUrls: [r.url], context: (id) => (id === 'billing-bot' ? { infection: inf.infection, diagnosis: inf.diagnosis } : id === 'a7' ? { tried: ['reset_memory', 'rollback_prompt'] } : undefined) });
    n.onEvents(batch.filter((e) => e.type === 'approval_requested'));
    n.onEvents([exhausted]);
    await n.whenIdle();
    const [approval, ex] = r.requests.map((q) => JSON.parse(q.body) as Notification);
    expect(approval.infection?.anomalies).toEqual(inf.infection.anomalies);
    expect(ex).toMatchObject({ kind: 'agent_exhausted', agent_id: 'a7', tried: ['reset_memory', 'rollback_prompt'] });
  });

  it('notifies fleet incidents starting and ending, and nothing else', async () => {
    const r = await rx();
    const slack = await rx();
    const n = notifier({ webhookUrls: [r.url], slackWebhookUrls: [slack.url] });
    n.onEvents([{ seq: 1, ts: 1, agent_id: 'a1', actor: 'system', reason: '', type: 'baseline_ready' }, fleetStarted, { seq: 2, ts: 1, agent_id: 'a1', actor: 'operator:x', reason: '', type: 'approved' }, fleetEnded]);
    await n.whenIdle();
    const kinds = r.requests.map((q) => (JSON.parse(q.body) as Notification).kind);
    expect(kinds).toEqual(['fleet_incident_started', 'fleet_incident_ended']);
    const ended = JSON.parse(r.requests[1].body) as Notification;
    expect(ended.title).toContain('ended after 300 s');
    expect(ended.incident?.agents).toEqual(['a1', 'a2', 'a3']);
    expect(slack.requests.map((q) => (JSON.parse(q.body) as SlackMessage).text)).toEqual([expect.stringContaining('Fleet incident on provider:openai: 3 agents'), expect.stringContaining('ended after 300 s')]);
  });

  it('retries after a 500 and delivers the same body with the same delivery id', async () => {
    const r = await rx((nth) => (nth === 1 ? { status: 500 } : { status: 200 }));
    const n = notifier({ webhookUrls: [r.url] });
    n.onEvents([exhausted]);
    await n.whenIdle();
    expect(n.stats()).toEqual({ sent: 1, failed: 0, dropped: 0, queued: 0, retrying: 0 });
    expect(r.requests).toHaveLength(2);
    expect(r.requests[1].body).toBe(r.requests[0].body);
    expect(r.requests[1].headers['x-immune-delivery']).toBe(r.requests[0].headers['x-immune-delivery']);
  });

  it('does not retry a 4xx refusal, but retries 429 after Retry-After', async () => {
    const refusing = await rx(() => ({ status: 404 }));
    const limited = await rx((nth) => (nth === 1 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 204 }));
    const n = notifier({ webhookUrls: [refusing.url, limited.url] });
    n.onEvents([exhausted]);
    await n.whenIdle();
    expect(refusing.requests).toHaveLength(1);
    expect(limited.requests).toHaveLength(2);
    expect(n.stats()).toEqual({ sent: 1, failed: 1, dropped: 0, queued: 0, retrying: 0 });
  });

  it('gives up after maxAttempts when nothing listens', async () => {
    const gone = await rx();
    const url = gone.url;
    await gone.close();
    const n = notifier({ webhookUrls: [url], maxAttempts: 3 });
    n.onEvents([exhausted]);
    await n.whenIdle();
    expect(n.stats()).toEqual({ sent: 0, failed: 1, dropped: 0, queued: 0, retrying: 0 });
  });

  it('times out a hanging receiver without holding up the caller or the other receivers', async () => {
    const hang = await rx(() => 'hang');
    const fine = await rx();
    const n = notifier({ webhookUrls: [hang.url, fine.url], timeoutMs: 1000, maxAttempts: 1 });
    n.onEvents([fleetStarted]);
    // onEvents returned before any request was even sent: detection never waits for a receiver.
    expect(hang.requests.length + fine.requests.length).toBe(0);
    expect(n.stats().queued).toBe(2);
    await until(() => n.stats().sent === 1, 'the healthy receiver to be served');
    // ...while the hanging one is still in flight.
    expect(n.stats()).toMatchObject({ failed: 0, queued: 1 });
    await n.whenIdle();
    expect(n.stats()).toEqual({ sent: 1, failed: 1, dropped: 0, queued: 0, retrying: 0 });
    expect(hang.requests).toHaveLength(1);
  });

  it('drops and counts notifications beyond the queue bound', async () => {
    const hang = await rx(() => 'hang');
    const n = notifier({ webhookUrls: [hang.url], maxQueue: 3, concurrency: 1, timeoutMs: 60_000 });
    for (let i = 0; i < 10; i++) n.onEvents([{ ...exhausted, seq: 100 + i }]);
    expect(n.stats()).toEqual({ sent: 0, failed: 0, dropped: 7, queued: 3, retrying: 0 });
    await hang.received(1);
    // close() waits up to its deadline, then abandons what is left: every notification is accounted for.
    const final = await n.close(100);
    expect(final).toEqual({ sent: 0, failed: 0, dropped: 10 });
    expect(n.stats().queued).toBe(0);
  });

  it('close() delivers what is queued (retries included) and refuses new notifications', async () => {
    const r = await rx((nth) => (nth === 1 ? { status: 503 } : { status: 200 }));
    const n = notifier({ webhookUrls: [r.url], concurrency: 1, backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
    for (let i = 0; i < 4; i++) n.onEvents([{ ...exhausted, seq: 200 + i }]);
    await until(() => n.stats().sent === 3 && n.stats().retrying === 1, 'three sent and the 503 waiting to retry');
    // The 503 would wait a minute to retry; close() tries it again at once.
    expect(await n.close(5000)).toEqual({ sent: 4, failed: 0, dropped: 0 });
    n.onEvents([exhausted]);
    expect(n.stats()).toEqual({ sent: 4, failed: 0, dropped: 1, queued: 0, retrying: 0 });
    expect(await n.close(10)).toEqual({ sent: 4, failed: 0, dropped: 1 });
  });

  it('refuses bad settings with IMM_ERR_CONFIG and never logs a Slack URL path', () => {
    const err = (o: Partial<NotifierOptions>) => {
      try {
        new Notifier({ webhookUrls: [], slackWebhookUrls: [], secret: SECRET, ...o });
      } catch (e) {
        return e as ImmuneError;
      }
      throw new Error('expected an error');
    };
    expect(err({ webhookUrls: ['https://h.example/x'], secret: '' })).toMatchObject({ code: 'IMM_ERR_CONFIG', details: { setting: 'WEBHOOK_SECRET' } });
    const e = err({ slackWebhookUrls: ['ftp://hooks.slack.com/services/T1/B2/SECRET'] });
    expect(e).toBeInstanceOf(ImmuneError);
    expect(e.message).not.toContain('SECRET');
    expect(err({ webhookUrls: ['https://h.example/x'], timeoutMs: 0 }).details).toEqual({ setting: 'timeoutMs' });
    expect(redactUrl('https://hooks.slack.com/services/T1/B2/SECRET')).toBe('https://hooks.slack.com/…');
    // No URLs: a no-op notifier, no secret needed.
    expect(new Notifier({ webhookUrls: [], slackWebhookUrls: [], secret: '' }).enabled).toBe(false);
  });

  it('escapes Slack control characters and ignores events that need no notification', () => {
    const n = notificationFor({ ...exhausted, reason: 'tools <revoke> & reset failed' });
    const text = JSON.stringify(slackMessage(n!));
    expect(text).toContain('tools &lt;revoke&gt; &amp; reset failed');
    expect(notificationFor({ seq: 1, ts: 1, agent_id: 'a', actor: 'system', reason: '', type: 'released' })).toBeNull();
  });
});
