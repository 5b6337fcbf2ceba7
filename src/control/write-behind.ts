import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

const FLUSH_MS = 25;

/**
 * Events a caller must find after a crash once it has been answered: operator
 * decisions and the engine's containment and healing steps. Registration,
 * baseline readiness and prompt adoption are re-derived from the next sample
 * and the snapshot, so they ride the normal 25 ms batch.
 */
const RECOVERABLE = new Set(['agent_registered', 'baseline_ready', 'baseline_reset', 'prompt_adopted']);
const MAX_BATCH = 5000;

/**
 * Batches vitals and events into the store so ingest never waits for a disk
 * write: group commit every 25 ms or 5000 records. Events keep their order.
 * A failed write is handed back to the queue front (the resilient store
 * adapter retries and spills; this layer never drops silently).
 */
export class WriteBehind {
  private vitalsQ: Vitals[] = [];
  private eventsQ: ImmuneEvent[] = [];
  private decisionsQueued = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly runId: string,
    private readonly log: Logger,
  ) {}

  vitals(v: Vitals): void {
    this.vitalsQ.push(v);
    this.schedule();
  }

  events(es: readonly ImmuneEvent[]): void {
    for (const e of es) {
      this.eventsQ.push(e);
      if (!RECOVERABLE.has(e.type)) this.decisionsQueued += 1;
    }
    this.schedule();
  }

  /** True while decision events (see RECOVERABLE) are queued and not yet handed to the store. */
  hasDecisions(): boolean {
    return this.decisionsQueued > 0;
  }

  stats(): { queued: number; dropped: number; failures: number } {
    return { queued: this.vitalsQ.length + this.eventsQ.length, dropped: 0, failures: this.failures };
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.vitalsQ.length + this.eventsQ.length >= MAX_BATCH && !this.inflight) {
      void this.flush();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, FLUSH_MS);
      this.timer.unref?.();
    }
  }

  /** Writes everything queued so far (awaits an in-flight write first). */
  async flush(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.vitalsQ.length === 0 && this.eventsQ.length === 0) return;
    const events = this.eventsQ;
    const vitals = this.vitalsQ;
    const decisions = this.decisionsQueued;
    this.eventsQ = [];
    this.vitalsQ = [];
    this.decisionsQueued = 0;
    this.inflight = (async () => {
      try {
        if (events.length > 0) await this.store.appendEvents(this.runId, events);
      } catch (err) {
        this.failures += 1;
        this.eventsQ = events.concat(this.eventsQ);
        this.decisionsQueued += decisions;
        this.log.warn({ err, events: events.length }, 'event write failed; will retry');
      }
      try {
        if (vitals.length > 0) await this.store.appendVitals(this.runId, vitals);
      } catch (err) {
        this.failures += 1;
        this.vitalsQ = vitals.concat(this.vitalsQ);
        this.log.warn({ err, vitals: vitals.length }, 'vitals write failed; will retry');
      }
    })();
    try {
      await this.inflight;
    } finally {
      this.inflight = null;
    }
    if (!this.closed && (this.vitalsQ.length > 0 || this.eventsQ.length > 0)) this.schedule();
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
    this.closed = true;
  }
}
