import { ImmuneSdkError, QuarantinedError, type SdkErrorKind } from './errors.js';
import { watchExit, unwatchExit, type ExitFlushable } from './exit-hooks.js';
import { backoffMs, describeAnswer, isRetryableStatus, requestJson, type HttpOutcome } from './http.js';
import { ackBodyOf, isContained, type Directive, type DirectiveResult } from './status.js';
import { AGENT_ID_PATTERN, toVitalsRecord, type VitalsRecord, type VitalsReport } from './vitals.js';

/** Options of ImmuneReporter. Names follow the Python SDK (and the seed prototype) so both read alike. */
export interface ImmuneReporterOptions {
  /** Stable id of this agent: 1–128 of [A-Za-z0-9._:@/-]. */
  agent_id: string;
  /** Control plane base URL. Default http://localhost:8090. */
  base_url?: string;
  /** Default 'external'. */
  agent_type?: string;
  /** Default model label for reports that do not name one. */
  model?: string;
  /** The control plane's INGEST_API_KEY, sent as X-API-KEY. */
  api_key?: string;
  /** Per-request timeout, seconds. Default 5. */
  timeout?: number;
  /** Called for every problem (refused records, outages, failed acknowledgements). Default: console.warn. */
  on_error?: (err: ImmuneSdkError) => void;
  /** Called once per new healing directive; its result (or exception) is acknowledged to the control plane. */
  on_directive?: (directive: Directive) => DirectiveResult | Promise<DirectiveResult>;
  /** Called when the control plane reports a different status for this agent. */
  on_status?: (status: string, previous: string | null) => void;
  /** Registered with the agent: the healer POSTs signed directives here instead of answering them in ingest. */
  control_url?: string;
  provider?: string;
  mcp_servers?: string[];
  /** Records per POST. Default 100. */
  batch_size?: number;
  /** Seconds between background sends. Default 1. */
  flush_interval?: number;
  /** Records kept while the control plane is unreachable; beyond it the oldest are dropped and counted. Default 10000. */
  max_buffer?: number;
  /** Seconds between directive polls while contained and not reporting. Default 2. */
  poll_interval?: number;
  /** First retry delay, seconds (doubles per failure, with jitter). Default 0.5. */
  retry_backoff?: number;
  /** Longest retry delay, seconds. Default 30. */
  max_backoff?: number;
  /** Send what is buffered when the process exits (beforeExit, SIGTERM). Default true. */
  flush_on_exit?: boolean;
  /** How long the exit flush may take, seconds. Default 3. */
  exit_timeout?: number;
  /** Jitter source (tests). */
  random?: () => number;
}

/** Counters since the reporter was created. */
export interface ReporterStats {
  /** Records the control plane accepted. */
  sent: number;
  /** Records discarded: buffer overflow, refused by the control plane, invalid, or unsent when close() gave up. */
  dropped: number;
  /** Send attempts that failed (network, timeout, 5xx, 429) and were retried. */
  failed: number;
  /** Records waiting to be sent, including a batch in flight. */
  buffered: number;
  /** Healing directives received. */
  directives: number;
}

const DEFAULT_ERROR_HANDLER = (err: ImmuneSdkError) => console.warn(`[agent-immune] ${err.message}`);
const ACK_ATTEMPTS = 3;
const SEEN_DIRECTIVES = 64;

/**
 * Reports an agent's vitals to Agent Immune and carries its decisions back.
 *
 * report() only queues (it never waits for the network); a background sender
 * posts batches, retries outages with backoff, and drops (and counts) the
 * oldest records when its bounded buffer is full. Every answer tells the agent
 * its lifecycle status: `quarantined` is true while the control plane holds it
 * contained, `guard()` throws QuarantinedError then, and each new healing
 * directive goes to `on_directive`, whose outcome is acknowledged.
 */
export class ImmuneReporter implements ExitFlushable {
  readonly agent_id: string;
  readonly agent_type: string;
  readonly model: string;
  private readonly base: string;
  private readonly o: ImmuneReporterOptions;
  private readonly timeoutMs: number;
  private readonly maxBuffer: number;
  private readonly flushMs: number;
  private readonly pollMs: number;
  private readonly onError: (err: ImmuneSdkError) => void;
  private readonly random: () => number;

  private queue: VitalsRecord[] = [];
  private inflight = 0;
  private batchLimit: number;
  private pumping: Promise<void> | null = null;
  private readonly acks = new Set<Promise<void>>();
  private failures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly ticker: NodeJS.Timeout;
  private registered = false;
  private overflowing = false;
  private closed = false;
  private exitAttempted = false;
  private currentStatus: string | null = null;
  private lastContact = 0;
  private polling = false;
  private readonly seen: string[] = [];
  private readonly counters = { sent: 0, dropped: 0, failed: 0, directives: 0 };

  constructor(options: ImmuneReporterOptions) {
    const o = options;
    if (typeof o?.agent_id !== 'string' || !AGENT_ID_PATTERN.test(o.agent_id)) {
      throw new ImmuneSdkError('invalid', `agent_id must be 1–128 characters of A-Z a-z 0-9 . _ : @ / - (got ${JSON.stringify(o?.agent_id)})`);
    }
    this.base = checkUrl('base_url', o.base_url ?? 'http://localhost:8090').replace(/\/+$/, '');
    if (o.control_url !== undefined) checkUrl('control_url', o.control_url);
    this.o = o;
    this.agent_id = o.agent_id;
    this.agent_type = o.agent_type ?? 'external';
    this.model = o.model ?? '';
    this.timeoutMs = seconds('timeout', o.timeout, 5) * 1000;
    this.flushMs = seconds('flush_interval', o.flush_interval, 1) * 1000;
    this.pollMs = seconds('poll_interval', o.poll_interval, 2) * 1000;
    this.batchLimit = whole('batch_size', o.batch_size, 100);
    this.maxBuffer = Math.max(whole('max_buffer', o.max_buffer, 10_000), this.batchLimit);
    seconds('retry_backoff', o.retry_backoff, 0.5);
    seconds('max_backoff', o.max_backoff, 30);
    this.onError = o.on_error ?? DEFAULT_ERROR_HANDLER;
    this.random = o.random ?? Math.random;
    // unref: a reporter must never be the reason a finished process keeps running.
    this.ticker = setInterval(() => this.tick(), Math.min(this.flushMs, this.pollMs));
    this.ticker.unref();
    if (o.flush_on_exit !== false) watchExit(this);
  }

  // ───────────────────────────── reporting ─────────────────────────────

  /**
   * Queues one task's vitals; returns false (and tells on_error) when the
   * record is invalid or the reporter is closed. Never throws, never waits.
   */
  report(vitals: VitalsReport): boolean {
    if (this.closed) {
      this.counters.dropped += 1;
      this.error('closed', `report() after close(): the record for agent '${this.agent_id}' was not sent`, { records: 1 });
      return false;
    }
    const r = toVitalsRecord(vitals, { agent_id: this.agent_id, agent_type: this.agent_type, model: this.model }, Date.now() / 1000);
    if ('error' in r) {
      this.counters.dropped += 1;
      this.error('invalid', `report() for agent '${this.agent_id}': ${r.error}; the record was not queued`, { records: 1 });
      return false;
    }
    this.queue.push(r.record);
    this.trim();
    if (this.queue.length >= this.batchLimit) this.kick();
    return true;
  }

  /** Lifecycle status from the latest answer (null before the first one). */
  get status(): string | null {
    return this.currentStatus;
  }

  /** True while the control plane holds the agent contained (quarantined, awaiting approval, healing, rejected, exhausted). */
  get quarantined(): boolean {
    return isContained(this.currentStatus);
  }

  /** Throws QuarantinedError while the agent is contained; call it before each task. */
  guard(): void {
    if (this.quarantined) throw new QuarantinedError(this.agent_id, this.currentStatus!);
  }

  stats(): ReporterStats {
    return { ...this.counters, buffered: this.queue.length + this.inflight };
  }

  /**
   * Sends everything buffered (and pending acknowledgements). Resolves true
   * when nothing is left, false if `timeout` seconds passed first (the
   * records stay queued and keep being retried).
   */
  async flush(timeout?: number): Promise<boolean> {
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout * 1000;
    for (;;) {
      if (this.idle()) return true;
      const now = Date.now();
      const remaining = deadline - now;
      if (remaining <= 0) return false;
      const backingOff = this.retryAt > now;
      // Not while backing off: the pump would return at once and this loop would spin without yielding.
      if (this.queue.length > 0 && !backingOff) this.kick();
      const waits: Array<Promise<unknown>> = [...this.acks];
      if (this.pumping) waits.push(this.pumping);
      const nap = backingOff ? this.retryAt - now + 1 : waits.length > 0 ? 1000 : 10;
      waits.push(sleep(Math.min(remaining, nap)));
      await Promise.race(waits);
    }
  }

  /** Flushes (up to `timeout` seconds, default 5), then stops; what could not be sent is counted as dropped. Safe to call twice. */
  async close(timeout = 5): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    unwatchExit(this);
    this.retryAt = Math.min(this.retryAt, Date.now());
    await this.flush(timeout);
    this.dropUnsent();
  }

  // ───────────────────────────── exit ─────────────────────────────

  needsExitFlush(): boolean {
    return !this.exitAttempted && !this.closed && !this.idle();
  }

  async flushForExit(): Promise<void> {
    if (this.exitAttempted) return;
    this.exitAttempted = true;
    // One last immediate attempt even when backing off: there is no later.
    this.retryAt = 0;
    await this.flush(seconds('exit_timeout', this.o.exit_timeout, 3));
  }

  // ───────────────────────────── sending ─────────────────────────────

  private idle(): boolean {
    return this.queue.length === 0 && this.inflight === 0 && this.pumping === null && this.acks.size === 0;
  }

  private tick(): void {
    if (this.queue.length > 0) this.kick();
    if (this.quarantined && !this.polling && Date.now() - this.lastContact >= this.pollMs) void this.poll();
  }

  private kick(): void {
    if (this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
    });
  }

  /** Sends batches until the queue is empty or the control plane is unavailable. */
  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      if (Date.now() < this.retryAt) return this.scheduleRetry();
      if (!this.registered && !(await this.register())) return;
      const batch = this.queue.splice(0, this.batchLimit);
      this.inflight = batch.length;
      const out = await requestJson('POST', `${this.base}/api/v1/ingest`, { apiKey: this.o.api_key, body: batch, timeoutMs: this.timeoutMs });
      this.inflight = 0;
      if (!this.settle(batch, out)) return;
    }
  }

  /** Applies the outcome of one batch; false when sending should pause (backoff). */
  private settle(batch: VitalsRecord[], out: HttpOutcome): boolean {
    if (out.kind === 'network') {
      this.requeue(batch);
      this.unavailable(`cannot reach ${this.base}: ${out.error.message}`, null, batch.length);
      return false;
    }
    const { status, body } = out;
    if (status >= 200 && status < 300) {
      this.counters.sent += batch.length;
      this.recovered();
      this.readIngestAnswer(body);
      return true;
    }
    const d = describeAnswer(status, body);
    if (isRetryableStatus(status)) {
      this.requeue(batch);
      this.unavailable(`ingest ${d.message}`, out.retryAfterMs, batch.length, status, d.code);
      return false;
    }
    this.recovered();
    if (status === 413 && batch.length > 1) {
      // Too large for the server's body limit: halve the batches rather than lose records.
      this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
      this.requeue(batch);
      return true;
    }
    if (d.index !== undefined && Number.isInteger(d.index) && d.index >= 0 && d.index < batch.length) {
      // The server names the one bad record of the batch: drop it, resend the others.
      batch.splice(d.index, 1);
      this.counters.dropped += 1;
      this.requeue(batch);
      this.error('rejected', `the control plane refused a record of agent '${this.agent_id}' (${d.message}); it was dropped`, { status, code: d.code, records: 1 });
      return true;
    }
    this.counters.dropped += batch.length;
    this.error('rejected', `the control plane refused ${batch.length} record(s) of agent '${this.agent_id}' (${d.message}); they were dropped because resending cannot succeed`, { status, code: d.code, records: batch.length });
    return true;
  }

  /** Registers once (idempotent on the server) so the control URL and metadata are known before the first vitals. */
  private async register(): Promise<boolean> {
    const o = this.o;
    const body: Record<string, unknown> = { agent_id: this.agent_id, agent_type: this.agent_type };
    if (this.model !== '') body.model = this.model;
    if (o.provider !== undefined) body.provider = o.provider;
    if (o.mcp_servers !== undefined) body.mcp_servers = o.mcp_servers;
    if (o.control_url !== undefined) body.control_url = o.control_url;
    const out = await requestJson('POST', `${this.base}/api/v1/agents/register`, { apiKey: o.api_key, body, timeoutMs: this.timeoutMs });
    if (out.kind === 'network') {
      this.unavailable(`cannot reach ${this.base}: ${out.error.message}`, null, this.queue.length);
      return false;
    }
    if (isRetryableStatus(out.status)) {
      const d = describeAnswer(out.status, out.body);
      this.unavailable(`register ${d.message}`, out.retryAfterMs, this.queue.length, out.status, d.code);
      return false;
    }
    this.registered = true;
    if (out.status >= 300) {
      const d = describeAnswer(out.status, out.body);
      this.error('rejected', `registration of agent '${this.agent_id}' was refused (${d.message}); vitals are still sent`, { status: out.status, code: d.code });
    } else {
      this.lastContact = Date.now();
    }
    return true;
  }

  private requeue(batch: VitalsRecord[]): void {
    this.queue = batch.concat(this.queue);
    this.trim();
  }

  /** Keeps the buffer bounded by dropping the oldest records, counted. */
  private trim(): void {
    const excess = this.queue.length - this.maxBuffer;
    if (excess <= 0) {
      this.overflowing = false;
      return;
    }
    this.queue.splice(0, excess);
    this.counters.dropped += excess;
    if (!this.overflowing) {
      this.overflowing = true;
      this.error('overflow', `the buffer of agent '${this.agent_id}' is full (${this.maxBuffer} records): dropping the oldest`, { records: excess });
    }
  }

  private unavailable(message: string, retryAfterMs: number | null, records: number, status?: number, code?: string): void {
    this.counters.failed += 1;
    this.failures += 1;
    const delay = retryAfterMs ?? backoffMs(this.failures, seconds('retry_backoff', this.o.retry_backoff, 0.5) * 1000, seconds('max_backoff', this.o.max_backoff, 30) * 1000, this.random);
    this.retryAt = Date.now() + delay;
    // Once per outage, not once per retry.
    if (this.failures === 1) this.error('unavailable', `${message}; ${records} record(s) kept and retried with backoff`, { status, code, records });
    this.scheduleRetry();
  }

  private recovered(): void {
    this.failures = 0;
    this.retryAt = 0;
    this.lastContact = Date.now();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.queue.length > 0) this.kick();
    }, Math.max(0, this.retryAt - Date.now()));
    this.retryTimer.unref();
  }

  private dropUnsent(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.queue.length === 0) return;
    const n = this.queue.length;
    this.counters.dropped += n;
    this.queue = [];
    this.error('unavailable', `close(): ${n} record(s) of agent '${this.agent_id}' could not be sent in time and were dropped`, { records: n });
  }

  // ───────────────────────────── directives ─────────────────────────────

  private readIngestAnswer(body: unknown): void {
    if (typeof body !== 'object' || body === null) return;
    const b = body as { agents?: Record<string, unknown>; status?: unknown; directive?: unknown };
    const mine = b.agents?.[this.agent_id] ?? (b.agents === undefined ? b : undefined);
    if (typeof mine === 'object' && mine !== null) this.applyState(mine as { status?: unknown; directive?: unknown });
  }

  private applyState(s: { status?: unknown; directive?: unknown }): void {
    if (typeof s.status === 'string') this.setStatus(s.status);
    const d = s.directive as Partial<Directive> | null | undefined;
    if (!d || typeof d.id !== 'string' || typeof d.action !== 'string' || this.seen.includes(d.id)) return;
    this.seen.push(d.id);
    if (this.seen.length > SEEN_DIRECTIVES) this.seen.shift();
    this.counters.directives += 1;
    this.runDirective({ id: d.id, action: d.action, diagnosis: typeof d.diagnosis === 'string' ? d.diagnosis : '' });
  }

  private setStatus(status: string): void {
    const previous = this.currentStatus;
    if (previous === status) return;
    this.currentStatus = status;
    try {
      this.o.on_status?.(status, previous);
    } catch {
      // The agent's callback failing must not stop reporting.
    }
  }

  /**
   * Hands the directive to the agent and acknowledges the outcome. Without an
   * on_directive handler nothing is acknowledged: the control plane moves to
   * probation after its acknowledgement timeout and fresh vitals decide.
   */
  private runDirective(d: Directive): void {
    const handler = this.o.on_directive;
    if (!handler) return;
    const p = (async () => {
      let ack: { ok: boolean; detail?: string };
      try {
        ack = ackBodyOf(await handler(d));
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        ack = { ok: false, detail: `on_directive failed: ${msg}`.slice(0, 500) };
        this.error('directive', `on_directive for ${d.action} (${d.id}) threw: ${msg}; acknowledged as not applied`, { cause: err });
      }
      await this.acknowledge(d, ack);
    })().finally(() => this.acks.delete(p));
    this.acks.add(p);
  }

  private async acknowledge(d: Directive, body: { ok: boolean; detail?: string }): Promise<void> {
    const url = `${this.base}/api/v1/agents/${encodeURIComponent(this.agent_id)}/directives/${encodeURIComponent(d.id)}/ack`;
    let last = '';
    for (let attempt = 1; attempt <= ACK_ATTEMPTS; attempt++) {
      const out = await requestJson('POST', url, { apiKey: this.o.api_key, body, timeoutMs: this.timeoutMs });
      if (out.kind === 'answer' && out.status >= 200 && out.status < 300) {
        this.lastContact = Date.now();
        const agent = (out.body as { agent?: { status?: unknown } } | null)?.agent;
        if (typeof agent?.status === 'string') this.setStatus(agent.status);
        return;
      }
      if (out.kind === 'answer' && !isRetryableStatus(out.status)) {
        const a = describeAnswer(out.status, out.body);
        const why = out.status === 404 ? 'the directive is no longer pending (superseded by an operator, or its acknowledgement window passed)' : 'refused';
        this.error('ack', `acknowledgement of ${d.action} (${d.id}) for agent '${this.agent_id}': ${why} — ${a.message}`, { status: out.status, code: a.code });
        return;
      }
      last = out.kind === 'network' ? out.error.message : describeAnswer(out.status, out.body).message;
      if (attempt < ACK_ATTEMPTS) await sleep(backoffMs(attempt, seconds('retry_backoff', this.o.retry_backoff, 0.5) * 1000, 5000, this.random));
    }
    this.error('ack', `acknowledgement of ${d.action} (${d.id}) for agent '${this.agent_id}' failed after ${ACK_ATTEMPTS} attempts (${last}); the control plane will judge fresh vitals after its timeout`);
  }

  /** While contained and silent, asks for the status and directive (an agent that stopped itself sends no vitals). */
  private async poll(): Promise<void> {
    this.polling = true;
    try {
      const out = await requestJson('GET', `${this.base}/api/v1/agents/${encodeURIComponent(this.agent_id)}/directive`, { apiKey: this.o.api_key, timeoutMs: this.timeoutMs });
      if (out.kind !== 'answer') return;
      if (out.status >= 200 && out.status < 300) {
        this.lastContact = Date.now();
        if (typeof out.body === 'object' && out.body !== null) this.applyState(out.body as { status?: unknown; directive?: unknown });
      } else if (out.status === 404) {
        // The control plane no longer knows the agent (restarted without state): resume, the next report registers it again.
        this.lastContact = Date.now();
        this.currentStatus = null;
        this.registered = false;
      }
    } finally {
      this.polling = false;
    }
  }

  private error(kind: SdkErrorKind, message: string, extra: { status?: number; code?: string; records?: number; cause?: unknown } = {}): void {
    try {
      this.onError(new ImmuneSdkError(kind, message, extra));
    } catch {
      // A failing error handler must not break the reporter.
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function checkUrl(name: string, raw: string): string {
  try {
    const u = new URL(raw);
    if (u.protocol === 'http:' || u.protocol === 'https:') return raw;
  } catch {
    // fall through
  }
  throw new ImmuneSdkError('invalid', `${name} must be an http(s) URL (got ${JSON.stringify(raw)})`);
}

function seconds(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ImmuneSdkError('invalid', `${name} must be a positive number of seconds (got ${String(v)})`);
  return v;
}

function whole(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ImmuneSdkError('invalid', `${name} must be a whole number ≥ 1 (got ${String(v)})`);
  return v;
}
