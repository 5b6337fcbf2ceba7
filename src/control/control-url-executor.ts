import type { AgentRuntime, Effect } from '../engine/engine.js';
import { signatureHeaders } from '../integrations/webhooks.js';
import type { Logger } from '../log.js';
import type { ActionExecutor, ControlPlane } from './control-plane.js';

/** The JSON body POSTed to an agent's control URL (docs/AGENTS.md). */
export interface ControlDirective {
  directive_id: string;
  agent_id: string;
  action: string;
  diagnosis: string;
  trigger: string;
  /** Epoch seconds. */
  issued_at: number;
}

export interface ControlUrlExecutorOptions {
  cp: () => ControlPlane;
  /** HMAC-SHA256 key of the X-Immune-Signature header (WEBHOOK_SECRET). */
  secret: string;
  log: Logger;
  /** Per attempt, ms. Default 5000. */
  timeoutMs?: number;
  /** Attempts per directive (5xx, 408, 429, timeouts and connection errors are retried). Default 3. */
  attempts?: number;
  /** Delay before the second attempt, ms; doubles after each. Default 500. */
  backoffMs?: number;
  /** Epoch ms (signature timestamps, issued_at). */
  now?: () => number;
}

/** What one delivery came to, as recorded by completeAction. */
export interface DeliveryOutcome {
  ok: boolean;
  /** applied: 2xx; refused: the agent answered but did not apply it (4xx, or 2xx with ok=false); failed: no usable answer. */
  result: 'applied' | 'refused' | 'failed';
  detail: string;
}

type Attempt = { kind: 'answer'; status: number; text: string } | { kind: 'error'; message: string };

const DETAIL_MAX = 300;

/**
 * Heals agents that registered a control URL: each healing action is POSTed
 * there, signed (X-Immune-Timestamp, X-Immune-Signature: sha256=HMAC of
 * "<timestamp>.<body>"), with a per-attempt timeout and retries with backoff.
 * 2xx means applied (unless the body says {"ok": false}); 4xx means refused;
 * retries exhausted means failed — each recorded through completeAction, after
 * which probation judges the agent's fresh vitals. Everything is asynchronous:
 * a control URL that hangs delays only its own outcome, never detection.
 */
export class ControlUrlExecutor implements ActionExecutor {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly now: () => number;
  /** Aborted by close() so shutdown does not wait for slow agents. */
  private readonly shutdown = new AbortController();
  readonly counters = { applied: 0, refused: 0, failed: 0, retries: 0 };

  constructor(private readonly o: ControlUrlExecutorOptions) {
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.attempts = Math.max(1, o.attempts ?? 3);
    this.backoffMs = o.backoffMs ?? 500;
    this.now = o.now ?? Date.now;
  }

  execute(effect: Effect, rt: AgentRuntime): void {
    const url = rt.meta.control_url;
    const directive: ControlDirective = {
      directive_id: effect.attempt_id,
      agent_id: effect.agent_id,
      action: effect.action,
      diagnosis: effect.diagnosis,
      trigger: effect.trigger,
      issued_at: this.now() / 1000,
    };
    const outcome = url ? this.deliver(url, directive) : Promise.resolve<DeliveryOutcome>({ ok: false, result: 'failed', detail: 'the agent has no control URL' });
    void outcome.then((out) => this.record(directive, url ?? '', out));
  }

  /** POSTs one directive until it is answered, refused, or the attempts run out. Never throws. */
  async deliver(url: string, directive: ControlDirective): Promise<DeliveryOutcome> {
    const body = JSON.stringify(directive);
    let last = '';
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      if (this.shutdown.signal.aborted) return { ok: false, result: 'failed', detail: 'the control plane shut down before the control URL answered' };
      const a = await this.post(url, body);
      if (a.kind === 'answer' && a.status >= 200 && a.status < 300) return applied(a.status, a.text);
      if (a.kind === 'answer' && !retryable(a.status)) {
        const redirect = a.status >= 300 && a.status < 400 ? ' (redirects are not followed)' : '';
        return { ok: false, result: 'refused', detail: clip(`control URL refused the directive: HTTP ${a.status}${redirect}${excerpt(a.text)}`) };
      }
      last = a.kind === 'answer' ? `HTTP ${a.status}${excerpt(a.text)}` : a.message;
      if (attempt < this.attempts) {
        this.counters.retries += 1;
        await delay(this.backoffMs * 2 ** (attempt - 1), this.shutdown.signal);
      }
    }
    return { ok: false, result: 'failed', detail: clip(`control URL failed after ${this.attempts} attempts: ${last}`) };
  }

  /** Aborts deliveries in flight (their actions are recorded as failed). Safe to call twice. */
  close(): void {
    this.shutdown.abort();
  }

  private async post(url: string, body: string): Promise<Attempt> {
    // Signed per attempt, so the timestamp is fresh for the receiver's replay window.
    const headers = { 'content-type': 'application/json', 'user-agent': 'agent-immune-control', ...signatureHeaders(this.o.secret, body, this.now() / 1000) };
    // An explicit timer, not AbortSignal.any([AbortSignal.timeout(…), …]): in Node 20 the composite holds
    // its sources weakly, so the timeout signal could be collected before it fired and a hanging control
    // URL then hung the delivery for good (nodejs/node#57736; seen as a flaky test under load).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException(`no answer within ${this.timeoutMs} ms`, 'TimeoutError')), this.timeoutMs);
    const onShutdown = () => abort.abort(this.shutdown.signal.reason);
    if (this.shutdown.signal.aborted) onShutdown();
    else this.shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    try {
      const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: abort.signal });
      return { kind: 'answer', status: res.status, text: (await res.text()).slice(0, 4096) };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError') return { kind: 'error', message: `no answer within ${this.timeoutMs} ms` };
      return { kind: 'error', message: e.cause?.code ?? e.cause?.message ?? e.message };
    } finally {
      clearTimeout(timer);
      this.shutdown.signal.removeEventListener('abort', onShutdown);
    }
  }

  private record(d: ControlDirective, url: string, out: DeliveryOutcome): void {
    this.counters[out.result] += 1;
    const where = originOf(url);
    if (!out.ok) this.o.log.warn({ agent_id: d.agent_id, action: d.action, control_url: where, detail: out.detail }, `control URL of ${d.agent_id} did not apply ${d.action}`);
    try {
      this.o.cp().completeAction(d.agent_id, d.directive_id, out.ok, out.detail);
    } catch (err) {
      // An operator released or re-quarantined the agent meanwhile: this outcome no longer matters.
      this.o.log.debug({ err, agent_id: d.agent_id, directive_id: d.directive_id }, 'control URL outcome arrived for a superseded action');
    }
  }
}

/** 2xx: applied, unless the agent answers {"ok": false, "detail": …}. */
function applied(status: number, text: string): DeliveryOutcome {
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const p = typeof parsed === 'object' && parsed !== null ? (parsed as { ok?: unknown; detail?: unknown }) : {};
  const detail = typeof p.detail === 'string' && p.detail !== '' ? p.detail : undefined;
  if (p.ok === false) return { ok: false, result: 'refused', detail: clip(`the agent could not apply it: ${detail ?? `HTTP ${status} with ok=false`}`) };
  return { ok: true, result: 'applied', detail: clip(detail ?? `applied by the agent's control URL (HTTP ${status})`) };
}

/** 5xx, 408 and 429 may succeed later; other statuses will not. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function excerpt(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t === '' ? '' : `: ${t.slice(0, 120)}`;
}

function clip(s: string): string {
  return s.length > DETAIL_MAX ? `${s.slice(0, DETAIL_MAX - 1)}…` : s;
}

/** Only the origin goes to logs: a control URL may carry a token in its path or query. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    t.unref();
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
