import { createHmac, timingSafeEqual } from 'node:crypto';
import { ImmuneError } from '../domain/errors.js';
import type { FleetIncident, ImmuneEvent } from '../domain/events.js';
import type { Diagnosis, Infection } from '../domain/types.js';
import type { Logger } from '../log.js';
import type { DeliveryStats } from './signals.js';

/**
 * Outgoing notifications: a generic JSON body to WEBHOOK_URLS and a
 * Slack-compatible body to SLACK_WEBHOOK_URLS when an approval is pending, an
 * agent is exhausted, or a fleet incident starts or ends. Every request is
 * signed (HMAC-SHA256 over `${timestamp}.${body}`), queued in a bounded
 * in-memory queue and retried with exponential backoff. `onEvents` only
 * enqueues: detection never waits for a receiver.
 */

export type NotificationKind = 'approval_pending' | 'agent_exhausted' | 'fleet_incident_started' | 'fleet_incident_ended';

/** What the control loop knows about an agent, for messages whose event does not carry it. */
export interface AgentContext {
  infection?: Infection | null;
  diagnosis?: Diagnosis | null;
  /** Healing actions tried in the current episode. */
  tried?: readonly string[];
}

/** The generic JSON webhook body (version 1). */
export interface Notification {
  version: 1;
  /** Stable per event: retries of one delivery carry the same id, so receivers can deduplicate. */
  id: string;
  kind: NotificationKind;
  severity: 'critical' | 'warning' | 'info';
  title: string;
  agent_id: string;
  /** Event time, epoch seconds. */
  ts: number;
  seq: number;
  actor: string;
  reason: string;
  /** The instance that sent it (NotifierOptions.source), when set. */
  source?: string;
  infection?: Infection;
  diagnosis?: Diagnosis;
  tried?: string[];
  incident?: FleetIncident;
  dashboard_url?: string;
}

export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

const fmtSigma = (x: number) => `${x.toFixed(1)}σ`;

/** The notification an event calls for (with the agent's context where the event lacks it), or null. Pure. */
export function notificationFor(e: ImmuneEvent, context?: AgentContext, opts: { source?: string; publicUrl?: string } = {}): Notification | null {
  const make = (kind: NotificationKind, severity: Notification['severity'], title: string, extra: Partial<Notification>): Notification => ({
    version: 1,
    id: `${opts.source ? `${opts.source}:` : ''}${kind}:${e.seq}`,
    kind,
    severity,
    title,
    agent_id: e.agent_id,
    ts: e.ts,
    seq: e.seq,
    actor: e.actor,
    reason: e.reason,
    ...(opts.source ? { source: opts.source } : {}),
    ...extra,
    ...(opts.publicUrl ? { dashboard_url: `${opts.publicUrl}/` } : {}),
  });
  const agentContext = (): Partial<Notification> => ({
    ...(context?.infection ? { infection: context.infection } : {}),
    ...(context?.diagnosis ? { diagnosis: context.diagnosis } : {}),
  });
  switch (e.type) {
    case 'approval_requested': {
      const inf = context?.infection;
      const primary = context?.diagnosis?.hypotheses[0]?.diagnosis;
      const detail = inf ? ` (${inf.severity} ${fmtSigma(inf.max_deviation)}: ${inf.anomalies.join(', ')})` : '';
      return make('approval_pending', 'critical', `Approval needed: agent ${e.agent_id}${primary ? ` — likely ${primary}` : ''}${detail}`, agentContext());
    }
    case 'exhausted':
      return make('agent_exhausted', 'critical', `Agent ${e.agent_id} exhausted every healing action — an operator is needed`, { ...agentContext(), ...(context?.tried ? { tried: [...context.tried] } : {}) });
    case 'fleet_incident_started': {
      const i = e.incident;
      return make('fleet_incident_started', 'warning', `Fleet incident on ${i.group}: ${i.agents.length} agents (${i.anomalies.join(', ')}, up to ${fmtSigma(i.max_deviation)})`, { incident: i });
    }
    case 'fleet_incident_ended': {
      const i = e.incident;
      const secs = Math.round((i.ended_at ?? e.ts) - i.started_at);
      return make('fleet_incident_ended', 'info', `Fleet incident on ${i.group} ended after ${secs} s (${i.agents.length} agents affected)`, { incident: i });
    }
    default:
      return null;
  }
}

/** Slack mrkdwn treats &, < and > as control characters. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
const ICON: Record<NotificationKind, string> = { approval_pending: ':rotating_light:', agent_exhausted: ':sos:', fleet_incident_started: ':warning:', fleet_incident_ended: ':white_check_mark:' };

/** A Slack incoming-webhook body ({text, blocks}) for a notification. */
export function slackMessage(n: Notification): SlackMessage {
  const fields: string[] = [];
  if (!n.incident) fields.push(`*Agent*\n${esc(n.agent_id)}`);
  const primary = n.diagnosis?.hypotheses[0];
  if (primary) fields.push(`*Likely cause*\n${esc(primary.diagnosis)} (${Math.round(primary.confidence * 100)}%)`);
  if (n.infection) fields.push(`*Deviation*\n${fmtSigma(n.infection.max_deviation)} ${n.infection.severity}`, `*Anomalies*\n${esc(n.infection.anomalies.join(', ') || '—')}`);
  if (n.tried?.length) fields.push(`*Tried*\n${esc(n.tried.join(', '))}`);
  if (n.incident) fields.push(`*Group*\n${esc(n.incident.group)}`, `*Agents*\n${n.incident.agents.length}: ${esc(clip(n.incident.agents.join(', '), 200))}`);
  const context = [`${n.kind} · event ${n.seq}${n.source ? ` · ${esc(n.source)}` : ''}`];
  if (n.dashboard_url) context.push(`<${n.dashboard_url}|Open dashboard>`);
  return {
    text: `${ICON[n.kind]} ${n.title}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(n.title, 150), emoji: true } },
      { type: 'section', text: { type: 'mrkdwn', text: esc(clip(n.reason || n.title, 3000)) }, fields: fields.slice(0, 10).map((text) => ({ type: 'mrkdwn', text })) },
      { type: 'context', elements: context.map((text) => ({ type: 'mrkdwn', text })) },
    ],
  };
}

export const SIGNATURE_HEADER = 'x-immune-signature';
export const TIMESTAMP_HEADER = 'x-immune-timestamp';

/** The signature headers for a body: X-Immune-Timestamp (epoch seconds) and X-Immune-Signature: sha256=<hex HMAC of `${timestamp}.${body}`>. */
export function signatureHeaders(secret: string, body: string, timestampSec: number): Record<string, string> {
  const ts = String(Math.floor(timestampSec));
  const mac = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
  return { 'X-Immune-Timestamp': ts, 'X-Immune-Signature': `sha256=${mac}` };
}

/**
 * For receivers (and agents checking control-URL directives): true when the
 * signature matches the raw body and the timestamp is within `toleranceSec` of
 * now (so a captured request cannot be replayed later).
 */
export function verifySignature(secret: string, body: string, headers: { timestamp?: string | null; signature?: string | null }, nowSec: number, toleranceSec = 300): boolean {
  const ts = Number(headers.timestamp);
  if (!headers.timestamp || !Number.isInteger(ts) || Math.abs(nowSec - ts) > toleranceSec) return false;
  const expected = Buffer.from(signatureHeaders(secret, body, ts)['X-Immune-Signature']);
  const got = Buffer.from(headers.signature ?? '');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export interface NotifierOptions {
  webhookUrls: readonly string[];
  slackWebhookUrls: readonly string[];
  /** HMAC key (WEBHOOK_SECRET); required when any URL is set. */
  secret: string;
  /** Infection, diagnosis and tried actions of an agent (e.g. from the engine's workflow). */
  context?: (agentId: string) => AgentContext | undefined;
  /** Base URL of the dashboard for links (PUBLIC_URL). */
  publicUrl?: string;
  /** Names this instance in bodies and ids (e.g. the run id). */
  source?: string;
  /** Per-request timeout, ms. Default 5000. */
  timeoutMs?: number;
  /** Deliveries held (queued, waiting to retry, in flight); beyond it new ones are dropped and counted. Default 1000. */
  maxQueue?: number;
  /** Attempts per delivery including the first. Default 6. */
  maxAttempts?: number;
  /** Backoff before retry n is min(maxMs, baseMs·2^(n-1)), jittered to 50–100 %. Defaults 500 ms and 60 s. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Deliveries in flight at once, so one slow receiver does not hold up the others. Default 4. */
  concurrency?: number;
  /** Epoch milliseconds (signature timestamps). */
  now?: () => number;
  /** [0,1) for backoff jitter. */
  random?: () => number;
  log?: Logger;
}

interface Job {
  url: string;
  kind: NotificationKind;
  id: string;
  body: string;
  attempts: number;
  timer?: NodeJS.Timeout;
  abort?: AbortController;
  /** Set when close() gave up on it: counted as dropped, not failed. */
  abandoned?: boolean;
}

type AttemptResult = { ok: true } | { ok: false; retry: boolean; detail: string; retryAfterMs?: number };

/** Slack incoming-webhook URLs are credentials; logs show only the origin. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname.length > 1 || u.search ? `${u.origin}/…` : u.origin;
  } catch {
    return '(invalid url)';
  }
}

function parseRetryAfter(v: string | null, nowMs: number): number | undefined {
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** 2xx delivered; 408, 429 and 5xx may succeed later; any other status is the receiver refusing this body for good. */
function classify(status: number): 'ok' | 'retry' | 'fail' {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'fail';
}

/** Sends notifications for engine events to webhooks; see the module comment. */
export class Notifier {
  private readonly o: Required<Omit<NotifierOptions, 'context' | 'publicUrl' | 'source' | 'log'>> & Pick<NotifierOptions, 'context' | 'publicUrl' | 'source' | 'log'>;
  private readonly ready: Job[] = [];
  private readonly waiting = new Set<Job>();
  private readonly inFlight = new Set<Job>();
  private readonly counts: DeliveryStats = { sent: 0, failed: 0, dropped: 0 };
  private idleWaiters: Array<() => void> = [];
  private closing = false;

  constructor(opts: NotifierOptions) {
    const bad = (setting: string, msg: string) => new ImmuneError('IMM_ERR_CONFIG', `invalid webhook setting ${setting}: ${msg}`, { setting });
    for (const [setting, urls] of [['WEBHOOK_URLS', opts.webhookUrls], ['SLACK_WEBHOOK_URLS', opts.slackWebhookUrls]] as const) {
      for (const u of urls) {
        let proto = '';
        try {
          proto = new URL(u).protocol;
        } catch {
          /* reported below */
        }
        if (proto !== 'http:' && proto !== 'https:') throw bad(setting, `'${redactUrl(u)}' is not an http(s) URL`);
      }
    }
    if (opts.webhookUrls.length + opts.slackWebhookUrls.length > 0 && opts.secret === '') throw bad('WEBHOOK_SECRET', 'a signing secret is required when webhooks are configured');
    this.o = {
      timeoutMs: 5000,
      maxQueue: 1000,
      maxAttempts: 6,
      backoffBaseMs: 500,
      backoffMaxMs: 60_000,
      concurrency: 4,
      now: Date.now,
      random: Math.random,
      ...opts,
    };
    for (const k of ['timeoutMs', 'maxQueue', 'maxAttempts', 'backoffBaseMs', 'backoffMaxMs', 'concurrency'] as const) {
      const v = this.o[k];
      if (!Number.isFinite(v) || v <= 0) throw bad(k, `must be a positive number, got ${v}`);
    }
  }

  /** True when at least one URL is configured. */
  get enabled(): boolean {
    return this.o.webhookUrls.length + this.o.slackWebhookUrls.length > 0;
  }

  /**
   * Enqueues the notifications these events call for and returns at once; never
   * throws for a delivery problem. Call with every outcome of the engine.
   */
  onEvents(events: readonly ImmuneEvent[]): void {
    if (!this.enabled) return;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (e.type !== 'approval_requested' && e.type !== 'exhausted' && e.type !== 'fleet_incident_started' && e.type !== 'fleet_incident_ended') continue;
      const n = notificationFor(e, this.contextFor(e, events, i), { source: this.o.source, publicUrl: this.o.publicUrl });
      if (n) this.enqueue(n);
    }
  }

  /** An approval follows its infection_detected in the same batch; otherwise ask the control loop. */
  private contextFor(e: ImmuneEvent, batch: readonly ImmuneEvent[], index: number): AgentContext | undefined {
    if (e.type === 'fleet_incident_started' || e.type === 'fleet_incident_ended') return undefined;
    for (let j = index - 1; j >= 0; j--) {
      const prev = batch[j];
      if (prev.agent_id === e.agent_id && prev.type === 'infection_detected') return { ...this.lookup(e.agent_id), infection: prev.infection, diagnosis: prev.diagnosis };
    }
    return this.lookup(e.agent_id);
  }

  private lookup(agentId: string): AgentContext | undefined {
    try {
      return this.o.context?.(agentId);
    } catch (err) {
      this.o.log?.warn({ err, agent_id: agentId }, 'webhook context lookup failed; sending without it');
      return undefined;
    }
  }

  /** Queues one notification to every configured URL (generic body or Slack body). */
  enqueue(n: Notification): void {
    const generic = this.o.webhookUrls.length > 0 ? JSON.stringify(n) : '';
    const slack = this.o.slackWebhookUrls.length > 0 ? JSON.stringify(slackMessage(n)) : '';
    for (const url of this.o.webhookUrls) this.admit({ url, kind: n.kind, id: n.id, body: generic, attempts: 0 });
    for (const url of this.o.slackWebhookUrls) this.admit({ url, kind: n.kind, id: n.id, body: slack, attempts: 0 });
    this.pump();
  }

  private get held(): number {
    return this.ready.length + this.waiting.size + this.inFlight.size;
  }

  private admit(job: Job): void {
    if (this.closing || this.held >= this.o.maxQueue) {
      this.counts.dropped += 1;
      // One line per drop would itself flood the log during an outage: log the first and every 100th.
      if (this.counts.dropped % 100 === 1) this.o.log?.warn({ url: redactUrl(job.url), kind: job.kind, dropped: this.counts.dropped, reason: this.closing ? 'shutting down' : 'queue full' }, 'webhook notification dropped');
      return;
    }
    this.ready.push(job);
  }

  private pump(): void {
    while (this.inFlight.size < this.o.concurrency && this.ready.length > 0) {
      const job = this.ready.shift() as Job;
      this.inFlight.add(job);
      void this.run(job);
    }
    if (this.held === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async run(job: Job): Promise<void> {
    job.attempts += 1;
    job.abort = new AbortController();
    let result: AttemptResult;
    try {
      result = await this.attempt(job, job.abort);
    } catch (err) {
      result = { ok: false, retry: true, detail: String(err) };
    }
    this.inFlight.delete(job);
    job.abort = undefined;
    if (result.ok) {
      this.counts.sent += 1;
    } else if (job.abandoned) {
      this.counts.dropped += 1;
    } else if (result.retry && job.attempts < this.o.maxAttempts) {
      const backoff = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** (job.attempts - 1)) * (0.5 + this.o.random() / 2);
      const delay = Math.min(this.o.backoffMaxMs, Math.max(backoff, result.retryAfterMs ?? 0));
      this.o.log?.debug({ url: redactUrl(job.url), kind: job.kind, attempt: job.attempts, delay_ms: Math.round(delay), detail: result.detail }, 'webhook delivery failed; will retry');
      this.waiting.add(job);
      job.timer = setTimeout(() => {
        this.waiting.delete(job);
        this.ready.push(job);
        this.pump();
      }, delay);
      job.timer.unref();
    } else {
      this.counts.failed += 1;
      this.o.log?.warn({ url: redactUrl(job.url), kind: job.kind, id: job.id, attempts: job.attempts, detail: result.detail }, 'webhook delivery failed; giving up');
    }
    this.pump();
  }

  private async attempt(job: Job, abort: AbortController): Promise<AttemptResult> {
    const timer = setTimeout(() => abort.abort(new Error(`timed out after ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
    try {
      const res = await fetch(job.url, {
        method: 'POST',
        redirect: 'manual',
        signal: abort.signal,
        body: job.body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'agent-immune-webhooks/1',
          'x-immune-event': job.kind,
          'x-immune-delivery': job.id,
          // Signed per attempt so the timestamp is fresh for the receiver's replay window.
          ...signatureHeaders(this.o.secret, job.body, this.o.now() / 1000),
        },
      });
      const verdict = classify(res.status);
      if (verdict === 'ok') {
        await res.body?.cancel();
        return { ok: true };
      }
      const text = (await res.text().catch(() => '')).slice(0, 200);
      return { ok: false, retry: verdict === 'retry', detail: `HTTP ${res.status}${text ? `: ${text}` : ''}`, retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), this.o.now()) };
    } catch (err) {
      const reason = abort.signal.aborted ? abort.signal.reason : err;
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { ok: false, retry: true, detail: `${reason instanceof Error ? reason.message : String(reason)}${cause ? ` (${cause})` : ''}` };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Delivery counters: sent, failed (gave up), dropped (queue full or shutdown); queued = still held, retrying = of those, waiting out a backoff. */
  stats(): DeliveryStats & { queued: number; retrying: number } {
    return { ...this.counts, queued: this.held, retrying: this.waiting.size };
  }

  /** Resolves when nothing is queued, waiting to retry or in flight. */
  whenIdle(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops accepting notifications, tries everything still held once more right
   * away, and waits for deliveries up to `deadlineMs`; what is left then is
   * aborted and counted as dropped. Safe to call twice.
   */
  async close(deadlineMs = 5000): Promise<DeliveryStats> {
    this.closing = true;
    for (const job of this.waiting) {
      clearTimeout(job.timer);
      this.ready.push(job);
    }
    this.waiting.clear();
    this.pump();
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([this.whenIdle(), new Promise<void>((resolve) => (deadline = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(deadline);
    if (this.held > 0) {
      const left = this.held;
      for (const job of this.waiting) clearTimeout(job.timer);
      this.counts.dropped += this.ready.length + this.waiting.size;
      this.ready.length = 0;
      this.waiting.clear();
      for (const job of this.inFlight) {
        job.abandoned = true;
        job.abort?.abort(new Error('notifier closed'));
      }
      this.o.log?.warn({ undelivered: left }, 'webhook notifier closed with deliveries pending; they are dropped');
      await this.whenIdle();
    }
    return { ...this.counts };
  }
}
